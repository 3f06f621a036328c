"""`python -m ser_helpers.dryrun`: the dry run of a GPU profile (see `cli`); a failed check exits 2."""
import sys

from ..common import SERError
from .cli import main

try:
    sys.exit(main())
except SERError as exc:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(2)
