"""A real-size dry run of a GPU profile on CPU, before any GPU hour is spent.

The command line `python -m ser_helpers.dryrun` (used by `bench/gpu_check.sh`): the dry run of a profile,
`configs/gpu_iemocap.yaml` by default (notebooks 00-10), with every setting of `plan.DEFAULTS` as a flag,
`--resume` to keep the stages an interrupted dry run finished, and `--verify-hub` to compare the recorded
architectures with the hub (online). `ser pipeline --dry-run` (`ser_helpers.pipeline_cli`) runs the same dry run
with the default settings.
"""
from __future__ import annotations

import argparse

from .plan import DEFAULTS
from .runner import run_dry_run
from .standins import verify_hub


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m ser_helpers.dryrun", description=__doc__.split("\n")[0])
    p.add_argument("--profile", default="configs/gpu_iemocap.yaml")
    p.add_argument("--run-dir", default=None)
    p.add_argument("--verify-hub", action="store_true", help="compare configs/hub_configs with the hub (online)")
    p.add_argument("--resume", action="store_true", help="keep the stages an interrupted dry run finished")
    for k, v in DEFAULTS.items():
        p.add_argument(f"--{k.replace('_', '-')}", type=type(v), default=v)
    args = p.parse_args(argv)
    if args.verify_hub:
        diffs = verify_hub()
        print("\n".join(diffs) or "recorded configs match the hub")
        return 1 if diffs else 0
    run_dry_run(args.profile, run_dir=args.run_dir, resume=args.resume, **{k: getattr(args, k) for k in DEFAULTS})
    return 0
