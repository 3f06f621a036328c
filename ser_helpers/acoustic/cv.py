"""Leave-one-group-out cross-validation (`ser cross-validate`): one `train_wav2vec2` run per fold.

Taught in notebook 03 (03_train_wav2vec2.ipynb).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from ser_helpers.acoustic.config import TrainConfig
from ser_helpers.acoustic.train import train_wav2vec2
from ser_helpers.common import LABELS, SERError, read_manifest, write_json_atomic

def cross_validate(manifest: str | os.PathLike | Sequence, output_dir: str | os.PathLike,
                   fold_column: str = "session", config: TrainConfig | None = None, **settings) -> dict:
    """Leave-one-group-out folds (default: IEMOCAP sessions): fold k tests on group k, validates on the next
    group, trains on the rest, each fold with `train_wav2vec2(config=config, **settings)`. Writes
    cv_summary.json/.csv (per fold + mean ± std)."""
    import pandas as pd

    from ..common import write_csv_atomic
    items = [manifest] if isinstance(manifest, (str, os.PathLike)) else list(manifest)
    paths: list[Path] = []
    for item in items:
        p = Path(item)
        paths += [p / f"{s}.csv" for s in ("train", "val", "test") if (p / f"{s}.csv").exists()] if p.is_dir() else [p]
    if not paths:
        raise SERError(f"{manifest}: no manifest CSV found")
    df = pd.concat([read_manifest(p, labels=LABELS) for p in paths], ignore_index=True)
    if fold_column not in df.columns:
        raise SERError(f"{paths[0]}: manifest lacks the fold column {fold_column!r}; columns are {list(df.columns)}")
    groups = sorted(df[fold_column].astype(str).unique())
    if len(groups) < 3:
        raise SERError(f"column {fold_column!r} has {len(groups)} group(s) {groups}; cross-validation needs >= 3")
    output_dir = Path(output_dir)
    rows = []
    for k, g in enumerate(groups):
        val_g = groups[(k + 1) % len(groups)]
        fold_dir = output_dir / f"fold_{g}"
        split_dir = fold_dir / "manifests"
        col = df[fold_column].astype(str)
        for name, part in (("train", df[(col != g) & (col != val_g)]), ("val", df[col == val_g]),
                           ("test", df[col == g])):
            write_csv_atomic(split_dir / f"{name}.csv", part)
        res = train_wav2vec2(split_dir / "train.csv", split_dir / "val.csv", fold_dir,
                             test_manifest=split_dir / "test.csv", config=config, **settings)
        tm = res.report.get("test_metrics", {})
        rows.append({"fold": g, "val_group": val_g, "n_test": int((col == g).sum()),
                     "test_macro_f1": tm.get("macro_f1"), "test_ua": tm.get("ua"), "test_wa": tm.get("accuracy"),
                     "best_epoch": res.report.get("best_epoch")})
    table = pd.DataFrame(rows)
    summary = {"fold_column": fold_column, "folds": rows}
    for m in ("test_macro_f1", "test_ua", "test_wa"):
        vals = table[m].astype(float)
        summary[m] = {"mean": float(vals.mean()), "std": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0}
    write_csv_atomic(output_dir / "cv_summary.csv", table)
    write_json_atomic(output_dir / "cv_summary.json", summary)
    return summary
