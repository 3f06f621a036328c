"""Post-hoc calibration of fusion logits: global / per-language temperature, vector scaling (LBFGS on NLL).

Taught in notebook 07 (07_train_late_fusion.ipynb).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..common import SERError
from ..metrics import softmax
from .config import CALIBRATION_MODES, FusionConfig
from .nets import _torch, single_thread


# ============================================================================ calibration
def _fit_scalar_temperature(logits: np.ndarray, y: np.ndarray, max_iter: int) -> float:
    torch = _torch()
    z = torch.tensor(np.array(logits, dtype=np.float64)); t = torch.tensor(np.array(y, dtype=np.int64))
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(z / log_t.exp(), t)
        loss.backward()
        return loss

    opt.step(closure)
    return float(log_t.exp().item())


def _fit_vector_scaling(logits: np.ndarray, y: np.ndarray, max_iter: int) -> tuple[list, list]:
    torch = _torch()
    z = torch.tensor(np.array(logits, dtype=np.float64)); t = torch.tensor(np.array(y, dtype=np.int64))
    w = torch.ones(z.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(z.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(z * w + b, t)
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().tolist(), b.detach().tolist()


def fit_calibration(logits: np.ndarray, y: np.ndarray, languages: Sequence[str],
                    mode: str = FusionConfig.calibration_mode, max_iter: int = FusionConfig.calibration_max_iter,
                    min_language_samples: int = FusionConfig.min_language_samples) -> dict:
    """Fit calibration on VALIDATION logits (NLL, LBFGS). Returns a JSON-able dict for apply_calibration."""
    if mode not in CALIBRATION_MODES:
        raise SERError(f"calibration_mode={mode!r} is not one of {list(CALIBRATION_MODES)}")
    logits = np.asarray(logits, dtype=np.float64); y = np.asarray(y, dtype=int)
    languages = np.asarray(languages, dtype=object)
    with single_thread():
        return _fit_calibration(logits, y, languages, mode, max_iter, min_language_samples)


def _fit_calibration(logits, y, languages, mode, max_iter, min_language_samples) -> dict:
    cal = {"mode": mode, "temperature": _fit_scalar_temperature(logits, y, max_iter), "fitted_on": "val",
           "n": int(len(y))}
    if mode == "per_language_temperature":
        per, counts = {}, {}
        for lang in sorted(set(languages.tolist())):
            m = languages == lang
            counts[lang] = int(m.sum())
            if m.sum() >= min_language_samples:
                per[lang] = _fit_scalar_temperature(logits[m], y[m], max_iter)
        cal.update(per_language=per, language_counts=counts, min_language_samples=int(min_language_samples))
    elif mode == "vector_scaling":
        w, b = _fit_vector_scaling(logits, y, max_iter)
        cal.update(w=w, b=b)
    return cal


def temperature_for(calibration: dict, language: str | None) -> float | None:
    """The temperature applied to a row of `language` (None for vector scaling)."""
    if calibration.get("mode") == "vector_scaling":
        return None
    per = calibration.get("per_language") or {}
    return float(per.get(language, calibration.get("temperature", 1.0)))


def apply_calibration(logits: np.ndarray, calibration: dict, languages: Sequence[str] | None = None) -> np.ndarray:
    """Calibrated probabilities from logits."""
    z = np.asarray(logits, dtype=np.float64)
    if calibration.get("mode") == "vector_scaling":
        z = z * np.asarray(calibration["w"]) + np.asarray(calibration["b"])
    else:
        if languages is None:
            languages = [None] * len(z)
        temps = np.array([temperature_for(calibration, lang) for lang in languages], dtype=np.float64)
        z = z / temps[:, None]
    return softmax(z)
