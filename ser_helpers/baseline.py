"""Classical baseline: utterance statistics of MFCCs (+ deltas) and prosody -> standardized logistic regression.

Features per utterance (librosa): mean and std of 20 MFCCs, their deltas and delta-deltas; f0 (librosa.yin, or
pyin) statistics in semitones over voiced frames (mean, std, min, max, range, slope), voiced ratio, RMS energy in dB
(mean, std, max, range), spectral centroid and zero-crossing rate (mean, std) and the duration. The regularisation C is
chosen on validation macro-F1 only; the test set is scored once, at the end.

The model is saved as plain JSON (scaler mean/scale, coefficients, intercepts, feature settings): no pickle/joblib.
Per-file features are cached (`feature_cache.npz`, keyed by path, size, mtime and settings) so reruns are fast.
Every setting of `ser train-baseline` and its default is written once, in `BaselineConfig`.
Taught in notebook 04 (04_evaluate_wav2vec2).
"""
from __future__ import annotations

import argparse
import hashlib
import multiprocessing as mp
import os
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from . import audio as audio_mod
from . import metrics as M
from .common import (BOOTSTRAP_FLAG, LABELS, MAX_DURATION_SEC, N_BOOTSTRAP, SAMPLE_RATE, SCORING_BATCH_SIZE, SERError,
                     add_dataclass_flags, add_split_overlap_flag,
                     atomic_dir, StageConfig, check_splits, read_json, read_manifest, set_seed, write_json_atomic)

FEATURE_VERSION = 2
N_MFCC = 20
DEFAULT_C_GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
MODEL_FILE = "baseline_model.json"
CACHE_FILE = "feature_cache.npz"
F0_MIN, F0_MAX = 60.0, 500.0
F0_METHODS = ("yin", "pyin")
DEFAULT_F0_METHOD = "yin"
HOP = 160  # 10 ms at 16 kHz


def c_values(text: str) -> tuple[float, ...]:
    """`--c-grid` text ("0.01,0.1,1") -> the C values; empty text: DEFAULT_C_GRID."""
    return tuple(float(c) for c in text.split(",") if c.strip()) if text else DEFAULT_C_GRID


@dataclass
class BaselineConfig(StageConfig):
    """Settings of one `train_baseline` run, each default written once, here: the `ser train-baseline` flags are
    generated from these fields (`common.add_dataclass_flags`), and notebook 04 (04_evaluate_wav2vec2.ipynb) builds
    one with `BaselineConfig.from_params(globals())`. Manifests and the output dir are arguments of the call."""
    seed: int = 42
    sample_rate: int = SAMPLE_RATE
    max_duration_sec: float = MAX_DURATION_SEC
    c_grid: tuple = field(default=DEFAULT_C_GRID, metadata={
        "argparse": {"type": c_values}, "help": "comma list of C values tried (chosen on val macro-F1)"})
    f0_method: str = field(default=DEFAULT_F0_METHOD, metadata={"choices": F0_METHODS})
    num_workers: int = field(default=0, metadata={
        "help": "processes computing the features (0/1: this one); 2 on 2 cores: 1.8x faster (threads: 1.0x)"})
    n_bootstrap: int = field(default=N_BOOTSTRAP, metadata=BOOTSTRAP_FLAG)
    allow_split_overlap: bool = field(default=False, metadata={"cli": False})  # common.add_split_overlap_flag
    labels: tuple = field(default=tuple(LABELS), metadata={"cli": False})



def feature_names(n_mfcc: int = N_MFCC) -> list[str]:
    names = []
    for block in ("mfcc", "dmfcc", "ddmfcc"):
        for stat in ("mean", "std"):
            names += [f"{block}{i}_{stat}" for i in range(n_mfcc)]
    names += ["f0_mean_st", "f0_std_st", "f0_min_st", "f0_max_st", "f0_range_st", "f0_slope_st_per_s",
              "voiced_ratio", "rms_db_mean", "rms_db_std", "rms_db_max", "rms_db_range",
              "centroid_mean", "centroid_std", "zcr_mean", "zcr_std", "duration_sec"]
    return names


