"""Classification and calibration metrics shared by every stage (scikit-learn underneath).

ECE follows Guo et al. 2017: 15 equal-width bins on top-1 confidence, a sample falls in a bin
when lower < confidence <= upper, ECE = sum(bin size / n * |accuracy(bin) - confidence(bin)|).
Macro-F1, UA (mean recall over the labels present), WA (accuracy), confusion counts, bootstrap intervals
(`scipy.stats.bootstrap` over utterances) and the evaluation stage's full metrics dict live here, for every stage.
Taught in notebook 04 (04_evaluate_wav2vec2).
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .common import LABELS, N_BOOTSTRAP, SERError, write_csv_atomic


def _as_ids(y, labels: Sequence[str]) -> np.ndarray:
    y = np.asarray(y)
    if y.dtype.kind in "iu":
        return y.astype(int)
    index = {lab: i for i, lab in enumerate(labels)}
    return np.array([index[v] for v in y], dtype=int)


def ece_bin_index(conf: np.ndarray, n_bins: int = 15) -> np.ndarray:
    """The ECE bin of each confidence: bin b holds edges[b] < conf <= edges[b+1] (15 equal-width bins on [0, 1]);
    -1 = in no bin (conf <= 0). The one binning rule of every ECE here (score, reliability, bootstrap, floor)."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.clip(np.searchsorted(edges, conf, side="left") - 1, -1, n_bins - 1)


def ece_score(probs: np.ndarray, y_true, n_bins: int = 15) -> float:
    probs = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y_true, dtype=int)
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y).astype(np.float64)
    bins = ece_bin_index(conf, n_bins)
    ece = 0.0
    for b in range(n_bins):
        in_bin = bins == b
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    return float(ece)


def _ece_rows(bins: np.ndarray, conf: np.ndarray, correct: np.ndarray, n_bins: int) -> np.ndarray:
    """ECE of each row of [R, n] arrays (bins from `ece_bin_index`; all three broadcast to [R, n])."""
    bins, conf, correct = np.broadcast_arrays(np.atleast_2d(bins), np.atleast_2d(conf), np.atleast_2d(correct))
    r, n = bins.shape
    valid = (bins >= 0).astype(float)
    idx = (np.arange(r)[:, None] * n_bins + np.maximum(bins, 0)).ravel()
    conf_sum = np.bincount(idx, weights=(conf * valid).ravel(), minlength=r * n_bins)
    acc_sum = np.bincount(idx, weights=(correct * valid).ravel(), minlength=r * n_bins)
    return np.abs(acc_sum - conf_sum).reshape(r, n_bins).sum(1) / n


