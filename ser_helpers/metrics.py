"""Classification and calibration metrics shared by every stage (scikit-learn underneath).

ECE follows Guo et al. 2017: 15 equal-width bins on top-1 confidence, a sample falls in a bin
when lower < confidence <= upper, ECE = sum(bin size / n * |accuracy(bin) - confidence(bin)|).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .common import LABELS, write_csv_atomic


def _as_ids(y, labels: Sequence[str]) -> np.ndarray:
    y = np.asarray(y)
    if y.dtype.kind in "iu":
        return y.astype(int)
    index = {lab: i for i, lab in enumerate(labels)}
    return np.array([index[v] for v in y], dtype=int)


def ece_score(probs: np.ndarray, y_true, n_bins: int = 15) -> float:
    probs = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y_true, dtype=int)
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        in_bin = (conf > lo) & (conf <= hi)
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    return float(ece)


def ece_bin_index(conf: np.ndarray, n_bins: int = 15) -> np.ndarray:
    """Vectorised bin of each confidence under ece_score's rule (lower < conf <= upper); -1 = in no bin (conf <= 0)."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.clip(np.searchsorted(edges, conf, side="left") - 1, -1, n_bins - 1)


def reliability_bins(probs: np.ndarray, y_true, n_bins: int = 15) -> dict:
    probs = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y_true, dtype=int)
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    out = {"lower": [], "upper": [], "count": [], "accuracy": [], "confidence": []}
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        out["lower"].append(float(lo)); out["upper"].append(float(hi)); out["count"].append(int(m.sum()))
        out["accuracy"].append(float(correct[m].mean()) if m.any() else None)
        out["confidence"].append(float(conf[m].mean()) if m.any() else None)
    return out


def nll_score(probs: np.ndarray, y_true) -> float:
    probs = np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0)
    y = np.asarray(y_true, dtype=int)
    return float(-np.mean(np.log(probs[np.arange(len(y)), y])))


def brier_score(probs: np.ndarray, y_true) -> float:
    probs = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y_true, dtype=int)
    onehot = np.eye(probs.shape[1])[y]
    return float(np.mean(np.sum((probs - onehot) ** 2, axis=1)))


def classification_metrics(y_true, probs: np.ndarray, labels: Sequence[str] = LABELS, n_bins: int = 15) -> dict:
    """WA (accuracy), UA (mean per-class recall), macro/weighted F1, per-class P/R/F1/support,
    ECE, NLL, Brier, confusion matrix (rows = true, cols = predicted, in `labels` order)."""
    from sklearn.metrics import (accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score,
                                 precision_recall_fscore_support)
    labels = list(labels)
    probs = np.asarray(probs, dtype=np.float64)
    y = _as_ids(y_true, labels)
    pred = probs.argmax(axis=1)
    ids = list(range(len(labels)))
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=ids, zero_division=0)
    present = [i for i in ids if (y == i).any()]
    ua = float(np.mean([r[i] for i in present])) if present else float("nan")
    return {
        "n": int(len(y)),
        "accuracy": float(accuracy_score(y, pred)),
        "wa": float(accuracy_score(y, pred)),
        "ua": ua,
        "macro_f1": float(f1_score(y, pred, labels=ids, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(y, pred, labels=ids, average="weighted", zero_division=0)),
        "ece": ece_score(probs, y, n_bins),
        "nll": nll_score(probs, y),
        "brier": brier_score(probs, y),
        "per_class": {lab: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                            "support": int(s[i])} for i, lab in enumerate(labels)},
        "labels": labels,
        "confusion_matrix": confusion_matrix(y, pred, labels=ids).tolist(),
    }


def majority_baseline(y_train, y_eval, labels: Sequence[str] = LABELS) -> dict:
    """Metrics of always predicting the most frequent training label."""
    labels = list(labels)
    ytr = _as_ids(y_train, labels)
    yev = _as_ids(y_eval, labels)
    major = int(np.bincount(ytr, minlength=len(labels)).argmax())
    probs = np.full((len(yev), len(labels)), 1e-6)
    probs[:, major] = 1.0
    probs /= probs.sum(axis=1, keepdims=True)
    m = classification_metrics(yev, probs, labels)
    m["majority_label"] = labels[major]
    return m


def _macro_f1_from_pairs(y: np.ndarray, pred: np.ndarray, k: int) -> float:
    cm = np.bincount(y * k + pred, minlength=k * k).reshape(k, k).astype(np.float64)
    tp = np.diag(cm)
    denom = cm.sum(axis=0) + cm.sum(axis=1)
    f1 = np.divide(2 * tp, denom, out=np.zeros(k), where=denom > 0)
    return float(f1.mean())