def extract_features(y: np.ndarray, sample_rate: int = SAMPLE_RATE, f0_method: str = DEFAULT_F0_METHOD) -> np.ndarray:
    """One utterance (mono float32) -> feature vector in `feature_names()` order."""
    import librosa
    y = np.asarray(y, dtype=np.float32)
    sr = int(sample_rate)
    hop = max(1, int(round(sr * 0.010)))
    duration = y.size / sr
    if y.size < 2048:  # very short clips: pad so every frame-based feature exists
        y = np.pad(y, (0, 2048 - y.size))
    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=N_MFCC, n_fft=512, hop_length=hop)
    width = min(9, mfcc.shape[1] if mfcc.shape[1] % 2 else mfcc.shape[1] - 1)
    width = max(width, 3)
    if mfcc.shape[1] < 3:
        d1 = np.zeros_like(mfcc); d2 = np.zeros_like(mfcc)
    else:
        d1 = librosa.feature.delta(mfcc, width=width, mode="nearest")
        d2 = librosa.feature.delta(mfcc, order=2, width=width, mode="nearest")
    parts = []
    for block in (mfcc, d1, d2):
        parts += [block.mean(axis=1), block.std(axis=1)]

    rms = librosa.feature.rms(y=y, frame_length=512, hop_length=hop)[0]
    rms_db = 20 * np.log10(np.maximum(rms, 1e-5))
    if f0_method == "pyin":
        f0, voiced, _ = librosa.pyin(y, fmin=F0_MIN, fmax=F0_MAX, sr=sr, frame_length=1024, hop_length=hop)
        voiced = voiced & np.isfinite(f0)
    elif f0_method == "yin":
        f0 = librosa.yin(y, fmin=F0_MIN, fmax=F0_MAX, sr=sr, frame_length=1024, hop_length=hop)
        n = min(len(f0), len(rms_db))
        f0, loud = f0[:n], rms_db[:n]
        # voiced: loud enough (within 30 dB of the clip's peak) and not stuck at the search limits
        voiced = (loud > loud.max() - 30.0) & (f0 > F0_MIN * 1.05) & (f0 < F0_MAX * 0.95)
    else:
        raise SERError(f"unknown f0_method {f0_method!r}; use 'yin' or 'pyin'")
    semis = 12 * np.log2(np.where(voiced, f0, 100.0) / 100.0)[voiced] if voiced.any() else np.zeros(0)
    if semis.size >= 2:
        t = np.flatnonzero(voiced) * hop / sr
        slope = float(np.polyfit(t, semis, 1)[0]) if np.ptp(t) > 0 else 0.0
        f0_stats = [semis.mean(), semis.std(), semis.min(), semis.max(), np.ptp(semis), slope]
    else:
        f0_stats = [0.0] * 6
    voiced_ratio = float(voiced.mean()) if voiced.size else 0.0
    centroid = librosa.feature.spectral_centroid(y=y, sr=sr, n_fft=512, hop_length=hop)[0] / 1000.0
    zcr = librosa.feature.zero_crossing_rate(y, frame_length=512, hop_length=hop)[0]
    prosody = f0_stats + [voiced_ratio, rms_db.mean(), rms_db.std(), rms_db.max(), np.ptp(rms_db),
                          centroid.mean(), centroid.std(), zcr.mean(), zcr.std(), duration]
    vec = np.concatenate(parts + [np.asarray(prosody, dtype=np.float64)]).astype(np.float64)
    return np.nan_to_num(vec, nan=0.0, posinf=0.0, neginf=0.0)


# ----------------------------------------------------------------------------- feature cache
def _cache_key(path: str, sample_rate: int, max_duration_sec: float, f0_method: str) -> str:
    st = os.stat(path)
    raw = f"{FEATURE_VERSION}|{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}|{sample_rate}|{max_duration_sec}|{f0_method}"
    return hashlib.sha1(raw.encode()).hexdigest()


