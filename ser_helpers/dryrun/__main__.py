"""`python -m ser_helpers.dryrun`: the dry run of a GPU profile (see `cli`); a failed check exits 2.

It runs notebooks 00-10 of configs/gpu_iemocap.yaml on CPU (README, "Running on a GPU box with IEMOCAP")."""
import sys

from ..common import SERError
from .cli import main

try:
    sys.exit(main())
except SERError as exc:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(2)