def _ua_from_pairs(y: np.ndarray, pred: np.ndarray, k: int) -> float:
    support = np.bincount(y, minlength=k)
    hits = np.bincount(y[y == pred], minlength=k)
    present = support > 0
    return float(np.mean(hits[present] / support[present]))


def bootstrap_ci(y_true, probs: np.ndarray, metric: str = "macro_f1", n_boot: int = 1000, seed: int = 0,
                 alpha: float = 0.05, labels: Sequence[str] = LABELS) -> tuple[float, float]:
    """Percentile bootstrap interval of a metric over utterances (resampled with replacement).

    macro-F1 (sklearn's zero_division=0 convention over all labels), UA and accuracy are computed
    from confusion counts with numpy, so 1000 resamples take milliseconds. ECE's interval is
    bias-corrected (`ece_bias_corrected`)."""
    labels = list(labels)
    k = len(labels)
    y = _as_ids(y_true, labels)
    probs = np.asarray(probs, dtype=np.float64)
    pred = probs.argmax(axis=1)
    rng = np.random.default_rng(seed)
    n = len(y)
    vals = np.empty(n_boot)
    for b in range(n_boot):
        idx = rng.integers(0, n, n)
        yt, yp = y[idx], pred[idx]
        if metric == "macro_f1":
            vals[b] = _macro_f1_from_pairs(yt, yp, k)
        elif metric == "ua":
            vals[b] = _ua_from_pairs(yt, yp, k)
        elif metric == "accuracy":
            vals[b] = np.mean(yt == yp)
        elif metric == "ece":
            vals[b] = ece_score(probs[idx], yt)
        else:
            raise ValueError(f"unknown bootstrap metric {metric!r}")
    lo, hi = np.percentile(vals, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    if metric == "ece":
        lo, hi = ece_bias_corrected(lo, hi, float(vals.mean()), ece_score(probs, y))
    return float(lo), float(hi)


def ece_bias_corrected(lo: float, hi: float, boot_mean: float, point: float) -> tuple[float, float]:
    """Shift a percentile bootstrap interval of ECE by the bootstrap bias (mean of resamples - point).

    Binned ECE grows when rows are resampled with replacement (duplicates make bins noisier), so the plain
    percentile interval sits above the point estimate; shifting it by that bias centres it again."""
    bias = boot_mean - point
    return max(0.0, lo - bias), max(0.0, hi - bias)


def confusion_frame(confusion, labels: Sequence[str] = LABELS):
    import pandas as pd
    df = pd.DataFrame(np.asarray(confusion, dtype=int), index=list(labels), columns=list(labels))
    df.index.name = "true\\pred"
    return df


def save_confusion_csv(path: str | Path, confusion, labels: Sequence[str] = LABELS) -> Path:
    """Confusion matrix CSV: first column `true_label`, then one column per predicted label."""
    df = confusion_frame(confusion, labels).reset_index().rename(columns={"true\\pred": "true_label"})
    return write_csv_atomic(path, df)


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of logits [n, k] (float64, max-shifted)."""
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def entropy(probs: np.ndarray) -> np.ndarray:
    """Natural-log entropy along the last axis (a scalar for one distribution)."""
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0)
    return -(p * np.log(p)).sum(axis=-1)


def ece_sampling_floor(probs: np.ndarray, n_sim: int = 2000, n_bins: int = 15, seed: int = 0) -> dict:
    """ECE that a PERFECTLY calibrated model would still show on this many rows.

    Keeps the rows' top-1 confidences, draws "correct" ~ Bernoulli(confidence) `n_sim` times and measures
    ECE each time: the finite-sample bias of the binned estimator. An observed ECE inside this range
    cannot be told apart from perfect calibration on a test set this size."""
    conf = np.asarray(probs, dtype=np.float64).max(axis=1)
    n = conf.size
    if n == 0:
        return {"n": 0, "mean": None, "p05": None, "p95": None, "n_sim": int(n_sim)}
    rng = np.random.default_rng(seed)
    bins = ece_bin_index(conf, n_bins)
    valid = (bins >= 0).astype(float)
    correct = rng.random((int(n_sim), n)) < conf  # (n_sim, n)
    offs = (np.arange(int(n_sim)) * n_bins)[:, None]
    idx = (offs + np.maximum(bins, 0)[None, :]).ravel()
    acc_sum = np.bincount(idx, weights=(correct * valid).ravel(), minlength=n_sim * n_bins)
    conf_sum = np.bincount(idx, weights=np.broadcast_to(conf * valid, correct.shape).ravel(),
                           minlength=n_sim * n_bins)
    ece = np.abs(acc_sum - conf_sum).reshape(int(n_sim), n_bins).sum(1) / n
    return {"n": int(n), "mean": float(ece.mean()), "p05": float(np.percentile(ece, 5)),
            "p95": float(np.percentile(ece, 95)), "n_sim": int(n_sim)}
