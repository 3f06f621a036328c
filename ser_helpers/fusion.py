"""Learnable late fusion of audio and text emotion features, with post-hoc calibration (stage 07).

`train_late_fusion(...)` reads the `{split}_features.csv` files of stage 06, trains an MLP or a gated
fusion network over the feature columns that `features/summary.json` lists for the mode, calibrates
it on the validation split (global / per-language temperature or vector scaling, LBFGS on NLL) and
writes `fusion_model.pt`, `feature_scaler.json`, `train_report.json`, `pipeline.json`, calibrated
confusion CSVs and PNG plots into `output_dir`.

In-sample confidence: the audio model (and the text4 head) were trained on the TRAIN rows, so their
train-row probabilities are over-confident. With `fit_strategy="val_cv"` (default) the fusion is
fitted on held-out rows only: speaker-grouped K-fold cross-validation over the VAL split picks the number
of epochs (early stopping per fold), then gives out-of-fold val logits from fold models trained for exactly
that many epochs (the temperature is fitted on them); the deployed model is trained on every val row for
that many epochs too.
`fit_strategy="train"` is the naive way (fit on train, early-stop and calibrate on val); the report
compares both on the test split.
Taught in notebook 07 (07_train_late_fusion).
"""
from __future__ import annotations

import contextlib
import copy
import json
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from .metrics import (bootstrap_intervals, ece_sampling_floor, entropy,
                      macro_f1, softmax)
from .common import (LABELS, SERError, add_dataclass_flags, atomic_dir, check_splits, count_parameters,
                     dataclass_from, dataclass_params, not_utf8, read_json, resolve_device, set_seed,
                     write_json_atomic)

MODES = ("fusion", "audio_only", "text_only")
ARCHS = ("mlp", "gated")
CALIBRATION_MODES = ("global_temperature", "per_language_temperature", "vector_scaling")
FIT_STRATEGIES = ("val_cv", "train")
FIT_STRATEGY_CHOICES = ("auto", *FIT_STRATEGIES)
# auto: val_cv when the audio model is this much more confident on train rows than on val rows
IN_SAMPLE_GAP = 0.05
SPLITS = ("train", "val", "test")

AUDIO_FEATURES = ["audio_prob_ang", "audio_prob_hap", "audio_prob_neu", "audio_prob_sad", "audio_confidence",
                  "audio_entropy", "lang_is_zh"]
TEXT_FEATURES = ["text_negative", "text_neutral", "text_positive", "text_negative_score", "text_top_conf_raw",
                 "text_length_norm", "text4_prob_ang", "text4_prob_hap", "text4_prob_neu", "text4_prob_sad",
                 "text4_confidence", "text4_entropy", "text4_ready", "lang_is_zh"]
# Used when no features/summary.json is found beside the feature CSVs.
DEFAULT_FEATURE_COLUMNS = {
    "audio_only": AUDIO_FEATURES,
    "text_only": TEXT_FEATURES,
    "fusion": AUDIO_FEATURES[:-1] + TEXT_FEATURES,
}


@dataclass
class FusionConfig:
    """Settings of one late-fusion run, each default written once, here: the `ser train-late-fusion` and
    `ser run-fusion-ablation` flags are generated from these fields (`common.add_dataclass_flags`), and notebooks
    07/08 build one with `FusionConfig.from_params(globals())`."""
    mode: str = field(default="fusion", metadata={"choices": MODES})
    fusion_arch: str = field(default="mlp", metadata={"choices": ARCHS})
    hidden_size: int = 64
    gate_hidden_size: int = 32
    dropout: float = 0.2
    epochs: int = 80
    batch_size: int = 128
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    patience: int = 12
    seed: int = 42
    device: str = field(default="auto", metadata={"choices": ("auto", "cpu", "cuda")})
    calibration_mode: str = field(default="global_temperature", metadata={"choices": CALIBRATION_MODES})
    calibration_max_iter: int = 200
    min_language_samples: int = field(default=100, metadata={
        "help": "per-language temperature only for languages with at least this many val rows"})
    fit_strategy: str = field(default="auto", metadata={
        "choices": FIT_STRATEGY_CHOICES,
        "help": "val_cv: fit on speaker-grouped CV over val (held-out audio probs); train: the naive way; "
                f"auto: val_cv when summary.json shows train audio confidence >= val + {IN_SAMPLE_GAP}"})
    cv_folds: int = 5
    compare_fit_strategies: bool = field(default=True, metadata={
        "help": "skip training the other fit strategy for the report's comparison"})
    n_bootstrap: int = 1000
    allow_split_overlap: bool = field(default=False, metadata={
        "help": "go on (with a warning, recorded in the report) when the splits share files or speakers; "
                "refused by default"})
    make_plots: bool = field(default=True, metadata={"cli": False})
    # per-fold training bars (the ablation turns them off under its own bar)
    progress: bool = field(default=True, metadata={"cli": False})

    @classmethod
    def from_params(cls, params, **overrides) -> "FusionConfig":
        """The config from a notebook's `globals()`, `vars(args)` or a dict: every entry named like a field."""
        return dataclass_from(cls, params, **overrides)

    @classmethod
    def params_in(cls, params) -> dict:
        """Just those entries, as keyword arguments (e.g. for `ablation.run_fusion_ablation`)."""
        return dataclass_params(cls, params)

    def check(self) -> None:
        for name, value, allowed in (("mode", self.mode, MODES), ("fusion_arch", self.fusion_arch, ARCHS),
                                     ("calibration_mode", self.calibration_mode, CALIBRATION_MODES),
                                     ("fit_strategy", self.fit_strategy, FIT_STRATEGY_CHOICES)):
            if value not in allowed:
                raise SERError(f"{name}={value!r} is not one of {list(allowed)}")
        for name in ("hidden_size", "gate_hidden_size", "epochs", "batch_size", "patience",
                     "calibration_max_iter", "cv_folds"):
            if int(getattr(self, name)) < 1:
                raise SERError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise SERError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if float(self.learning_rate) <= 0:
            raise SERError(f"learning_rate must be > 0, got {self.learning_rate!r}")


