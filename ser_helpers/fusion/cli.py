"""`ser train-late-fusion`: the command line of stage 07.

Taught in notebook 07 (07_train_late_fusion.ipynb).
"""
from __future__ import annotations

import json
from dataclasses import fields

from ..common import add_dataclass_flags
from .config import FusionConfig
from .fit import train_late_fusion


# ============================================================================ CLI
def add_training_flags(p, skip=("mode",)) -> None:
    """The train-late-fusion settings (shared with run-fusion-ablation): one flag per FusionConfig field,
    CLI_CONTRACT names and defaults, plus --features-summary."""
    add_dataclass_flags(p, FusionConfig, skip=skip)
    p.add_argument("--features-summary", default=None,
                   help="features/summary.json with the feature column lists (default: beside --train-features)")


#: the FusionConfig fields the CLI sets (all but `mode`, which only train-late-fusion has)
TRAINING_KEYS = tuple(f.name for f in fields(FusionConfig) if f.metadata.get("cli", True) and f.name != "mode")


def _cli_train(args) -> int:
    res = train_late_fusion(args.train_features, args.val_features, args.test_features, args.output_dir,
                            features_summary=args.features_summary, config=FusionConfig.from_params(vars(args)))
    r = res.report
    print(json.dumps({"output_dir": str(res.output_dir), "mode": r["mode"], "fusion_arch": r["fusion_arch"],
                      "temperature": r["calibration"]["temperature"],
                      **{k: round(v, 4) for k, v in res.metrics.items()
                         if k.startswith("test_") and isinstance(v, float)}}, indent=2))
    return 0


def register_cli(subparsers) -> None:
    p = subparsers.add_parser("train-late-fusion", help="train a late-fusion model + calibration (stage 07)")
    p.add_argument("--train-features", required=True)
    p.add_argument("--val-features", required=True)
    p.add_argument("--test-features", required=True)
    p.add_argument("--output-dir", required=True)
    add_training_flags(p, skip=())
    p.set_defaults(func=_cli_train)
