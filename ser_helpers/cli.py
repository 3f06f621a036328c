"""The `ser` command. Each stage module registers its own subcommands with `register_cli(subparsers)`;
every subcommand calls the same public function the notebook and the tests call."""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from .common import SERError

# Modules that contribute subcommands (in help order). A module missing here is simply absent.
CLI_MODULES = [
    "synth", "manifest", "acoustic", "evaluate", "baseline", "inference", "service", "features", "text",
    "fusion", "ablation", "selection", "demo", "report", "pipeline_cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ser", description="Speech emotion recognition curriculum tools.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in CLI_MODULES:
        try:
            mod = importlib.import_module(f"ser_helpers.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"ser_helpers.{name}":
                continue
            raise
        register = getattr(mod, "register_cli", None)
        if register is not None:
            register(sub)
    return parser


def str2list(value: str) -> list[str]:
    """Comma list -> list of stripped, non-empty items."""
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except SERError as exc:
        print(f"ser {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return int(result or 0) if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
