"""Training late fusion: the member training loop, the fit strategies (val_cv, train) and `train_late_fusion`.

Taught in notebook 07 (07_train_late_fusion.ipynb).
"""
from __future__ import annotations

import copy
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from ..common import (LABELS, SERError, atomic_dir, check_splits, count_parameters, resolve_device, set_seed,
                      write_json_atomic)
from ..metrics import bootstrap_intervals, ece_sampling_floor, macro_f1, softmax
from .calibration import apply_calibration, fit_calibration
from .config import FIT_STRATEGIES, IN_SAMPLE_GAP, SPLITS, FusionConfig
from .data import (apply_scaler, check_label_coverage, feature_columns_for, fit_scaler, read_feature_summary,
                   read_features)
from .nets import _logits, _stack_members, _torch, build_network, make_arch, single_thread


@dataclass
class FusionResult:
    output_dir: Path
    report: dict
    metrics: dict = field(default_factory=dict)

    def __repr__(self) -> str:  # short, for notebooks
        m = self.metrics
        return (f"FusionResult({self.output_dir}, test_macro_f1={m.get('test_macro_f1', float('nan')):.3f}, "
                f"test_ece={m.get('test_ece', float('nan')):.3f})")



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




# ============================================================================ metrics
def _summary(y: np.ndarray, probs: np.ndarray, labels: Sequence[str]) -> dict:
    from ..metrics import classification_metrics
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


def _fit_and_calibrate(strategy, arch, data, cfg, device, groups, group_kind) -> dict:
    """Fit one strategy ('train' or 'val_cv'); calibrate on its val logits; its test logits (and gate weights)."""
    if strategy == "train":
        ens, val_logits, val_gate, info = _fit_naive(arch, data, cfg, device)
    else:
        ens, val_logits, val_gate, info = _fit_val_cv(arch, data, cfg, device, groups, group_kind)
    cal = fit_calibration(val_logits, data["val"]["y"], data["val"]["lang"], cfg.calibration_mode,
                          cfg.calibration_max_iter, cfg.min_language_samples)
    test_logits, test_gate = _logits(ens, data["test"]["X"])
    return {"net": ens, "info": info, "calibration": cal,
            "logits": {"val": val_logits, "test": test_logits}, "gate": {"val": val_gate, "test": test_gate}}


# ============================================================================ the steps of train_late_fusion
def _resolve_config(config: FusionConfig | None, settings: dict) -> FusionConfig:
    """A checked copy of `config` (default FusionConfig()) with `settings` applied: the run records what it
    resolved in it."""
    unknown = set(settings) - set(FusionConfig.__dataclass_fields__)
    if unknown:
        raise SERError(f"unknown setting(s) {sorted(unknown)}; known: {sorted(FusionConfig.__dataclass_fields__)}")
    cfg = replace(config or FusionConfig(), **settings)
    cfg.check()
    return cfg


@dataclass
class _Inputs:
    """The three stage-06 feature CSVs, read and checked (split overlap, label coverage)."""
    paths: dict[str, Path]
    summary: dict
    feature_names: list[str]
    frames: dict
    split_check: dict


def _read_inputs(split_paths: dict, features_summary, labels: list[str], cfg: FusionConfig) -> _Inputs:
    """Read the features summary and each split's CSV (the mode's feature columns); check them."""
    paths = {s: Path(p) for s, p in split_paths.items()}
    summary = read_feature_summary(features_summary, paths["train"])
    feature_names = feature_columns_for(cfg.mode, summary)
    frames = {s: read_features(p, feature_names, labels) for s, p in paths.items()}
    split_check = check_splits(frames, cfg.allow_split_overlap, {s: str(p) for s, p in paths.items()},
                               what="features CSV")
    check_label_coverage(frames, paths, labels)
    return _Inputs(paths, summary, feature_names, frames, split_check)


def _scale_splits(inputs: _Inputs, labels: list[str]) -> tuple[dict, dict]:
    """(data, scaler): the scaler fitted on the train rows; per split the scaled X, label index y and language."""
    lab_index = {lab: i for i, lab in enumerate(labels)}
    frames = inputs.frames
    raw = {s: frames[s][inputs.feature_names].to_numpy(dtype=np.float64) for s in SPLITS}
    scaler = fit_scaler(raw["train"], inputs.feature_names)
    data = {s: {"X": apply_scaler(scaler, raw[s]), "y": frames[s]["label"].map(lab_index).to_numpy(dtype=int),
                "lang": frames[s]["language"].to_numpy(dtype=object)} for s in SPLITS}
    return data, scaler


