"""`ser train-text-emotion`: the feature-CSV flags, then the settings' flags generated from TextEmotionConfig.

Taught in notebook 06 (06_build_fusion_features.ipynb); no notebook runs this command.
"""
from __future__ import annotations

import json

from ..common import add_dataclass_flags, add_split_overlap_flag
from .config import TextEmotionConfig
from .finetune import train_text_emotion


def _cmd_train_text_emotion(args) -> int:
    res = train_text_emotion(args.train_features, args.val_features, args.output_dir, args.test_features,
                             config=TextEmotionConfig.from_params(vars(args)))
    print(json.dumps({"output_dir": str(res.output_dir), "best_epoch": res.report["best_epoch"],
                      "best_val_macro_f1": res.report["best_val_score"]}))
    return 0


def register_cli(subparsers) -> None:
    p = subparsers.add_parser("train-text-emotion", help="fine-tune a 4-class text-emotion model on feature transcripts")
    p.add_argument("--train-features", required=True)
    p.add_argument("--val-features", required=True)
    p.add_argument("--test-features", default="")
    p.add_argument("--output-dir", required=True)
    add_dataclass_flags(p, TextEmotionConfig)
    add_split_overlap_flag(p)
    p.set_defaults(func=_cmd_train_text_emotion)
