"""The `ser pipeline` command: run a profile's notebooks in order (`pipeline.run_pipeline`), or with `--dry-run`
the profile on CPU with random-init stand-ins of its models (`dryrun.run_dry_run`).

It is a module of its own because it needs both the runner and the dry run, and the runner must not import the
dry run (a later module) nor the dry run register the runner's command. No single notebook teaches it: it runs
notebooks 00-10 (`make run` in the README; `make dryrun` for the dry run).
"""
from __future__ import annotations

from .dryrun import run_dry_run
from .pipeline import run_pipeline


def _cmd_pipeline(args) -> int:
    if args.dry_run:  # the profile on CPU with random-init stand-ins of its models
        run_dry_run(args.profile, run_dir=args.run_dir, quiet=args.quiet)
        return 0
    only = [s.strip() for s in (args.only or "").split(",") if s.strip()] or None
    run_pipeline(args.profile, only=only, from_=args.from_, run_dir=args.run_dir, quiet=args.quiet)
    return 0


def register_cli(sub) -> None:
    p = sub.add_parser("pipeline", help="run a profile's notebooks in order with papermill")
    p.add_argument("--profile", required=True, help="configs/<name>.yaml")
    p.add_argument("--only", default="", help="comma list of stage names / notebook prefixes to run")
    p.add_argument("--from", dest="from_", default=None, help="start at this stage (name or notebook prefix)")
    p.add_argument("--run-dir", default=None, help="override outputs/<run_name>")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--dry-run", action="store_true",
                   help="run every stage offline at real model size on a small generated corpus (stand-in models "
                        "from configs/hub_configs, a few steps); writes {run_dir}/dryrun_stages.md")
    p.set_defaults(func=_cmd_pipeline)