def _choose_fit_strategy(requested: str, summary: dict, groups: np.ndarray, val_path: Path) -> tuple[str, str]:
    """(strategy, reason): `resolve_fit_strategy`, falling back to 'train' when the val rows have < 2 speakers."""
    strategy, reason = resolve_fit_strategy(requested, summary)
    if strategy == "val_cv" and len(set(groups.tolist())) < 2:
        warnings.warn(f"{val_path}: fewer than 2 speakers, so no speaker-grouped cross-validation; "
                      f"falling back to fit_strategy='train'", stacklevel=3)
        return "train", "fewer than 2 val speakers: no speaker-grouped cross-validation possible"
    return strategy, reason


def _strategies_to_fit(cfg: FusionConfig) -> list[str]:
    """The chosen strategy first, then (with compare_fit_strategies) the others, for the comparison table."""
    if not cfg.compare_fit_strategies:
        return [cfg.fit_strategy]
    return [cfg.fit_strategy] + [s for s in FIT_STRATEGIES if s != cfg.fit_strategy]


@dataclass
class _Scores:
    """The chosen fit's val/test metrics before and after calibration, with test bootstrap intervals."""
    evals: dict  # {"uncalibrated"|"calibrated": {split: evaluate_split(...)}}
    probs: dict  # {"uncalibrated"|"calibrated": {split: probabilities}}
    boot: dict  # {"uncalibrated"|"calibrated": bootstrap_intervals on test}
    flat: dict  # {f"{split}_{metric}[_uncalibrated]": value, f"test_..._ci": [low, high]}


def _score(fit: dict, data: dict, labels: list[str], cfg: FusionConfig) -> _Scores:
    """Score `fit` on val and test, uncalibrated and calibrated; bootstrap the test metrics."""
    evals, probs = {}, {}
    for kind in ("uncalibrated", "calibrated"):
        evals[kind], probs[kind] = {}, {}
        for s in ("val", "test"):
            lg = fit["logits"][s]
            p = softmax(lg) if kind == "uncalibrated" else apply_calibration(lg, fit["calibration"], data[s]["lang"])
            probs[kind][s] = p
            evals[kind][s] = evaluate_split(data[s]["y"], p, data[s]["lang"], labels)
    boot = {kind: bootstrap_intervals(data["test"]["y"], probs[kind]["test"], cfg.n_bootstrap, seed=cfg.seed)
            for kind in evals}
    flat = {}
    for s in ("val", "test"):
        for key in ("accuracy", "ua", "macro_f1", "weighted_f1", "ece", "nll", "brier"):
            flat[f"{s}_{key}"] = evals["calibrated"][s][key]
            flat[f"{s}_{key}_uncalibrated"] = evals["uncalibrated"][s][key]
    flat["test_macro_f1_ci"] = boot["calibrated"]["macro_f1"]
    flat["test_ece_ci"] = boot["calibrated"]["ece"]
    flat["test_ece_uncalibrated_ci"] = boot["uncalibrated"]["ece"]
    flat["test_macro_f1_uncalibrated_ci"] = boot["uncalibrated"]["macro_f1"]
    return _Scores(evals, probs, boot, flat)


def _compare_fits(fits: dict, data: dict, labels: list[str], cfg: FusionConfig) -> dict:
    """Per fitted strategy: its calibrated test macro-F1 (with interval), accuracy, ECE before/after, temperature."""
    test = data["test"]
    comparison = {}
    for s, fit in fits.items():
        p_unc = softmax(fit["logits"]["test"])
        p_cal = apply_calibration(fit["logits"]["test"], fit["calibration"], test["lang"])
        m_cal = _summary(test["y"], p_cal, labels)
        comparison[s] = {
            "test_macro_f1": m_cal["macro_f1"], "test_accuracy": m_cal["accuracy"], "test_ece": m_cal["ece"],
            "test_ece_uncalibrated": _summary(test["y"], p_unc, labels)["ece"],
            "temperature": fit["calibration"]["temperature"],
            "test_macro_f1_ci": bootstrap_intervals(test["y"], p_cal, cfg.n_bootstrap, cfg.seed)["macro_f1"],
        }
    return comparison


