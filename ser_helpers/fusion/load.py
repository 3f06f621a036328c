"""Loading a trained fusion model (`fusion_model.pt` + `feature_scaler.json`) for prediction.

Taught in notebook 07 (07_train_late_fusion.ipynb).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..common import SERError, read_json
from ..metrics import softmax
from .calibration import apply_calibration
from .data import apply_scaler
from .nets import _logits, _torch, build_network, single_thread


# ============================================================================ loading
class FusionModel:
    """A loaded fusion model: scaler + network + calibration. `predict_proba(rows, languages)`."""

    def __init__(self, net, payload: dict, scaler: dict, model_dir: Path):
        self.net, self.payload, self.scaler, self.model_dir = net, payload, scaler, model_dir
        self.feature_names: list[str] = list(payload["feature_names"])
        self.labels: list[str] = list(payload["labels"])
        self.calibration: dict = payload["calibration"]
        self.mode: str = payload["mode"]
        self.arch: dict = payload["arch"]

    def _matrix(self, rows) -> np.ndarray:
        import pandas as pd
        df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows if isinstance(rows, list) else [rows])
        missing = [c for c in self.feature_names if c not in df.columns]
        if missing:
            raise SERError(f"feature row(s) lack column(s) {missing} needed by {self.model_dir}")
        X = df[self.feature_names].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
        if not np.isfinite(X).all():
            bad = [c for j, c in enumerate(self.feature_names) if not np.isfinite(X[:, j]).all()]
            raise SERError(f"feature column(s) {bad} have NaN/non-numeric values")
        return apply_scaler(self.scaler, X)

    def logits(self, rows) -> tuple[np.ndarray, np.ndarray | None]:
        with single_thread():
            return _logits(self.net, self._matrix(rows))

    def predict_proba(self, rows, languages: Sequence[str] | None = None, calibrated: bool = True) -> np.ndarray:
        lg, _ = self.logits(rows)
        return apply_calibration(lg, self.calibration, languages) if calibrated else softmax(lg)


def load_fusion_model(path: str | Path, expected_feature_names: Sequence[str] | None = None) -> FusionModel:
    """Load `fusion_model.pt` (weights_only) + `feature_scaler.json` from a fusion dir (or the .pt path)."""
    torch = _torch()
    path = Path(path)
    model_dir = path if path.is_dir() else path.parent
    pt = model_dir / "fusion_model.pt" if path.is_dir() else path
    if not pt.exists():
        raise SERError(f"{pt}: fusion model not found")
    try:
        payload = torch.load(pt, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise SERError(f"{pt}: cannot load fusion model with weights_only=True ({exc})") from exc
    need = {"state_dict", "arch", "feature_names", "labels", "calibration", "mode"}
    if not isinstance(payload, dict) or need - set(payload):
        raise SERError(f"{pt}: not a fusion model (missing keys {sorted(need - set(payload or {}))})")
    names = list(payload["feature_names"])
    scaler_path = model_dir / "feature_scaler.json"
    if not scaler_path.exists():
        raise SERError(f"{scaler_path}: feature scaler not found beside {pt.name}")
    scaler = read_json(scaler_path)
    _check_names(names, scaler.get("feature_names", []), f"{scaler_path} (feature_names)", str(pt))
    if expected_feature_names is not None:
        _check_names(names, list(expected_feature_names), "the given feature columns", str(pt))
    net = build_network(payload["arch"])
    net.load_state_dict(payload["state_dict"])
    net.eval()
    return FusionModel(net, payload, scaler, model_dir)


def _check_names(model_names: list, other: list, other_what: str, model_what: str) -> None:
    if list(model_names) == list(other):
        return
    missing = [c for c in model_names if c not in other]
    extra = [c for c in other if c not in model_names]
    detail = []
    if missing:
        detail.append(f"missing {missing}")
    if extra:
        detail.append(f"unexpected {extra}")
    if not detail:
        detail.append(f"same columns in a different order: model {model_names} vs {list(other)}")
    raise SERError(f"feature columns of {other_what} do not match {model_what}: {'; '.join(detail)}")