def _load_cache(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        return {}
    try:
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    except Exception:  # noqa: BLE001 - a broken cache is rebuilt, never fatal
        warnings.warn(f"{path}: unreadable feature cache, rebuilding it", stacklevel=2)
        return {}


def _save_cache(path: Path, cache: dict[str, np.ndarray]) -> None:
    from .common import atomic_path
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **cache)


def _clip_features(job) -> tuple[int, str, np.ndarray]:
    """(row, cache key, feature vector) of one manifest row; the clip cut at max_duration_sec."""
    i, path, key, sample_rate, max_duration_sec, f0_method, manifest_name = job
    try:
        y = audio_mod.load_audio(path, sample_rate=sample_rate, max_duration_sec=None)
    except audio_mod.AudioError as exc:
        raise audio_mod.AudioError(f"{manifest_name} row {i + 2}: {exc}") from exc
    y = y[: int(round(max_duration_sec * sample_rate))] if max_duration_sec else y
    return i, key, extract_features(y, sample_rate, f0_method)


def _one_thread_per_process() -> None:
    """In a feature worker: one BLAS/FFT thread (the processes are the parallelism; two each would oversubscribe
    the cores: 2 processes measured 0.7x serial without this, 1.8x with it)."""
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)


def manifest_features(df, sample_rate: int = SAMPLE_RATE, max_duration_sec: float = MAX_DURATION_SEC,
                      f0_method: str = DEFAULT_F0_METHOD,
                      cache: dict | None = None, num_workers: int = 0, desc: str = "features",
                      manifest_name: str = "manifest", used_keys: set | None = None) -> np.ndarray:
    """Feature matrix for a manifest's rows (clips cut at `max_duration_sec`), using/filling `cache`
    (and adding the cache keys of these rows to `used_keys`)."""
    from tqdm.auto import tqdm
    cache = {} if cache is None else cache
    paths = list(df["path"])
    out: list[np.ndarray | None] = [None] * len(paths)
    todo = []
    for i, p in enumerate(paths):
        if not os.path.isfile(p):
            raise audio_mod.AudioError(f"{manifest_name} row {i + 2}: {p}: file not found")
        key = _cache_key(p, sample_rate, max_duration_sec, f0_method)
        if used_keys is not None:
            used_keys.add(key)
        if key in cache:
            out[i] = cache[key]
        else:
            todo.append((i, p, key))

    jobs = [(i, p, key, sample_rate, max_duration_sec, f0_method, manifest_name) for i, p, key in todo]
    if jobs:
        if num_workers and num_workers > 1:
            # processes, not threads: librosa's feature code holds the GIL (threads measured 1.0x). One clip here
            # first: the children inherit librosa's compiled (numba) pitch tracker instead of each loading it
            extract_features(np.zeros(2048, np.float32), sample_rate, f0_method)
            with ProcessPoolExecutor(int(num_workers), mp_context=mp.get_context("fork"),
                                     initializer=_one_thread_per_process) as pool:
                results = list(tqdm(pool.map(_clip_features, jobs, chunksize=16), total=len(jobs), desc=desc,
                                    leave=False))
        else:
            results = [_clip_features(job) for job in tqdm(jobs, desc=desc, leave=False)]
        for i, key, vec in results:
            out[i] = vec
            cache[key] = vec
    return np.vstack(out) if out else np.zeros((0, len(feature_names())))


