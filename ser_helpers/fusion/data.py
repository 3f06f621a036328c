"""Reading the stage-06 feature CSVs for fusion, and the feature scaler.

Taught in notebook 07 (07_train_late_fusion.ipynb).
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from ..common import LABELS, SERError, not_utf8, read_json
from .config import DEFAULT_FEATURE_COLUMNS


# ============================================================================ reading features
def read_feature_summary(path: str | Path | None, train_features: str | Path) -> dict:
    """features/summary.json (given, or beside the train CSV); {} when there is none."""
    p = Path(path) if path else Path(train_features).parent / "summary.json"
    if not p.exists():
        if path:
            raise SERError(f"{p}: features summary not found")
        return {}
    try:
        return read_json(p)
    except json.JSONDecodeError as exc:
        raise SERError(f"{p}: not valid JSON ({exc})") from exc


def feature_columns_for(mode: str, summary: dict) -> list[str]:
    cols = (summary.get("feature_columns") or {}).get(mode)
    if cols:
        return list(cols)
    if summary:
        warnings.warn(f"features summary has no feature_columns[{mode!r}]; using the default list", stacklevel=2)
    return list(DEFAULT_FEATURE_COLUMNS[mode])


def read_features(path: str | Path, feature_names: Sequence[str], labels: Sequence[str] = LABELS):
    """Read one features CSV and check it: columns present, no NaN in used columns, known labels."""
    import pandas as pd
    path = Path(path)
    if not path.exists():
        raise SERError(f"{path}: features CSV not found")
    try:
        df = pd.read_csv(path, keep_default_na=True, dtype={"label": str, "language": str, "speaker": str})
    except UnicodeDecodeError as exc:
        raise not_utf8(path, exc, "features CSV") from None
    except Exception as exc:  # noqa: BLE001
        raise SERError(f"{path}: cannot read features CSV ({exc})") from exc
    if df.empty:
        raise SERError(f"{path}: features CSV has no rows")
    needed = ["label", "language", *feature_names]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise SERError(f"{path}: missing column(s) {missing} (needed by the feature list of this mode)")
    for col in feature_names:
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() | ~np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))
        if bad.any():
            rows = (np.flatnonzero(bad.to_numpy()) + 2)[:5].tolist()  # +2: header line, 1-based
            raise SERError(f"{path}: column {col!r} has {int(bad.sum())} NaN/non-numeric value(s) "
                           f"(CSV lines {rows}{' ...' if bad.sum() > 5 else ''})")
        df[col] = values.astype(float)
    lab = df["label"].astype(str).str.strip()
    unknown = sorted(set(lab) - set(labels))
    if unknown:
        raise SERError(f"{path}: column 'label' has unknown label(s) {unknown} (expected {list(labels)})")
    df["label"] = lab
    df["language"] = df["language"].fillna("unknown").astype(str).str.strip()
    if "label_id" in df.columns:
        expect = lab.map({l: i for i, l in enumerate(labels)})
        ids = pd.to_numeric(df["label_id"], errors="coerce")
        if (ids != expect).any():
            line = int(np.flatnonzero((ids != expect).to_numpy())[0]) + 2
            raise SERError(f"{path}: column 'label_id' disagrees with column 'label' (first at CSV line {line}); "
                           f"label_id must be the index in {list(labels)}")
    return df


def check_label_coverage(frames: dict, paths: dict, labels: Sequence[str] = LABELS) -> None:
    """Every label seen in val/test must occur in train (else the model cannot learn it)."""
    train_labels = set(frames["train"]["label"])
    for split in ("val", "test"):
        absent = sorted(set(frames[split]["label"]) - train_labels)
        if absent:
            raise SERError(f"{paths[split]}: column 'label' has label(s) {absent} absent from the train split "
                           f"({paths['train']})")


# ============================================================================ scaler
def fit_scaler(X: np.ndarray, feature_names: Sequence[str]) -> dict:
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale = np.where(scale < 1e-8, 1.0, scale)
    return {"feature_names": list(feature_names), "mean": mean.tolist(), "scale": scale.tolist()}


def apply_scaler(scaler: dict, X: np.ndarray) -> np.ndarray:
    return ((X - np.asarray(scaler["mean"])) / np.asarray(scaler["scale"])).astype(np.float32)