@dataclass
class FusionResult:
    output_dir: Path
    report: dict
    metrics: dict = field(default_factory=dict)

    def __repr__(self) -> str:  # short, for notebooks
        m = self.metrics
        return (f"FusionResult({self.output_dir}, test_macro_f1={m.get('test_macro_f1', float('nan')):.3f}, "
                f"test_ece={m.get('test_ece', float('nan')):.3f})")


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


# ============================================================================ networks
def _torch():
    import torch
    return torch


@contextlib.contextmanager
def single_thread():
    """Run tiny-network torch work on one thread: on a busy 2-core machine extra threads make it ~50x slower."""
    torch = _torch()
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def build_network(arch: dict):
    """An ensemble (mean logits) of `arch['n_members']` MLP or gated fusion networks."""
    torch = _torch()
    nn = torch.nn

    class MLPFusion(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(arch["input_dim"], arch["hidden_size"]), nn.ReLU(),
                                     nn.Dropout(arch["dropout"]), nn.Linear(arch["hidden_size"], arch["n_classes"]))

        def forward(self, x):
            return self.net(x), None

    class GatedFusion(nn.Module):
        """Audio and text branches each give logits; a gate g(x) in (0, 1) weighs audio vs text per example."""

        def __init__(self):
            super().__init__()
            h, c, p = arch["hidden_size"], arch["n_classes"], arch["dropout"]
            self.register_buffer("audio_idx", torch.tensor(arch["audio_idx"], dtype=torch.long))
            self.register_buffer("text_idx", torch.tensor(arch["text_idx"], dtype=torch.long))
            self.audio = nn.Sequential(nn.Linear(len(arch["audio_idx"]), h), nn.ReLU(), nn.Dropout(p), nn.Linear(h, c))
            self.text = nn.Sequential(nn.Linear(len(arch["text_idx"]), h), nn.ReLU(), nn.Dropout(p), nn.Linear(h, c))
            self.gate = nn.Sequential(nn.Linear(arch["input_dim"], arch["gate_hidden_size"]), nn.ReLU(),
                                      nn.Linear(arch["gate_hidden_size"], 1))

        def forward(self, x):
            la = self.audio(x.index_select(1, self.audio_idx))
            lt = self.text(x.index_select(1, self.text_idx))
            g = torch.sigmoid(self.gate(x))
            return g * la + (1 - g) * lt, g.squeeze(1)

    class Ensemble(nn.Module):
        def __init__(self):
            super().__init__()
            cls = GatedFusion if arch["type"] == "gated" else MLPFusion
            self.members = nn.ModuleList([cls() for _ in range(arch.get("n_members", 1))])

        def forward(self, x):
            outs = [m(x) for m in self.members]
            logits = torch.stack([o[0] for o in outs]).mean(0)
            gate = None if outs[0][1] is None else torch.stack([o[1] for o in outs]).mean(0)
            return logits, gate

    return Ensemble()


def make_arch(cfg: FusionConfig, feature_names: Sequence[str], n_classes: int) -> dict:
    arch_type = cfg.fusion_arch
    audio_idx = [i for i, c in enumerate(feature_names) if c.startswith("audio_") or c == "lang_is_zh"]
    text_idx = [i for i, c in enumerate(feature_names) if not c.startswith("audio_")]
    if arch_type == "gated" and (not any(c.startswith("audio_") for c in feature_names)
                                 or all(c.startswith("audio_") or c == "lang_is_zh" for c in feature_names)):
        warnings.warn(f"mode {cfg.mode!r} has a single modality; the gated arch falls back to mlp", stacklevel=2)
        arch_type = "mlp"
    return {"type": arch_type, "requested_type": cfg.fusion_arch, "input_dim": len(feature_names),
            "hidden_size": int(cfg.hidden_size), "gate_hidden_size": int(cfg.gate_hidden_size),
            "dropout": float(cfg.dropout), "n_classes": int(n_classes), "audio_idx": audio_idx,
            "text_idx": text_idx, "n_members": 1}