def _gate_means(arch: dict, fit: dict, data: dict) -> dict | None:
    """For the gated network: the mean audio-branch weight per split and language (None for other networks)."""
    if arch["type"] != "gated":
        return None
    gate = {s: {lang: float(np.mean(fit["gate"][s][data[s]["lang"] == lang]))
                for lang in sorted(set(data[s]["lang"].tolist()))} for s in ("val", "test")}
    gate["meaning"] = "mean weight of the audio branch (1 - weight of the text branch)"
    return gate


def _build_report(cfg: FusionConfig, arch: dict, device: str, labels: list[str], inputs: _Inputs,
                  strategy_choice: dict, fit: dict, scores: _Scores, comparison: dict, gate: dict | None) -> dict:
    """train_report.json (its `time_sec` is filled in when the artifacts are written)."""
    net = fit["net"]
    return {
        "mode": cfg.mode, "fusion_arch": arch["type"], "fusion_arch_requested": cfg.fusion_arch,
        "settings": asdict(cfg), "device": device, "labels": labels, "feature_names": inputs.feature_names,
        "split_check": inputs.split_check,
        "inputs": {s: str(p.resolve()) for s, p in inputs.paths.items()},
        "rows": {s: inputs.frames[s]["language"].value_counts().sort_index().to_dict() for s in SPLITS},
        "n_parameters": count_parameters(net), "n_parameters_per_member": count_parameters(net.members[0]),
        "fit_strategy": cfg.fit_strategy, "fit_strategy_requested": strategy_choice["requested"],
        "fit_strategy_reason": strategy_choice["reason"], "fit": fit["info"],
        "calibration": fit["calibration"],
        **scores.flat,
        "uncalibrated": scores.evals["uncalibrated"], "calibrated": scores.evals["calibrated"],
        "bootstrap": {"n_boot": cfg.n_bootstrap, "alpha": 0.05, **scores.boot},
        # ECE a perfectly calibrated model with these confidences would show on this many rows (estimator bias)
        "ece_sampling_floor": {s: ece_sampling_floor(scores.probs["calibrated"][s], seed=cfg.seed)
                               for s in ("val", "test")},
        "fit_strategy_comparison": comparison,
        "gate": gate,
        "audio_confidence": inputs.summary.get("audio_confidence"),
        "transcripts": (inputs.summary.get("components") or {}).get("asr"),
        "time_sec": None,
    }


# ============================================================================ public entry
def train_late_fusion(train_features, val_features, test_features, output_dir, features_summary=None,
                      labels: Sequence[str] = LABELS, config: FusionConfig | None = None, **settings) -> FusionResult:
    """Train + calibrate a late-fusion model; write the artifacts of stage 07 into `output_dir`.

    `config` (default: FusionConfig()) holds the settings; `settings` are FusionConfig fields that override it
    (the CLI flags, e.g. mode="fusion", fusion_arch="gated").
    """
    cfg = _resolve_config(config, settings)
    t0 = time.perf_counter()
    labels = list(labels)
    inputs = _read_inputs({"train": train_features, "val": val_features, "test": test_features}, features_summary,
                          labels, cfg)
    device = resolve_device(cfg.device)
    data, scaler = _scale_splits(inputs, labels)
    arch = make_arch(cfg, inputs.feature_names, len(labels))
    groups, group_kind = _groups(inputs.frames["val"], inputs.paths["val"])
    strategy_choice = {"requested": cfg.fit_strategy}
    cfg.fit_strategy, strategy_choice["reason"] = _choose_fit_strategy(cfg.fit_strategy, inputs.summary, groups,
                                                                       inputs.paths["val"])
    with single_thread():
        fits = {s: _fit_and_calibrate(s, arch, data, cfg, device, groups, group_kind)
                for s in _strategies_to_fit(cfg)}
    chosen = fits[cfg.fit_strategy]
    scores = _score(chosen, data, labels, cfg)
    report = _build_report(cfg, arch, device, labels, inputs, strategy_choice, chosen, scores,
                           _compare_fits(fits, data, labels, cfg), _gate_means(arch, chosen, data))
    output_dir = Path(output_dir)
    with atomic_dir(output_dir) as tmp:
        _write_artifacts(tmp, chosen, arch, cfg, inputs, labels, scaler, report, scores, data)
        report["time_sec"] = round(time.perf_counter() - t0, 3)
        write_json_atomic(tmp / "train_report.json", report)
    return FusionResult(output_dir, report, {k: v for k, v in scores.flat.items() if not k.endswith("_ci")})