def reliability_bins(probs: np.ndarray, y_true, n_bins: int = 15) -> dict:
    probs = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y_true, dtype=int)
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = ece_bin_index(conf, n_bins)
    out = {"lower": [], "upper": [], "count": [], "accuracy": [], "confidence": []}
    for b, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        m = bins == b
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
    from sklearn.metrics import (accuracy_score, confusion_matrix, f1_score,
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


def label_ids(labels_col, labels: Sequence[str], source: str) -> np.ndarray:
    """Label codes -> ids in `labels` order; an unknown code is an error naming `source`, the row and the code."""
    labels = list(labels)
    index = {lab: i for i, lab in enumerate(labels)}
    bad = [(i + 2, v) for i, v in enumerate(labels_col) if v not in index]
    if bad:
        raise SERError(f"{source}: unknown label {bad[0][1]!r} at row {bad[0][0]} (column 'label') is not one of the "
                       f"model's labels {labels} ({len(bad)} such rows)")
    return np.array([index[v] for v in labels_col], dtype=int)


def _confusion_rows(y: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """Confusion counts [R, k, k] (rows = true) of each row of [R, n] label ids."""
    y, pred = np.atleast_2d(y), np.atleast_2d(pred)
    r = y.shape[0]
    offs = np.arange(r)[:, None] * (k * k)
    return np.bincount((offs + y * k + pred).ravel(), minlength=r * k * k).reshape(r, k, k)


def _macro_f1_rows(cm: np.ndarray) -> np.ndarray:
    """Macro-F1 of each [k, k] confusion in cm [R, k, k]: sklearn's zero_division=0 over all labels."""
    tp = np.einsum("rii->ri", cm).astype(float)
    denom = cm.sum(1) + cm.sum(2)
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0).mean(1)


def _ua_rows(cm: np.ndarray) -> np.ndarray:
    """UA (mean recall over the labels present) of each confusion in cm [R, k, k]."""
    support = cm.sum(2)
    hits = np.einsum("rii->ri", cm)
    recall = np.divide(hits, support, out=np.full(support.shape, np.nan), where=support > 0)
    return np.nanmean(recall, axis=1)


def confusion_counts(y, pred, n_classes: int) -> np.ndarray:
    """Confusion matrix [k, k] (rows = true, cols = predicted) of integer label ids."""
    return _confusion_rows(np.asarray(y, dtype=int), np.asarray(pred, dtype=int), n_classes)[0]


def macro_f1(y, pred, n_classes: int) -> float:
    """Macro-F1 over all `n_classes` labels (sklearn's f1_score(average="macro", zero_division=0))."""
    return float(_macro_f1_rows(confusion_counts(y, pred, n_classes)[None])[0])


def unweighted_accuracy(y, pred, n_classes: int) -> float:
    """UA: mean per-class recall over the labels present in `y` (sklearn's balanced_accuracy_score)."""
    return float(_ua_rows(confusion_counts(y, pred, n_classes)[None])[0])


BOOTSTRAP_METRICS = ("macro_f1", "ua", "accuracy", "ece")


def _bootstrap_statistic(metric: str, k: int, n_bins: int):
    """A vectorised statistic of paired (y, pred, conf) rows for scipy.stats.bootstrap."""
    if metric not in BOOTSTRAP_METRICS:
        raise ValueError(f"unknown bootstrap metric {metric!r}")

    def statistic(y, pred, conf, axis=-1):
        y2, p2, c2 = np.atleast_2d(y), np.atleast_2d(pred), np.atleast_2d(conf)
        if metric == "macro_f1":
            v = _macro_f1_rows(_confusion_rows(y2, p2, k))
        elif metric == "ua":
            v = _ua_rows(_confusion_rows(y2, p2, k))
        elif metric == "accuracy":
            v = (y2 == p2).mean(axis=-1)
        else:
            v = _ece_rows(ece_bin_index(c2, n_bins), c2, (y2 == p2).astype(float), n_bins)
        return v if np.ndim(y) > 1 else v[0]
    return statistic


def bootstrap_interval(y, probs: np.ndarray, metric: str = "macro_f1", n_bootstrap: int = N_BOOTSTRAP,
                       seed: int = 0, alpha: float = 0.05, n_bins: int = 15) -> tuple[float, float]:
    """Percentile bootstrap interval of one metric over utterances (`scipy.stats.bootstrap`, paired rows
    resampled with replacement from `np.random.default_rng(seed)`; integer label ids `y`).

    macro-F1, UA, accuracy and ECE are computed from counts for all resamples at once (milliseconds for 1000).
    ECE's interval is bias-corrected (`ece_bias_corrected`)."""
    from scipy.stats import bootstrap
    y = np.asarray(y, dtype=int)
    probs = np.asarray(probs, dtype=np.float64)
    pred, conf = probs.argmax(axis=1), probs.max(axis=1)
    stat = _bootstrap_statistic(metric, probs.shape[1], n_bins)
    if len(y) < 2:  # every resample of one row is that row (scipy needs two)
        point = float(stat(y, pred, conf))
        return point, point
    res = bootstrap((y, pred, conf), stat, n_resamples=int(n_bootstrap), confidence_level=1 - alpha,
                    method="percentile", paired=True, vectorized=True, rng=np.random.default_rng(seed))
    dist = res.bootstrap_distribution
    # np.percentile of the resamples rather than res.confidence_interval (scipy's quantile of the float
    # alpha/2 = 0.025000000000000022 differs from np.percentile's 2.5 in the last bit): the numbers stay those
    # of the earlier runs' reports
    lo, hi = (float(v) for v in np.percentile(dist, [100 * alpha / 2, 100 * (1 - alpha / 2)]))
    if metric == "ece":
        lo, hi = ece_bias_corrected(lo, hi, float(dist.mean()), ece_score(probs, y, n_bins))
    return lo, hi


def bootstrap_ci(y_true, probs: np.ndarray, metric: str = "macro_f1", n_bootstrap: int = N_BOOTSTRAP,
                 seed: int = 0, alpha: float = 0.05, labels: Sequence[str] = LABELS) -> tuple[float, float]:
    """`bootstrap_interval` for labels given as codes or ids (in `labels` order)."""
    return bootstrap_interval(_as_ids(y_true, list(labels)), probs, metric, n_bootstrap, seed, alpha)


def bootstrap_intervals(y: np.ndarray, probs: np.ndarray, n_bootstrap: int = N_BOOTSTRAP, seed: int = 0,
                        alpha: float = 0.05, n_bins: int = 15) -> dict:
    """The macro-F1 and (bias-corrected) ECE intervals of `bootstrap_interval` as lists; None without resamples."""
    if n_bootstrap <= 0 or len(y) == 0:
        return {"macro_f1": None, "ece": None}
    return {m: list(bootstrap_interval(y, probs, m, n_bootstrap, seed, alpha, n_bins)) for m in ("macro_f1", "ece")}


def ece_bias_corrected(lo: float, hi: float, boot_mean: float, point: float) -> tuple[float, float]:
    """Shift a percentile bootstrap interval of ECE by the bootstrap bias (mean of resamples - point).

    Binned ECE grows when rows are resampled with replacement (duplicates make bins noisier), so the plain
    percentile interval sits above the point estimate; shifting it by that bias centres it again."""
    bias = boot_mean - point
    return max(0.0, lo - bias), max(0.0, hi - bias)


# ----------------------------------------------------------------------------- one evaluation's metrics
BREAKDOWN_COLUMNS = ("language", "dialog_type", "speaker")


def majority_metrics(y_true: np.ndarray, labels: Sequence[str], train_counts: Mapping[str, float] | None = None,
                     source: str | None = None) -> dict:
    """Always predict the majority label of the training distribution if known, else of the evaluated set."""
    labels = list(labels)
    if train_counts:
        ref = np.repeat(np.arange(len(labels)), [int(train_counts.get(lab, 0)) for lab in labels])
        src, detail = "train distribution", source or ""
    else:
        ref = np.asarray(y_true)
        src, detail = "evaluated set", "the training distribution is unknown"
    maj = majority_baseline(ref, y_true, labels)
    out = {k: maj[k] for k in ("majority_label", "accuracy", "ua", "macro_f1", "weighted_f1")}
    out["source"] = src
    out["source_detail"] = detail
    return out


def group_metrics(y: np.ndarray, probs: np.ndarray, groups: Sequence, labels: Sequence[str]) -> dict:
    """Metrics per group value (n, accuracy, ua, macro_f1, weighted_f1, ece, per-class support)."""
    groups = np.asarray([str(g) for g in groups])
    out = {}
    for g in sorted(set(groups)):
        m = groups == g
        gm = classification_metrics(y[m], probs[m], labels)
        out[g] = {k: gm[k] for k in ("n", "accuracy", "ua", "macro_f1", "weighted_f1", "ece")}
        out[g]["support"] = {lab: gm["per_class"][lab]["support"] for lab in labels}
    return out


def compute_metrics(y: np.ndarray, probs: np.ndarray, labels: Sequence[str], meta=None,
                    n_bootstrap: int = N_BOOTSTRAP, seed: int = 0, train_counts=None, train_source=None) -> dict:
    """Full metrics dict of one evaluation (stage 04 and the baseline): `classification_metrics`, bootstrap 95%
    intervals of macro-F1 and UA (`n_bootstrap` resamples; 0: none), the majority baseline and, when `meta` (a
    DataFrame) has them, breakdowns by BREAKDOWN_COLUMNS."""
    labels = list(labels)
    m = classification_metrics(y, probs, labels)
    if n_bootstrap:
        m["ci95"] = {k: list(bootstrap_ci(y, probs, k, n_bootstrap=n_bootstrap, seed=seed, labels=labels))
                     for k in ("macro_f1", "ua")}
        # "n_boot": the report key of every metrics JSON written so far (an artifact, kept as it was)
        m["bootstrap"] = {"n_boot": int(n_bootstrap), "seed": seed, "unit": "utterance", "interval": "percentile 95%"}
    m["majority_baseline"] = majority_metrics(y, labels, train_counts, train_source)
    m["breakdowns"] = {}
    if meta is not None:
        for col in BREAKDOWN_COLUMNS:
            if col in meta.columns and meta[col].notna().any():
                vals = meta[col].fillna("n/a").astype(str).to_numpy()
                m["breakdowns"][col] = group_metrics(y, probs, vals, labels)
    return m


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
    correct = rng.random((int(n_sim), n)) < conf  # (n_sim, n)
    ece = _ece_rows(ece_bin_index(conf, n_bins)[None, :], conf[None, :], correct, n_bins)
    return {"n": int(n), "mean": float(ece.mean()), "p05": float(np.percentile(ece, 5)),
            "p95": float(np.percentile(ece, 95)), "n_sim": int(n_sim)}