# ----------------------------------------------------------------------------- the model
@dataclass
class BaselineModel:
    """Standardized multinomial logistic regression over `feature_names`; probabilities in `labels` order."""
    labels: list[str]
    feature_names: list[str]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray          # [n_labels, n_features] on standardized features
    intercept: np.ndarray     # [n_labels]
    C: float
    sample_rate: int = SAMPLE_RATE
    max_duration_sec: float = MAX_DURATION_SEC
    f0_method: str = DEFAULT_F0_METHOD
    extra: dict = field(default_factory=dict)

    def decision(self, X: np.ndarray) -> np.ndarray:
        Z = (np.asarray(X, dtype=np.float64) - self.mean) / self.scale
        return Z @ self.coef.T + self.intercept

    def predict_proba_features(self, X: np.ndarray) -> np.ndarray:
        logits = self.decision(X)
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)

    def predict_proba(self, arrays: Sequence[np.ndarray], sample_rate: int | None = None) -> np.ndarray:
        """Probabilities [n, n_labels] for mono float32 clips at `sample_rate` (default: the model's)."""
        sr = int(sample_rate or self.sample_rate)
        if sr != self.sample_rate:
            arrays = [audio_mod.resample(np.asarray(a, dtype=np.float32), sr, self.sample_rate) for a in arrays]
        limit = int(round(self.max_duration_sec * self.sample_rate)) if self.max_duration_sec else None
        X = np.vstack([extract_features(np.asarray(a, dtype=np.float32)[:limit], self.sample_rate, self.f0_method)
                       for a in arrays]) if len(arrays) else np.zeros((0, len(self.feature_names)))
        return self.predict_proba_features(X)

    def to_json(self) -> dict:
        return {"kind": "mfcc_prosody_logreg", "feature_version": FEATURE_VERSION, "labels": self.labels,
                "feature_names": self.feature_names, "scaler": {"mean": self.mean, "scale": self.scale},
                "coef": self.coef, "intercept": self.intercept, "C": self.C, "sample_rate": self.sample_rate,
                "max_duration_sec": self.max_duration_sec, "f0_method": self.f0_method, **self.extra}

    def save(self, directory: str | os.PathLike) -> Path:
        return write_json_atomic(Path(directory) / MODEL_FILE, self.to_json())

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "BaselineModel":
        path = Path(directory)
        path = path / MODEL_FILE if path.is_dir() else path
        if not path.exists():
            raise SERError(f"{path}: baseline model not found (train it with `ser train-baseline`)")
        d = read_json(path)
        if d.get("feature_version") != FEATURE_VERSION:
            raise SERError(f"{path}: feature_version {d.get('feature_version')} != {FEATURE_VERSION}; retrain it")
        return cls(labels=list(d["labels"]), feature_names=list(d["feature_names"]),
                   mean=np.asarray(d["scaler"]["mean"], float), scale=np.asarray(d["scaler"]["scale"], float),
                   coef=np.asarray(d["coef"], float), intercept=np.asarray(d["intercept"], float), C=float(d["C"]),
                   sample_rate=int(d["sample_rate"]), max_duration_sec=float(d["max_duration_sec"]),
                   f0_method=d.get("f0_method", "yin"))  # files written before f0_method was saved used yin


class BaselineAudioClassifier:
    """The classical MFCC+prosody logistic regression behind the `inference.AudioClassifier` interface
    (`AudioClassifier.load` of a folder holding baseline_model.json returns one)."""

    def __init__(self, model, model_dir: str):
        self.model = model
        self.model_dir = model_dir
        self.labels = list(model.labels)
        self.device = "cpu"
        self.sampling_rate = SAMPLE_RATE

    @classmethod
    def load(cls, model_dir: str | os.PathLike, device: str = "cpu") -> "BaselineAudioClassifier":
        return cls(BaselineModel.load(model_dir), str(model_dir))

    def predict_proba(self, waves: Sequence[np.ndarray], batch_size: int = SCORING_BATCH_SIZE,
                      max_duration_sec: float | None = MAX_DURATION_SEC,
                      progress: bool = False) -> np.ndarray:
        max_samples = int(round(max_duration_sec * SAMPLE_RATE)) if max_duration_sec else None
        clipped = [np.asarray(w, dtype=np.float32)[:max_samples] if max_samples else w for w in waves]
        if not clipped:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return np.asarray(self.model.predict_proba(clipped, sample_rate=SAMPLE_RATE), dtype=np.float32)

    def predict_files(self, paths: Sequence[str | os.PathLike], batch_size: int = SCORING_BATCH_SIZE,
                      max_duration_sec: float | None = MAX_DURATION_SEC, progress: bool = False) -> np.ndarray:
        return self.predict_proba([audio_mod.load_audio(p) for p in paths], batch_size, max_duration_sec, progress)


