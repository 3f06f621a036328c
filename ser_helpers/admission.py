"""Moved to `ser_helpers.service.admission` (taught in notebook 05); this name stays importable as the same module."""
import sys

from ser_helpers.service import admission as _admission

sys.modules[__name__] = _admission
