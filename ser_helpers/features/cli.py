"""`ser build-fusion-features`: its flags are generated from FeaturesConfig.

Taught in notebook 06 (06_build_fusion_features.ipynb).
"""
from __future__ import annotations

import json

from ..common import add_dataclass_flags, add_split_overlap_flag
from .build import build_fusion_features
from .config import FeaturesConfig


def _cmd_build(args) -> int:
    res = build_fusion_features(args.train_manifest, args.val_manifest, args.test_manifest, args.output_dir,
                                config=FeaturesConfig.from_params(vars(args)))
    s = res.summary
    print(json.dumps({"output_dir": str(res.output_dir), "rows": s["rows"], "asr": s["components"]["asr"],
                      "asr_cache": {k: s["asr_cache"].get(k) for k in ("hits", "misses")},
                      "raw_metrics": s["raw_metrics"], "timings": s["timings"]}, indent=2))
    return 0


def register_cli(subparsers) -> None:
    p = subparsers.add_parser("build-fusion-features",
                              help="audio-model probabilities + ASR transcripts + text features per utterance")
    p.add_argument("--train-manifest", required=True)
    p.add_argument("--val-manifest", required=True)
    p.add_argument("--test-manifest", required=True)
    p.add_argument("--output-dir", required=True)
    add_dataclass_flags(p, FeaturesConfig)
    add_split_overlap_flag(p)
    p.set_defaults(func=_cmd_build)
