"""`ser make-base-model`, `ser train-wav2vec2`, `ser adapt-wav2vec2-head`, `ser cross-validate`: their flags are
generated from TrainConfig.

Taught in notebook 03 (03_train_wav2vec2.ipynb).
"""
from __future__ import annotations

from dataclasses import fields

from ser_helpers.acoustic.config import ADAPT_DEFAULTS, ADAPT_FLAGS, TrainConfig
from ser_helpers.acoustic.cv import cross_validate
from ser_helpers.acoustic.models import BASE_SIZES, make_base_model
from ser_helpers.acoustic.train import TrainResult, adapt_wav2vec2_head, train_wav2vec2
from ser_helpers.common import add_dataclass_flags, add_split_overlap_flag

def _add_config_flags(p, names) -> None:
    """The flags of these TrainConfig fields, in field order."""
    add_dataclass_flags(p, TrainConfig, skip=[f.name for f in fields(TrainConfig) if f.name not in names])


def _add_train_flags(p, head: bool = False, manifests: bool = True) -> None:
    """The training flags, generated from TrainConfig (adapt-wav2vec2-head: ADAPT_FLAGS, with ADAPT_DEFAULTS)."""
    if manifests:
        p.add_argument("--train-manifest", required=True)
        p.add_argument("--val-manifest", required=True)
        p.add_argument("--test-manifest", default="")
    p.add_argument("--output-dir", required=True)
    common = [f.name for f in fields(TrainConfig)][:[f.name for f in fields(TrainConfig)].index("allow_split_overlap")]
    _add_config_flags(p, common)
    add_split_overlap_flag(p)
    if head:
        p.add_argument("--base-model", required=True, help="a trained model dir (best_model/)")
        _add_config_flags(p, [n for n in ADAPT_FLAGS if n not in common])
        p.set_defaults(**ADAPT_DEFAULTS)
        return
    _add_config_flags(p, [f.name for f in fields(TrainConfig) if f.name not in common and f.name != "train_projector"])


def _print_summary(res: TrainResult) -> None:
    r = res.report
    if not r:
        return
    best = r.get("best_val_metrics", {})
    msg = f"best epoch {r.get('best_epoch')}: val macro-F1 {best.get('macro_f1', float('nan')):.3f}"
    if r.get("test_metrics"):
        msg += f"; test macro-F1 {r['test_metrics']['macro_f1']:.3f}"
    print(f"{msg}; wrote {res.output_dir}")


def _cmd_make_base(args) -> int:
    out = make_base_model(args.output_dir, size=args.size, seed=args.seed)
    print(f"wrote random-init wav2vec2 ({args.size}) to {out}")
    return 0


def _cmd_train(args) -> int:
    _print_summary(train_wav2vec2(args.train_manifest, args.val_manifest, args.output_dir,
                                  test_manifest=args.test_manifest, config=TrainConfig.from_params(vars(args))))
    return 0


def _cmd_adapt(args) -> int:
    config = TrainConfig.from_params(vars(args))
    _print_summary(adapt_wav2vec2_head(args.train_manifest, args.val_manifest, args.base_model, args.output_dir,
                                       test_manifest=args.test_manifest, config=config))
    return 0


def _cmd_cv(args) -> int:
    summary = cross_validate(args.manifest, args.output_dir, fold_column=args.fold_column,
                             config=TrainConfig.from_params(vars(args), resume=False))
    for m in ("test_macro_f1", "test_ua", "test_wa"):
        print(f"{m}: {summary[m]['mean']:.3f} ± {summary[m]['std']:.3f}")
    return 0


def register_cli(subparsers) -> None:
    p = subparsers.add_parser("make-base-model", help="write a random-init small wav2vec2 classifier (offline base)")
    p.add_argument("--size", default="small", choices=sorted(BASE_SIZES))
    p.add_argument("--output-dir", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_make_base)

    p = subparsers.add_parser("train-wav2vec2", help="fine-tune wav2vec2 + classification head")
    _add_train_flags(p)
    p.set_defaults(func=_cmd_train)

    p = subparsers.add_parser("adapt-wav2vec2-head", help="retrain only the head (optionally the projector)")
    _add_train_flags(p, head=True)
    p.set_defaults(func=_cmd_adapt)

    p = subparsers.add_parser("cross-validate", help="leave-one-session-out cross-validation (mean ± std)")
    p.add_argument("--manifest", required=True, nargs="+",
                   help="manifest CSV(s) or dir(s) with train/val/test.csv, pooled then re-split by --fold-column")
    p.add_argument("--fold-column", default="session")
    _add_train_flags(p, manifests=False)  # cross-validate builds its own splits
    p.set_defaults(func=_cmd_cv)