def _train_member(arch: dict, X: np.ndarray, y: np.ndarray, X_es: np.ndarray | None, y_es: np.ndarray | None,
                  cfg: FusionConfig, seed: int, device: str, desc: str = "fusion", fixed_epochs: int | None = None):
    """Train one network with AdamW; keep the epoch with the best early-stopping macro-F1
    (or, with `fixed_epochs` and no early-stopping rows, train exactly that many epochs)."""
    torch = _torch()
    from tqdm.auto import tqdm
    set_seed(seed)
    one = dict(arch, n_members=1)
    net = build_network(one).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    loss_fn = torch.nn.CrossEntropyLoss()
    Xt = torch.tensor(np.array(X, dtype=np.float32), device=device)
    yt = torch.tensor(np.array(y, dtype=np.int64), device=device)
    Xe = None if X_es is None else torch.tensor(np.array(X_es, dtype=np.float32), device=device)
    n_epochs = int(fixed_epochs) if fixed_epochs else cfg.epochs
    gen = torch.Generator().manual_seed(seed)
    best = (-1.0, None, 0)
    history, bad = [], 0
    n = len(X)
    for epoch in tqdm(range(1, n_epochs + 1), desc=desc, leave=False, disable=None if cfg.progress else True):
        net.train()
        perm = torch.randperm(n, generator=gen).to(device)
        total = 0.0
        for start in range(0, n, cfg.batch_size):
            idx = perm[start:start + cfg.batch_size]
            opt.zero_grad()
            logits, _ = net(Xt[idx])
            loss = loss_fn(logits, yt[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        net.eval()
        if Xe is None:
            history.append({"epoch": epoch, "train_loss": total / n, "es_macro_f1": None})
            best = (float("nan"), copy.deepcopy(net.state_dict()), epoch)
            continue
        with torch.no_grad():
            pred = net(Xe)[0].argmax(1).cpu().numpy()
        f1 = macro_f1(y_es, pred, arch["n_classes"])
        history.append({"epoch": epoch, "train_loss": total / n, "es_macro_f1": f1})
        if f1 > best[0] + 1e-9:
            best, bad = (f1, copy.deepcopy(net.state_dict()), epoch), 0
        else:
            bad += 1
            if bad >= cfg.patience:
                break
    net.load_state_dict(best[1])
    net.eval()
    return net, {"best_epoch": best[2], "best_es_macro_f1": best[0], "epochs_run": len(history),
                 "history": history}


def _stack_members(arch: dict, members: list):
    """One Ensemble module holding trained single networks."""
    ens = build_network(dict(arch, n_members=len(members)))
    for slot, m in zip(ens.members, members):
        slot.load_state_dict(m.members[0].state_dict())
    ens.eval()
    return ens


def _logits(net, X: np.ndarray, device: str = "cpu"):
    torch = _torch()
    net = net.to(device)
    with torch.no_grad():
        logits, gate = net(torch.tensor(np.array(X, dtype=np.float32), device=device))
    return logits.double().cpu().numpy(), (None if gate is None else gate.double().cpu().numpy())


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


# ============================================================================ metrics
def _summary(y: np.ndarray, probs: np.ndarray, labels: Sequence[str]) -> dict:
    from .metrics import classification_metrics
    m = classification_metrics(y, probs, labels)
    return {k: m[k] for k in ("n", "accuracy", "ua", "macro_f1", "weighted_f1", "ece", "nll", "brier",
                              "per_class", "confusion_matrix")}


def evaluate_split(y: np.ndarray, probs: np.ndarray, languages: Sequence[str], labels: Sequence[str]) -> dict:
    """Overall + per-language metrics for one split."""
    languages = np.asarray(languages, dtype=object)
    out = _summary(y, probs, labels)
    out["per_language"] = {lang: _summary(y[languages == lang], probs[languages == lang], labels)
                           for lang in sorted(set(languages.tolist()))}
    return out


# ============================================================================ fitting strategies
def _groups(df, path) -> tuple[np.ndarray, str]:
    if "speaker" in df.columns and df["speaker"].notna().all():
        return df["speaker"].astype(str).to_numpy(), "speaker"
    warnings.warn(f"{path}: no complete 'speaker' column; cross-validation folds are by row, not speaker",
                  stacklevel=3)
    return np.arange(len(df)).astype(str), "row"


def _cv_folds(groups: np.ndarray, y: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """Speaker-grouped folds (held-out index arrays), balanced by size; at least 2."""
    uniq = sorted(set(groups.tolist()))
    if len(uniq) < 2:
        raise SERError("fit_strategy='val_cv' needs at least 2 speakers in the val split; use fit_strategy='train'")
    k = max(2, min(k, len(uniq)))
    if k == len(uniq):
        return [np.flatnonzero(groups == g) for g in uniq]
    from sklearn.model_selection import StratifiedGroupKFold
    skf = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return [test for _, test in skf.split(np.zeros(len(y)), y, groups)]


def _fit_naive(arch, data, cfg, device):
    net, info = _train_member(arch, data["train"]["X"], data["train"]["y"], data["val"]["X"], data["val"]["y"],
                              cfg, cfg.seed, device, desc=f"{cfg.mode} (train rows)")
    ens = _stack_members(arch, [net])
    val_logits, val_gate = _logits(ens, data["val"]["X"])
    return ens, val_logits, val_gate, {"strategy": "train", "members": [info]}


def _fit_val_cv(arch, data, cfg, device, groups, group_kind):
    """Speaker-grouped CV over the val rows, in two passes.

    1. Each fold model early-stops on its held-out speakers: that only picks the epoch count E (their mean).
    2. Each fold is retrained for exactly E epochs; its logits on the held-out speakers are the out-of-fold
       logits (reported as val metrics, used for calibration). Pass-1 logits would be optimistic (each fold
       chose its epoch on those very rows) and of mixed scale (epoch counts differ by fold).
    The deployed model is trained on every val row for E epochs: the recipe of pass 2, so the temperature
    fitted on the pass-2 logits fits its logits too."""
    X, y = data["val"]["X"], data["val"]["y"]
    folds = _cv_folds(groups, y, cfg.cv_folds, cfg.seed)
    fits = [np.setdiff1d(np.arange(len(y)), held) for held in folds]
    infos = []
    for k, (fit, held) in enumerate(zip(fits, folds)):
        _, info = _train_member(arch, X[fit], y[fit], X[held], y[held], cfg, cfg.seed + 1000 * k, device,
                                desc=f"{cfg.mode} fold {k + 1}/{len(folds)} (epochs)")
        info.update(fold=k, held_out_groups=sorted(set(groups[held].tolist())), n_fit=int(len(fit)),
                    n_held_out=int(len(held)))
        infos.append(info)
    final_epochs = max(1, int(round(float(np.mean([i["best_epoch"] for i in infos])))))
    oof = np.zeros((len(y), arch["n_classes"]))
    oof_gate = np.zeros(len(y)) if arch["type"] == "gated" else None
    for k, (fit, held) in enumerate(zip(fits, folds)):
        net, _ = _train_member(arch, X[fit], y[fit], None, None, cfg, cfg.seed + 1000 * k, device,
                               desc=f"{cfg.mode} fold {k + 1}/{len(folds)} (out-of-fold)", fixed_epochs=final_epochs)
        lg, g = _logits(net, X[held])
        oof[held] = lg
        if oof_gate is not None:
            oof_gate[held] = g
        infos[k]["oof_macro_f1"] = macro_f1(y[held], lg.argmax(1), arch["n_classes"])
    net, final = _train_member(arch, X, y, None, None, cfg, cfg.seed, device, desc=f"{cfg.mode} final refit",
                               fixed_epochs=final_epochs)
    final.update(n_fit=int(len(y)), epochs=final_epochs)
    ens = _stack_members(arch, [net])
    return ens, oof, oof_gate, {"strategy": "val_cv", "group_by": group_kind, "n_folds": len(folds),
                                "oof_epochs": final_epochs, "members": infos, "final": final}


def resolve_fit_strategy(requested: str, summary: dict) -> tuple[str, str]:
    """'auto' -> 'val_cv' when features/summary.json shows the audio model's train rows are in-sample, else 'train'.

    Two signals, either one suffices: mean confidence higher on train than on val, or the raw audio
    argmax's macro-F1 higher on train than on val (a class-balanced model can over-fit without growing
    more confident), each by at least IN_SAMPLE_GAP. Neither reads the test split."""
    if requested != "auto":
        return requested, "requested"
    conf = summary.get("audio_confidence") or {}
    tr, va = conf.get("train_mean"), conf.get("val_mean")
    raw = summary.get("raw_metrics") or {}
    f1_tr = ((raw.get("train") or {}).get("audio") or {}).get("macro_f1")
    f1_va = ((raw.get("val") or {}).get("audio") or {}).get("macro_f1")
    if (tr is None or va is None) and (f1_tr is None or f1_va is None):
        return "val_cv", "auto: no audio confidence or raw metrics in features summary; assuming in-sample over-fit"
    conf_gap = float(tr) - float(va) if tr is not None and va is not None else float("nan")
    f1_gap = float(f1_tr) - float(f1_va) if f1_tr is not None and f1_va is not None else float("nan")
    signals = (f"audio confidence train {tr if tr is None else round(tr, 3)} vs val {va if va is None else round(va, 3)} "
               f"(gap {conf_gap:.3f}); audio macro-F1 train {f1_tr if f1_tr is None else round(f1_tr, 3)} vs val "
               f"{f1_va if f1_va is None else round(f1_va, 3)} (gap {f1_gap:.3f}); threshold {IN_SAMPLE_GAP}")
    if conf_gap >= IN_SAMPLE_GAP or f1_gap >= IN_SAMPLE_GAP:
        return "val_cv", f"auto: {signals}: train rows are in-sample for the audio model"
    return "train", f"auto: {signals}: no in-sample advantage, so the larger train split is used"


def _fit_and_evaluate(strategy, arch, data, cfg, device, groups, group_kind, labels):
    if strategy == "train":
        ens, val_logits, val_gate, info = _fit_naive(arch, data, cfg, device)
    else:
        ens, val_logits, val_gate, info = _fit_val_cv(arch, data, cfg, device, groups, group_kind)
    cal = fit_calibration(val_logits, data["val"]["y"], data["val"]["lang"], cfg.calibration_mode,
                          cfg.calibration_max_iter, cfg.min_language_samples)
    test_logits, test_gate = _logits(ens, data["test"]["X"])
    return {"net": ens, "info": info, "calibration": cal,
            "logits": {"val": val_logits, "test": test_logits}, "gate": {"val": val_gate, "test": test_gate}}


# ============================================================================ public entry
def train_late_fusion(train_features, val_features, test_features, output_dir, features_summary=None,
                      labels: Sequence[str] = LABELS, config: FusionConfig | None = None, **settings) -> FusionResult:
    """Train + calibrate a late-fusion model; write the artifacts of stage 07 into `output_dir`.

    `config` (default: FusionConfig()) holds the settings; `settings` are FusionConfig fields that override it
    (the CLI flags, e.g. mode="fusion", fusion_arch="gated").
    """
    unknown = set(settings) - set(FusionConfig.__dataclass_fields__)
    if unknown:
        raise SERError(f"unknown setting(s) {sorted(unknown)}; known: {sorted(FusionConfig.__dataclass_fields__)}")
    cfg = replace(config or FusionConfig(), **settings)  # a copy: the run records what it resolved in it
    cfg.check()
    t0 = time.perf_counter()
    labels = list(labels)
    paths = {"train": Path(train_features), "val": Path(val_features), "test": Path(test_features)}
    summary = read_feature_summary(features_summary, paths["train"])
    feature_names = feature_columns_for(cfg.mode, summary)
    frames = {s: read_features(p, feature_names, labels) for s, p in paths.items()}
    split_check = check_splits(frames, cfg.allow_split_overlap, {s: str(p) for s, p in paths.items()},
                               what="features CSV")
    check_label_coverage(frames, paths, labels)
    device = resolve_device(cfg.device)

    lab_index = {lab: i for i, lab in enumerate(labels)}
    raw = {s: frames[s][feature_names].to_numpy(dtype=np.float64) for s in SPLITS}
    scaler = fit_scaler(raw["train"], feature_names)
    data = {s: {"X": apply_scaler(scaler, raw[s]), "y": frames[s]["label"].map(lab_index).to_numpy(dtype=int),
                "lang": frames[s]["language"].to_numpy(dtype=object)} for s in SPLITS}
    arch = make_arch(cfg, feature_names, len(labels))
    groups, group_kind = _groups(frames["val"], paths["val"])
    requested_strategy = cfg.fit_strategy
    cfg.fit_strategy, strategy_reason = resolve_fit_strategy(cfg.fit_strategy, summary)
    if cfg.fit_strategy == "val_cv" and len(set(groups.tolist())) < 2:
        warnings.warn(f"{paths['val']}: fewer than 2 speakers, so no speaker-grouped cross-validation; "
                      f"falling back to fit_strategy='train'", stacklevel=2)
        cfg.fit_strategy = "train"
        strategy_reason = "fewer than 2 val speakers: no speaker-grouped cross-validation possible"

    strategies = [cfg.fit_strategy]
    if cfg.compare_fit_strategies:
        strategies += [s for s in FIT_STRATEGIES if s != cfg.fit_strategy]
    with single_thread():
        fits = {s: _fit_and_evaluate(s, arch, data, cfg, device, groups, group_kind, labels) for s in strategies}
    main = fits[cfg.fit_strategy]
    cal = main["calibration"]

    evals, probs = {}, {}
    for kind in ("uncalibrated", "calibrated"):
        evals[kind], probs[kind] = {}, {}
        for s in ("val", "test"):
            lg = main["logits"][s]
            p = softmax(lg) if kind == "uncalibrated" else apply_calibration(lg, cal, data[s]["lang"])
            probs[kind][s] = p
            evals[kind][s] = evaluate_split(data[s]["y"], p, data[s]["lang"], labels)
    boot = {kind: bootstrap_intervals(data["test"]["y"], probs[kind]["test"], cfg.n_bootstrap, seed=cfg.seed)
            for kind in evals}
    comparison = {}
    for s, fit in fits.items():
        p_unc = softmax(fit["logits"]["test"])
        p_cal = apply_calibration(fit["logits"]["test"], fit["calibration"], data["test"]["lang"])
        m_cal = _summary(data["test"]["y"], p_cal, labels)
        comparison[s] = {
            "test_macro_f1": m_cal["macro_f1"], "test_accuracy": m_cal["accuracy"], "test_ece": m_cal["ece"],
            "test_ece_uncalibrated": _summary(data["test"]["y"], p_unc, labels)["ece"],
            "temperature": fit["calibration"]["temperature"],
            "test_macro_f1_ci": bootstrap_intervals(data["test"]["y"], p_cal, cfg.n_bootstrap, cfg.seed)["macro_f1"],
        }
    gate = None
    if arch["type"] == "gated":
        gate = {s: {lang: float(np.mean(main["gate"][s][data[s]["lang"] == lang]))
                    for lang in sorted(set(data[s]["lang"].tolist()))} for s in ("val", "test")}
        gate["meaning"] = "mean weight of the audio branch (1 - weight of the text branch)"

    net = main["net"]
    arch_final = dict(arch, n_members=len(net.members))
    flat = {}
    for s in ("val", "test"):
        for key in ("accuracy", "ua", "macro_f1", "weighted_f1", "ece", "nll", "brier"):
            flat[f"{s}_{key}"] = evals["calibrated"][s][key]
            flat[f"{s}_{key}_uncalibrated"] = evals["uncalibrated"][s][key]
    flat["test_macro_f1_ci"] = boot["calibrated"]["macro_f1"]
    flat["test_ece_ci"] = boot["calibrated"]["ece"]
    flat["test_ece_uncalibrated_ci"] = boot["uncalibrated"]["ece"]
    flat["test_macro_f1_uncalibrated_ci"] = boot["uncalibrated"]["macro_f1"]

    report = {
        "mode": cfg.mode, "fusion_arch": arch["type"], "fusion_arch_requested": cfg.fusion_arch,
        "settings": asdict(cfg), "device": device, "labels": labels, "feature_names": feature_names,
        "split_check": split_check,
        "inputs": {s: str(p.resolve()) for s, p in paths.items()},
        "rows": {s: frames[s]["language"].value_counts().sort_index().to_dict() for s in SPLITS},
        "n_parameters": count_parameters(net), "n_parameters_per_member": count_parameters(net.members[0]),
        "fit_strategy": cfg.fit_strategy, "fit_strategy_requested": requested_strategy,
        "fit_strategy_reason": strategy_reason, "fit": main["info"],
        "calibration": cal,
        **flat,
        "uncalibrated": evals["uncalibrated"], "calibrated": evals["calibrated"],
        "bootstrap": {"n_boot": cfg.n_bootstrap, "alpha": 0.05, **boot},
        # ECE a perfectly calibrated model with these confidences would show on this many rows (estimator bias)
        "ece_sampling_floor": {s: ece_sampling_floor(probs["calibrated"][s], seed=cfg.seed) for s in ("val", "test")},
        "fit_strategy_comparison": comparison,
        "gate": gate,
        "audio_confidence": summary.get("audio_confidence"),
        "transcripts": (summary.get("components") or {}).get("asr"),
        "time_sec": None,
    }
    output_dir = Path(output_dir)
    with atomic_dir(output_dir) as tmp:
        _write_artifacts(tmp, output_dir, net, arch_final, cfg, feature_names, labels, cal, scaler, summary,
                         report, evals, probs, data)
        report["time_sec"] = round(time.perf_counter() - t0, 3)
        write_json_atomic(tmp / "train_report.json", report)
    return FusionResult(output_dir, report, {k: v for k, v in flat.items() if not k.endswith("_ci")})


def _write_artifacts(tmp: Path, final_dir: Path, net, arch, cfg, feature_names, labels, cal, scaler, summary,
                     report, evals, probs, data) -> None:
    torch = _torch()
    from . import metrics, plots
    payload = {"state_dict": {k: v.cpu() for k, v in net.state_dict().items()}, "arch": arch,
               "feature_names": list(feature_names), "labels": list(labels), "calibration": cal, "mode": cfg.mode,
               "format_version": 1}
    torch.save(payload, tmp / "fusion_model.pt")
    write_json_atomic(tmp / "feature_scaler.json", scaler)
    for s in ("val", "test"):
        metrics.save_confusion_csv(tmp / f"{s}_confusion_calibrated.csv", evals["calibrated"][s]["confusion_matrix"],
                                   labels)
    components = copy.deepcopy(summary.get("components") or {})
    head = components.get("text4_head")
    if head and Path(head).exists():
        src = Path(head)
        size = sum(f.stat().st_size for f in src.rglob("*") if f.is_file()) if src.is_dir() else src.stat().st_size
        if size < 50e6:
            dst = tmp / "text4_head" if src.is_dir() else tmp / f"text4_head{''.join(src.suffixes)}"
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst)
            components["text4_head"] = dst.name  # relative to the fusion dir
    pipeline = {"components": components, "feature_names": list(feature_names), "labels": list(labels),
                "mode": cfg.mode, "calibration": cal, "fusion_arch": arch["type"],
                "model_file": "fusion_model.pt", "scaler_file": "feature_scaler.json",
                "transcripts_oracle": bool((components.get("asr") or {}).get("oracle", False))}
    write_json_atomic(tmp / "pipeline.json", pipeline)
    if cfg.make_plots:
        import matplotlib.pyplot as plt
        for s in ("val", "test"):
            before = metrics.reliability_bins(probs["uncalibrated"][s], data[s]["y"])
            after = metrics.reliability_bins(probs["calibrated"][s], data[s]["y"])
            fig = plots.reliability_diagram(before, after, path=tmp / f"{s}_reliability.png",
                                            title=f"{cfg.mode} {s}: ECE {evals['uncalibrated'][s]['ece']:.3f} -> "
                                                  f"{evals['calibrated'][s]['ece']:.3f}")
            plt.close(fig)
            fig = plots.confusion_heatmap(evals["calibrated"][s]["confusion_matrix"], labels,
                                          path=tmp / f"{s}_confusion_calibrated.png",
                                          title=f"{cfg.mode} {s} (calibrated)")
            plt.close(fig)
        hist = report["fit"]["members"][0]["history"]
        fig = plots.training_curves(hist, path=tmp / "training_curves.png", keys=("train_loss", "es_macro_f1"),
                                    title=f"{cfg.mode} ({report['fit_strategy']}, first member)")
        plt.close(fig)


# ============================================================================ notebook tables
def report_table(report: dict, languages: bool = True):
    """Uncalibrated vs calibrated metrics per split (and language) from a train_report, as a DataFrame."""
    import pandas as pd
    rows = []
    for split in ("val", "test"):
        for kind in ("uncalibrated", "calibrated"):
            blocks = {"all": report[kind][split]}
            if languages:
                blocks.update(report[kind][split].get("per_language", {}))
            for lang, m in blocks.items():
                rows.append({"split": split, "language": lang, "probabilities": kind, "n": m["n"],
                             **{k: round(m[k], 4) for k in ("accuracy", "ua", "macro_f1", "ece", "nll", "brier")}})
    return pd.DataFrame(rows).set_index(["split", "language", "probabilities"])


def comparison_table(report: dict):
    """Test metrics of the fit strategies the run measured (val_cv vs the naive train fit)."""
    import pandas as pd
    rows = []
    for strategy, m in (report.get("fit_strategy_comparison") or {}).items():
        ci = m.get("test_macro_f1_ci") or [None, None]
        rows.append({"fit_strategy": strategy, "used": strategy == report["fit_strategy"],
                     "test_macro_f1": round(m["test_macro_f1"], 4),
                     "test_macro_f1 95% CI": f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci[0] is not None else "n/a",
                     "test_accuracy": round(m["test_accuracy"], 4),
                     "test_ece (uncalibrated)": round(m["test_ece_uncalibrated"], 4),
                     "test_ece (calibrated)": round(m["test_ece"], 4), "temperature": round(m["temperature"], 3)})
    return pd.DataFrame(rows).set_index("fit_strategy") if rows else pd.DataFrame()


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


# ============================================================================ CLI
def add_training_flags(p, skip=("mode",)) -> None:
    """The train-late-fusion settings (shared with run-fusion-ablation): one flag per FusionConfig field,
    CLI_CONTRACT names and defaults, plus --features-summary."""
    add_dataclass_flags(p, FusionConfig, skip=skip)
    p.add_argument("--features-summary", default=None,
                   help="features/summary.json with the feature column lists (default: beside --train-features)")


#: the FusionConfig fields the CLI sets (all but `mode`, which only train-late-fusion has)
TRAINING_KEYS = tuple(f.name for f in fields(FusionConfig) if f.metadata.get("cli", True) and f.name != "mode")


def _cli_train(args) -> int:
    res = train_late_fusion(args.train_features, args.val_features, args.test_features, args.output_dir,
                            features_summary=args.features_summary, config=FusionConfig.from_params(vars(args)))
    r = res.report
    print(json.dumps({"output_dir": str(res.output_dir), "mode": r["mode"], "fusion_arch": r["fusion_arch"],
                      "temperature": r["calibration"]["temperature"],
                      **{k: round(v, 4) for k, v in res.metrics.items()
                         if k.startswith("test_") and isinstance(v, float)}}, indent=2))
    return 0


def register_cli(subparsers) -> None:
    p = subparsers.add_parser("train-late-fusion", help="train a late-fusion model + calibration (stage 07)")
    p.add_argument("--train-features", required=True)
    p.add_argument("--val-features", required=True)
    p.add_argument("--test-features", required=True)
    p.add_argument("--output-dir", required=True)
    add_training_flags(p, skip=())
    p.set_defaults(func=_cli_train)


# ============================================================================ synthetic features (tests, demos)
FEATURE_CSV_COLUMNS = [
    "path", "label", "label_id", "language", "transcript", "audio_prob_ang", "audio_prob_hap", "audio_prob_neu",
    "audio_prob_sad", "audio_confidence", "audio_entropy", "text_negative", "text_neutral", "text_positive",
    "text_negative_score", "text_top_label_raw", "text_top_conf_raw", "text_length", "text_length_norm",
    "text4_prob_ang", "text4_prob_hap", "text4_prob_neu", "text4_prob_sad", "text4_confidence", "text4_entropy",
    "text4_ready", "lang_is_zh"]


def make_synthetic_features(output_dir, n_per_speaker: int = 40, seed: int = 0, train_overconfidence: float = 3.0,
                            labels: Sequence[str] = LABELS) -> dict:
    """Write `{train,val,test}_features.csv` + `summary.json` with the stage-06 columns, made up.

    Audio probabilities separate arousal (ang/hap vs neu/sad), text probabilities valence (ang/sad vs hap/neu),
    so fusion beats either alone. Train rows' audio probabilities are sharpened by `train_overconfidence`
    (as an audio model's in-sample predictions are). Speakers: train 6 en + 2 zh, val 2 en + 1 zh, test 2 en + 1 zh.
    """
    import pandas as pd
    rng = np.random.default_rng(seed)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    arousal = {"ang": 1, "hap": 1, "neu": 0, "sad": 0}
    valence = {"ang": 0, "sad": 0, "hap": 1, "neu": 1}
    speakers = {"train": [("en", 6), ("zh", 2)], "val": [("en", 2), ("zh", 1)], "test": [("en", 2), ("zh", 1)]}
    paths = {}
    counts = {}
    for split, spk in speakers.items():
        rows = []
        for lang, n_spk in spk:
            for s in range(n_spk):
                speaker = f"{split}_{lang}_spk{s}"
                for i in range(n_per_speaker):
                    lab = labels[int(rng.integers(len(labels)))]
                    za = np.array([2.2 * (arousal[l] == arousal[lab]) + 0.5 * (l == lab) for l in labels])
                    za = za + rng.normal(0, 1.0, len(labels)) + rng.normal(0, 0.3)
                    if split == "train":
                        za = za * train_overconfidence + 2.0 * np.array([l == lab for l in labels])
                    pa = softmax(za[None])[0]
                    zt = np.array([2.0 * (valence[l] == valence[lab]) + 0.4 * (l == lab) for l in labels])
                    zt = zt + rng.normal(0, 1.1, len(labels))
                    pt = softmax(zt[None])[0]
                    neg = pt[labels.index("ang")] + pt[labels.index("sad")]
                    sent = np.array([neg * 0.8, 0.2, (1 - neg) * 0.8]); sent /= sent.sum()
                    text = f"utterance {i} of {speaker}"
                    rows.append({
                        "path": f"/data/{split}/{speaker}/{i}.wav", "label": lab, "label_id": labels.index(lab),
                        "language": lang, "transcript": text,
                        **{f"audio_prob_{l}": pa[j] for j, l in enumerate(labels)},
                        "audio_confidence": pa.max(), "audio_entropy": float(entropy(pa[None])[0]),
                        "text_negative": sent[0], "text_neutral": sent[1], "text_positive": sent[2],
                        "text_negative_score": sent[0] - sent[2],
                        "text_top_label_raw": ["negative", "neutral", "positive"][int(sent.argmax())],
                        "text_top_conf_raw": sent.max(), "text_length": len(text),
                        "text_length_norm": min(1.0, len(text) / 256),
                        **{f"text4_prob_{l}": pt[j] for j, l in enumerate(labels)},
                        "text4_confidence": pt.max(), "text4_entropy": float(entropy(pt[None])[0]),
                        "text4_ready": 1.0, "lang_is_zh": float(lang == "zh"),
                        "speaker": speaker, "dialog_type": "impro" if lang == "en" else "",
                        "source_dataset": "iemocap_4class" if lang == "en" else "casia_4class"})
        df = pd.DataFrame(rows)
        paths[split] = out / f"{split}_features.csv"
        df.to_csv(paths[split], index=False)
        counts[split] = df["language"].value_counts().sort_index().to_dict()
    head = out / "text4_head"
    head.mkdir(exist_ok=True)
    (head / "head.json").write_text(json.dumps({"labels": list(labels), "kind": "synthetic"}))
    conf = {s: float(pd.read_csv(paths[s])["audio_confidence"].mean()) for s in ("train", "val")}
    summary = {"rows": counts, "feature_columns": {m: list(c) for m, c in DEFAULT_FEATURE_COLUMNS.items()},
               "components": {"audio_models": {"en": str(out / "audio_en"), "zh": str(out / "audio_zh")},
                              "default_language": "en",
                              "asr": {"backend": "reference", "model": "oracle", "oracle": True},
                              "text_models": {"en": None, "zh": None}, "text4_head": str(head.resolve())},
               "audio_confidence": {"train_mean": conf["train"], "val_mean": conf["val"]}, "synthetic": True}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return {**{s: p for s, p in paths.items()}, "summary": out / "summary.json"}
