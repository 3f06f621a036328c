"""The generated emotional-speech corpus, kept under its old name: the code lives in `ser_helpers.corpus`.

Taught in notebook 00 (`00_make_demo_corpus.ipynb`, which calls `ser.synth.synth_corpus` and the
tables and plots re-exported here). `ser synth-corpus` registers through this module.
"""
from __future__ import annotations

from .corpus import *  # noqa: F401,F403
from .corpus import __all__, _plan  # noqa: F401