def _fit_logreg(Z: np.ndarray, y: np.ndarray, C: float, seed: int, n_labels: int):
    """Fit on standardized Z; return (coef [n_labels, F], intercept [n_labels]) with absent classes at -inf-ish."""
    from sklearn.linear_model import LogisticRegression
    clf = LogisticRegression(C=C, max_iter=5000, class_weight="balanced", random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter on tiny sets
        clf.fit(Z, y)
    coef = np.zeros((n_labels, Z.shape[1]))
    intercept = np.full(n_labels, -30.0)  # a class never seen in training gets ~zero probability
    classes = clf.classes_.astype(int)
    if len(classes) == 2:  # sklearn's binary form: one row for class 1 -> symmetric softmax rows
        coef[classes[1]] = clf.coef_[0] / 2; coef[classes[0]] = -clf.coef_[0] / 2
        intercept[classes[1]] = clf.intercept_[0] / 2; intercept[classes[0]] = -clf.intercept_[0] / 2
    else:
        coef[classes] = clf.coef_
        intercept[classes] = clf.intercept_
    return coef, intercept


@dataclass
class BaselineResult:
    output_dir: Path
    model: BaselineModel
    report: dict

    @property
    def val_metrics(self) -> dict:
        return self.report["val"]

    @property
    def test_metrics(self) -> dict | None:
        return self.report.get("test")


def _score(model: BaselineModel, X, y, meta, n_bootstrap: int, seed: int, train_counts: dict, train_source: str):
    """The evaluation stage's metrics (metrics.compute_metrics): same numbers, breakdowns and majority baseline."""
    probs = model.predict_proba_features(X)
    return M.compute_metrics(y, probs, model.labels, meta, n_bootstrap, seed, train_counts, train_source), probs


def _search_c(X: dict, Y: dict, cfg: BaselineConfig) -> tuple[BaselineModel, list[dict]]:
    """Standardize on train, fit one logistic regression per C of `cfg.c_grid`; keep the best on val macro-F1
    (ties: the smaller, simpler C). Returns (model, the search record)."""
    labels = list(cfg.labels)
    mean = X["train"].mean(axis=0)
    scale = X["train"].std(axis=0)
    scale = np.where(scale > 1e-8, scale, 1.0)
    Ztr = (X["train"] - mean) / scale
    search, best = [], None
    for C in sorted(float(c) for c in cfg.c_grid):
        coef, intercept = _fit_logreg(Ztr, Y["train"], C, cfg.seed, len(labels))
        cand = BaselineModel(labels, feature_names(), mean, scale, coef, intercept, C, cfg.sample_rate,
                             cfg.max_duration_sec, cfg.f0_method)
        vm = M.classification_metrics(Y["val"], cand.predict_proba_features(X["val"]), labels)
        search.append({"C": C, "val_macro_f1": vm["macro_f1"], "val_ua": vm["ua"], "val_accuracy": vm["accuracy"]})
        if best is None or vm["macro_f1"] > best[0] + 1e-12:
            best = (vm["macro_f1"], cand)
    return best[1], search


def _write_split_outputs(folder: Path, split: str, df, P: np.ndarray, labels: list[str], cm) -> None:
    """{split}_predictions.csv, {split}_confusion_matrix.csv and its two PNGs (counts, row-normalised)."""
    import matplotlib.pyplot as plt
    import pandas as pd
    from . import plots
    pred = pd.DataFrame({"path": df["path"], "label": df["label"],
                         "prediction": [labels[i] for i in P.argmax(axis=1)]})
    for j, lab in enumerate(labels):
        pred[f"prob_{lab}"] = P[:, j]
    for col in ("language", "speaker", "dialog_type"):
        if col in df.columns:
            pred[col] = df[col].values
    pred.to_csv(folder / f"{split}_predictions.csv", index=False)
    M.save_confusion_csv(folder / f"{split}_confusion_matrix.csv", cm, labels)
    for norm, suffix in ((False, ""), (True, "_normalized")):
        fig = plots.confusion_heatmap(cm, labels, folder / f"{split}_confusion_matrix{suffix}.png",
                                      title=f"baseline {split}" + (" (row-normalised)" if norm else ""),
                                      normalize=norm)
        plt.close(fig)


def train_baseline(train_manifest, val_manifest, test_manifest="", output_dir="outputs/cpu/models/baseline/default",
                   config: BaselineConfig | None = None, **settings) -> BaselineResult:
    """Train the MFCC+prosody logistic-regression baseline; C is picked on val macro-F1; writes to `output_dir`:
    baseline_model.json, train_report.json (val/test metrics, C search, majority baseline), feature_cache.npz,
    {val,test}_predictions.csv, {val,test}_confusion_matrix.csv + PNG (counts and row-normalised)."""
    cfg = replace(config or BaselineConfig(), **settings)  # BaselineConfig fields as keywords override `config`
    t0 = time.perf_counter()
    set_seed(cfg.seed)
    labels = list(cfg.labels)
    if not cfg.c_grid:
        raise SERError("c_grid is empty: give at least one regularisation value C")
    output_dir = Path(output_dir)
    frames = {"train": read_manifest(train_manifest, labels), "val": read_manifest(val_manifest, labels)}
    sources = {"train": str(train_manifest), "val": str(val_manifest)}
    if test_manifest:
        frames["test"] = read_manifest(test_manifest, labels)
        sources["test"] = str(test_manifest)
    split_check = check_splits(frames, cfg.allow_split_overlap, sources)  # shared files/speakers refused
    cache = _load_cache(output_dir / CACHE_FILE)
    n_cached = len(cache)
    X, Y = {}, {}
    used: set = set()
    for split, df in frames.items():
        X[split] = manifest_features(df, cfg.sample_rate, cfg.max_duration_sec, cfg.f0_method, cache, cfg.num_workers,
                                     desc=f"baseline features ({split})", manifest_name=sources[split],
                                     used_keys=used)
        Y[split] = M.label_ids(df["label"], labels, sources[split])
    t_feat = time.perf_counter() - t0
    if len(np.unique(Y["train"])) < 2:
        raise SERError(f"{train_manifest}: training needs at least two labels, found {sorted(set(frames['train']['label']))}")
    model, search = _search_c(X, Y, cfg)

    report = {"model": "MFCC(+deltas)+prosody statistics -> standardized logistic regression (scikit-learn)",
              "C": model.C, "c_search": search, "selection": "C with the highest val macro-F1 (ties: smaller C)",
              "seed": cfg.seed, "sample_rate": cfg.sample_rate, "max_duration_sec": cfg.max_duration_sec,
              "f0_method": cfg.f0_method, "n_features": len(model.feature_names), "manifests": sources,
              "split_check": split_check, "rows": {s: int(len(df)) for s, df in frames.items()},
              "train_label_counts": {lab: int((Y["train"] == i).sum()) for i, lab in enumerate(labels)}}
    probs = {}
    scored = [s for s in ("val", "test") if s in frames]
    for split in scored:  # bootstrap intervals for the last (held-out) split only: they cost time
        report[split], probs[split] = _score(model, X[split], Y[split], frames[split],
                                             cfg.n_bootstrap if split == scored[-1] else 0, cfg.seed,
                                             report["train_label_counts"], f"train manifest {train_manifest}")
    report["timings"] = {"features_sec": round(t_feat, 3), "total_sec": round(time.perf_counter() - t0, 3),
                         "cached_files_before": n_cached, "files_featurised": len(cache) - n_cached,
                         "files": len(used)}

    with atomic_dir(output_dir) as tmp:
        model.save(tmp)
        _save_cache(tmp / CACHE_FILE, {k: cache[k] for k in used})  # stale entries dropped
        for split, P in probs.items():
            _write_split_outputs(tmp, split, frames[split], P, labels, report[split]["confusion_matrix"])
        report["timings"]["total_sec"] = round(time.perf_counter() - t0, 3)
        write_json_atomic(tmp / "train_report.json", report)
    return BaselineResult(output_dir, model, report)


# ----------------------------------------------------------------------------- toy data (tests, benches)
TOY_PROSODY = {"ang": (220.0, 0.5, 1.4), "hap": (260.0, 0.35, 1.2), "neu": (140.0, 0.2, 1.0), "sad": (110.0, 0.1, 0.8)}


def toy_clip(label: str, duration_sec: float, seed: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A synthetic voiced clip whose pitch, loudness and syllable rate depend on `label` (for tests and benches)."""
    rng = np.random.default_rng(seed)
    f0, amp, rate = TOY_PROSODY[label]
    f0 *= rng.uniform(0.85, 1.15)
    n = int(round(duration_sec * sample_rate))
    t = np.arange(n) / sample_rate
    contour = f0 * (1 + 0.08 * np.sin(2 * np.pi * rate * 0.5 * t + rng.uniform(0, 6)))
    phase = 2 * np.pi * np.cumsum(contour) / sample_rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 6))
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * rate * 2.5 * t + rng.uniform(0, 6))
    y = amp * 0.4 * voice * envelope + 0.01 * rng.standard_normal(n)
    return np.clip(y, -1, 1).astype(np.float32)


def toy_dataset(output_dir, speakers_per_split=(3, 1, 1), clips_per_label=3, durations=(0.8, 4.0), seed: int = 0,
                labels: Sequence[str] = LABELS) -> dict[str, Path]:
    """Write toy wavs + speaker-independent train/val/test manifests (with speaker/language columns)."""
    import pandas as pd
    output_dir = Path(output_dir)
    rng = np.random.default_rng(seed)
    out, k = {}, 0
    for split, n_spk in zip(("train", "val", "test"), speakers_per_split):
        rows = []
        for s in range(n_spk):
            spk = f"{split}_spk{s}"
            for lab in labels:
                for j in range(clips_per_label):
                    dur = float(rng.uniform(*durations))
                    path = output_dir / "wav" / spk / f"{lab}_{j}.wav"
                    audio_mod.write_wav(path, toy_clip(lab, dur, seed * 100003 + k))
                    k += 1
                    rows.append({"path": str(path.resolve()), "label": lab, "source_label": lab,
                                 "duration_sec": round(dur, 3), "speaker": spk,
                                 "language": "en" if s % 2 == 0 else "zh",
                                 "dialog_type": "impro" if j % 2 == 0 else "script"})
        out[split] = output_dir / f"{split}.csv"
        pd.DataFrame(rows).to_csv(out[split], index=False)
    return out


# ----------------------------------------------------------------------------- CLI
def _cmd_train_baseline(args: argparse.Namespace) -> int:
    res = train_baseline(args.train_manifest, args.val_manifest, args.test_manifest, args.output_dir,
                         config=BaselineConfig.from_params(vars(args)))
    r = res.report
    line = f"baseline C={r['C']:g}  val macro-F1 {r['val']['macro_f1']:.3f}"
    if "test" in r:
        line += f"  test macro-F1 {r['test']['macro_f1']:.3f} (majority {r['test']['majority_baseline']['macro_f1']:.3f})"
    print(line)
    print(f"wrote {res.output_dir}")
    return 0


def register_cli(subparsers) -> None:
    """`ser train-baseline`: the file flags, then the settings' flags generated from BaselineConfig."""
    p = subparsers.add_parser("train-baseline", help="MFCC+prosody logistic-regression baseline",
                              description=train_baseline.__doc__)
    p.add_argument("--train-manifest", required=True)
    p.add_argument("--val-manifest", required=True)
    p.add_argument("--test-manifest", default="")
    p.add_argument("--output-dir", required=True)
    add_dataclass_flags(p, BaselineConfig)
    add_split_overlap_flag(p)
    p.set_defaults(func=_cmd_train_baseline)