def _write_artifacts(tmp: Path, fit: dict, arch: dict, cfg: FusionConfig, inputs: _Inputs, labels: list[str],
                     scaler: dict, report: dict, scores: _Scores, data: dict) -> None:
    """fusion_model.pt, feature_scaler.json, the calibrated confusion CSVs, pipeline.json and (make_plots) plots."""
    from .. import metrics
    net, calibration = fit["net"], fit["calibration"]
    payload = {"state_dict": {k: v.cpu() for k, v in net.state_dict().items()},
               "arch": dict(arch, n_members=len(net.members)), "feature_names": list(inputs.feature_names),
               "labels": list(labels), "calibration": calibration, "mode": cfg.mode, "format_version": 1}
    _torch().save(payload, tmp / "fusion_model.pt")
    write_json_atomic(tmp / "feature_scaler.json", scaler)
    for s in ("val", "test"):
        metrics.save_confusion_csv(tmp / f"{s}_confusion_calibrated.csv",
                                   scores.evals["calibrated"][s]["confusion_matrix"], labels)
    components = _copy_text4_head(tmp, copy.deepcopy(inputs.summary.get("components") or {}))
    pipeline = {"components": components, "feature_names": list(inputs.feature_names), "labels": list(labels),
                "mode": cfg.mode, "calibration": calibration, "fusion_arch": arch["type"],
                "model_file": "fusion_model.pt", "scaler_file": "feature_scaler.json",
                "transcripts_oracle": bool((components.get("asr") or {}).get("oracle", False))}
    write_json_atomic(tmp / "pipeline.json", pipeline)
    if cfg.make_plots:
        _save_plots(tmp, cfg.mode, labels, report, scores, data)


def _copy_text4_head(tmp: Path, components: dict) -> dict:
    """Copy the text4 head that `components` names into `tmp` when it is under 50 MB; `components` then names
    the copy (relative to the fusion dir)."""
    head = components.get("text4_head")
    if head and Path(head).exists():
        src = Path(head)
        size = sum(f.stat().st_size for f in src.rglob("*") if f.is_file()) if src.is_dir() else src.stat().st_size
        if size < 50e6:
            dst = tmp / "text4_head" if src.is_dir() else tmp / f"text4_head{''.join(src.suffixes)}"
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst)
            components["text4_head"] = dst.name
    return components


def _save_plots(tmp: Path, mode: str, labels: list[str], report: dict, scores: _Scores, data: dict) -> None:
    """Per val/test split a reliability diagram (before -> after calibration) and a calibrated confusion heatmap;
    the first member's training curves."""
    import matplotlib.pyplot as plt

    from .. import metrics, plots
    evals, probs = scores.evals, scores.probs
    for s in ("val", "test"):
        before = metrics.reliability_bins(probs["uncalibrated"][s], data[s]["y"])
        after = metrics.reliability_bins(probs["calibrated"][s], data[s]["y"])
        fig = plots.reliability_diagram(before, after, path=tmp / f"{s}_reliability.png",
                                        title=f"{mode} {s}: ECE {evals['uncalibrated'][s]['ece']:.3f} -> "
                                              f"{evals['calibrated'][s]['ece']:.3f}")
        plt.close(fig)
        fig = plots.confusion_heatmap(evals["calibrated"][s]["confusion_matrix"], labels,
                                      path=tmp / f"{s}_confusion_calibrated.png", title=f"{mode} {s} (calibrated)")
        plt.close(fig)
    hist = report["fit"]["members"][0]["history"]
    fig = plots.training_curves(hist, path=tmp / "training_curves.png", keys=("train_loss", "es_macro_f1"),
                                title=f"{mode} ({report['fit_strategy']}, first member)")
    plt.close(fig)
