"""Evaluate a trained audio model on a manifest: metrics JSON, per-utterance predictions, confusion matrices.

Metrics (ser_helpers.metrics, scikit-learn underneath): accuracy (WA), UA (mean per-class recall), macro-F1,
weighted-F1, per-class P/R/F1/support, ECE (15 equal-width bins), NLL, confusion matrix; a majority-class baseline
beside them; breakdowns by language, dialog_type and speaker when the manifest has those columns; bootstrap 95%
intervals (over utterances) for macro-F1 and UA. Inference goes through `inference.AudioClassifier` (batched,
length-bucketed, padding-invariant), so the numbers do not depend on `batch_size`. Every setting and its default
is written once, in `EvaluateConfig`.
Taught in notebook 04 (04_evaluate_wav2vec2).
"""
from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from . import audio as audio_mod
from . import metrics as M
from .audio import check_audio_files
from .common import (BOOTSTRAP_FLAG, MAX_DURATION_SEC, N_BOOTSTRAP, SAMPLE_RATE, SCORING_BATCH_SIZE, SERError,
                     add_dataclass_flags, add_split_overlap_flag, check_splits, StageConfig, display_name, read_json,
                     read_manifest, write_csv_atomic, write_json_atomic)
from .metrics import (BREAKDOWN_COLUMNS, compute_metrics, group_metrics, label_ids,  # noqa: F401 (evaluate.*)
                      majority_metrics)

PREDICTION_META_COLUMNS = ("language", "speaker", "dialog_type")
#: clips decoded and held in memory at once (inference is length-bucketed within a chunk)
LOAD_CHUNK = 512


# ----------------------------------------------------------------------------- settings
@dataclass
class EvaluateConfig(StageConfig):
    """Settings of one `evaluate_wav2vec2` run, each default written once, here: the `ser evaluate-wav2vec2` flags
    are generated from these fields (`common.add_dataclass_flags`), and notebook 04 (04_evaluate_wav2vec2.ipynb)
    builds one with `EvaluateConfig.from_params(globals())`. The model, the manifest and the output files are
    arguments of the call, not settings."""
    sample_rate: int = SAMPLE_RATE
    max_duration_sec: float = MAX_DURATION_SEC
    batch_size: int = SCORING_BATCH_SIZE
    num_workers: int = 0
    device: str = field(default="auto", metadata={"choices": ("auto", "cpu", "cuda")})
    n_bootstrap: int = field(default=N_BOOTSTRAP, metadata=BOOTSTRAP_FLAG)
    bootstrap_seed: int = field(default=0, metadata={"flag": "--seed", "help": "bootstrap seed"})
    allow_split_overlap: bool = field(default=False, metadata={"cli": False})  # common.add_split_overlap_flag
    progress: bool = field(default=True, metadata={"cli": False})



#: the EvaluateConfig flags that come before the output flags in `ser evaluate-wav2vec2 --help` (the contract's order)
FLAGS_BEFORE_OUTPUTS = ("sample_rate", "max_duration_sec", "batch_size", "num_workers", "device")


# ----------------------------------------------------------------------------- loading
def load_clips(paths: Sequence[str], sample_rate: int, max_duration_sec: float | None, num_workers: int,
               manifest_name: str = "manifest", offset: int = 0) -> list[np.ndarray]:
    """Decode clips (mono float32 at `sample_rate`), cut to `max_duration_sec`; AudioError names the row and file."""
    limit = int(round(max_duration_sec * sample_rate)) if max_duration_sec else None

    def one(item):
        i, p = item
        try:
            y = audio_mod.load_audio(p, sample_rate=sample_rate, max_duration_sec=None)
        except audio_mod.AudioError as exc:
            raise audio_mod.AudioError(f"{manifest_name} row {offset + i + 2}: {exc}") from exc
        return y[:limit] if limit else y

    items = list(enumerate(paths))
    if num_workers and num_workers > 1:
        with ThreadPoolExecutor(num_workers) as pool:
            return list(pool.map(one, items))
    return [one(it) for it in items]


# ----------------------------------------------------------------------------- metrics
def _counts_from(report, labels: Sequence[str]):
    """The training split's {label: count} in a train_report.json, in any of the forms the stages write:
    `data.train.label_counts` (acoustic), `train_label_counts` (baseline) or `label_counts.train`."""
    if not isinstance(report, Mapping):
        return None
    candidates = [report.get("train_label_counts"),
                  (report.get("label_counts") or {}).get("train") if isinstance(report.get("label_counts"), Mapping) else None]
    data = report.get("data")
    if isinstance(data, Mapping) and isinstance(data.get("train"), Mapping):
        candidates.insert(0, data["train"].get("label_counts"))
    for c in candidates:
        if isinstance(c, Mapping) and c and set(map(str, c)) <= set(labels) \
                and all(isinstance(v, (int, float)) for v in c.values()):
            return {lab: float(c.get(lab, 0)) for lab in labels}
    return None


def _training_frames(model_dir, train_manifest=None) -> dict:
    """The model's training splits (the explicit train manifest, else the train/val manifests named in the
    train_report.json beside the model) that still exist, for the evaluated-vs-training overlap check."""
    out = {}
    if train_manifest:
        out["train"] = read_manifest(train_manifest)
    for folder in (Path(model_dir), Path(model_dir).parent):
        report = folder / "train_report.json"
        if out or not report.exists():
            continue
        try:
            cfg = read_json(report).get("config", {})
        except Exception:  # noqa: BLE001 - an unreadable report: nothing to compare with
            continue
        for split in ("train", "val"):
            path = cfg.get(f"{split}_manifest") if isinstance(cfg, Mapping) else None
            if path and Path(path).exists():
                out[split] = read_manifest(path)
    return out


def train_label_distribution(model_dir, labels: Sequence[str], train_manifest: str | os.PathLike | None = None):
    """The model's training label counts and where they came from: an explicit train manifest, else the
    train_report.json beside the model (its label counts or its train manifest); None when unknown."""
    if train_manifest:
        df = read_manifest(train_manifest)
        return {lab: float((df["label"] == lab).sum()) for lab in labels}, f"train manifest {train_manifest}"
    for folder in (Path(model_dir), Path(model_dir).parent):
        report = folder / "train_report.json"
        if not report.exists():
            continue
        try:
            data = read_json(report)
        except Exception:  # noqa: BLE001
            continue
        counts = _counts_from(data, labels)
        if counts and sum(counts.values()) > 0:
            return counts, f"label counts in {report}"
        cfg = data.get("config", data) if isinstance(data, Mapping) else {}
        path = cfg.get("train_manifest") if isinstance(cfg, Mapping) else None
        if path and Path(path).exists():
            df = read_manifest(path)
            return {lab: float((df["label"] == lab).sum()) for lab in labels}, f"train manifest {path} (from {report})"
    return None, None


# ----------------------------------------------------------------------------- the stage
@dataclass
class EvalResult:
    metrics: dict
    predictions: "object"            # pandas DataFrame
    paths: dict = field(default_factory=dict)

    @property
    def macro_f1(self) -> float:
        return self.metrics["macro_f1"]


def _save_confusion(path: Path, cm, labels, title: str) -> list[Path]:
    import matplotlib.pyplot as plt
    from . import plots
    M.save_confusion_csv(path, cm, labels)
    out = [path]
    for norm, suffix in ((False, ""), (True, "_normalized")):
        png = path.with_name(path.stem + suffix + ".png")
        fig = plots.confusion_heatmap(cm, labels, png, title=title + (" (row-normalised)" if norm else " (counts)"),
                                      normalize=norm)
        plt.close(fig)
        out.append(png)
    return out


def _predict_clips(clf, paths: list[str], cfg: EvaluateConfig, manifest_name: str):
    """Class probabilities of every clip, decoded LOAD_CHUNK at a time and cut at `max_duration_sec`.
    Returns (probs [n, n_labels], clips cut, seconds loading, seconds in inference)."""
    from tqdm.auto import tqdm
    t_load = t_inf = 0.0
    n_cut = 0
    limit = int(round(cfg.max_duration_sec * cfg.sample_rate)) if cfg.max_duration_sec else None
    probs = np.zeros((len(paths), len(clf.labels)), dtype=np.float64)
    bar = tqdm(total=len(paths), desc="evaluate", disable=not cfg.progress, leave=False)
    for start in range(0, len(paths), LOAD_CHUNK):
        t1 = time.perf_counter()
        # clips are decoded whole and cut here, so n_cut counts the clips longer than max_duration_sec
        waves = load_clips(paths[start:start + LOAD_CHUNK], cfg.sample_rate, None, cfg.num_workers, manifest_name,
                           start)
        if limit:
            n_cut += sum(len(w) > limit for w in waves)
            waves = [w[:limit] for w in waves]
        t2 = time.perf_counter()
        probs[start:start + len(waves)] = clf.predict_proba(waves, batch_size=cfg.batch_size,
                                                            max_duration_sec=cfg.max_duration_sec)
        t_inf += time.perf_counter() - t2
        t_load += t2 - t1
        bar.update(len(waves))
    bar.close()
    return probs, n_cut, t_load, t_inf


def evaluate_wav2vec2(model_dir, manifest, output_json=None, output_predictions_csv=None, output_confusion_csv=None,
                      train_manifest=None, config: EvaluateConfig | None = None, classifier=None,
                      **settings) -> EvalResult:
    """Evaluate `model_dir` (a best_model/ dir or its parent) on `manifest`; write the outputs that are asked for:
    metrics JSON, predictions CSV (path,label,prediction,prob_<label>...,confidence + language/speaker/dialog_type)
    and the confusion CSV with two PNG heatmaps beside it (`<stem>.png` counts, `<stem>_normalized.png` rows)."""
    import pandas as pd
    from .inference import AudioClassifier
    cfg = replace(config or EvaluateConfig(), **settings)  # EvaluateConfig fields as keywords override `config`
    t0 = time.perf_counter()
    manifest_name = str(manifest)
    df = read_manifest(manifest)
    split_check = check_splits({"evaluated": df, **_training_frames(model_dir, train_manifest)},
                               cfg.allow_split_overlap, {"evaluated": manifest_name},
                               only="evaluated")  # no training file/speaker in it
    check_audio_files(df["path"], manifest_name, cfg.sample_rate, cfg.progress)
    clf = classifier if classifier is not None else AudioClassifier.load(model_dir, device=cfg.device)
    labels = list(clf.labels)
    if int(cfg.sample_rate) != clf.sampling_rate:
        raise SERError(f"--sample-rate {cfg.sample_rate} differs from the model's feature extractor "
                       f"({clf.sampling_rate} Hz, {clf.model_dir}); evaluate at the rate the model was trained on")
    y = label_ids(df["label"], labels, manifest_name)
    probs, n_cut, t_load, t_inf = _predict_clips(clf, list(df["path"]), cfg, manifest_name)

    counts, source = train_label_distribution(clf.model_dir or model_dir, labels, train_manifest)
    m = compute_metrics(y, probs, labels, df, cfg.n_bootstrap, cfg.bootstrap_seed, counts, source)
    meta = {"model_dir": str(clf.model_dir or model_dir), "manifest": str(Path(manifest).resolve()),
            "split_check": split_check,
            "num_samples": int(len(df)), "labels": labels, "sample_rate": int(cfg.sample_rate),
            "max_duration_sec": cfg.max_duration_sec, "clips_cut_to_max_duration": int(n_cut),
            "batch_size": int(cfg.batch_size), "device": str(clf.device),
            "architecture": type(getattr(clf, "model", clf)).__name__,
            "timing": {"load_sec": round(t_load, 3), "inference_sec": round(t_inf, 3),
                       "clips_per_sec": round(len(df) / max(t_inf, 1e-9), 2),
                       "total_sec": round(time.perf_counter() - t0, 3)}}
    metrics_out = {**meta, **m}

    pred = pd.DataFrame({"path": df["path"], "label": df["label"],
                         "prediction": [labels[i] for i in probs.argmax(axis=1)]})
    for j, lab in enumerate(labels):
        pred[f"prob_{lab}"] = probs[:, j]
    pred["confidence"] = probs.max(axis=1)
    for col in PREDICTION_META_COLUMNS:
        if col in df.columns:
            pred[col] = df[col].values

    written = {}
    if output_predictions_csv:
        written["predictions_csv"] = write_csv_atomic(output_predictions_csv, pred)
    if output_confusion_csv:
        files = _save_confusion(Path(output_confusion_csv), m["confusion_matrix"], labels,
                                f"{Path(manifest).stem}: {Path(str(clf.model_dir or model_dir)).parent.name}")
        written["confusion_csv"], written["confusion_png"], written["confusion_normalized_png"] = files
    if output_json:
        metrics_out["outputs"] = {k: str(v) for k, v in written.items()}
        written["json"] = write_json_atomic(output_json, metrics_out)
    return EvalResult(metrics_out, pred, written)


def eval_paths(output_dir, split: str = "test") -> dict[str, Path]:
    """The file names of an evaluation of `split` under `output_dir` (a run's `RunLayout.eval_dir(name)`)."""
    d = Path(output_dir)
    return {"output_json": d / f"{split}_metrics.json", "output_predictions_csv": d / f"{split}_predictions.csv",
            "output_confusion_csv": d / f"{split}_confusion_matrix_eval.csv"}


# ----------------------------------------------------------------------------- tables for notebooks/report
def _fmt_ci(ci) -> str:
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""


def compare_table(results: Mapping[str, Mapping], include_majority: bool = True):
    """Side-by-side table of models: {name: metrics dict} -> DataFrame (one row per model, plus the majority
    baseline of the first model that carries one)."""
    import pandas as pd
    rows = []
    majority = None
    for name, m in results.items():
        ci = m.get("ci95", {})
        rows.append({"model": name, "n": m.get("n", m.get("num_samples")), "accuracy (WA)": m.get("accuracy"),
                     "UA": m.get("ua"), "UA 95% CI": _fmt_ci(ci.get("ua")), "macro-F1": m.get("macro_f1"),
                     "macro-F1 95% CI": _fmt_ci(ci.get("macro_f1")), "weighted-F1": m.get("weighted_f1"),
                     "ECE": m.get("ece"), "NLL": m.get("nll")})
        if majority is None and m.get("majority_baseline"):
            majority = (m["majority_baseline"], m.get("n"))
    if include_majority and majority:
        mb, n = majority
        rows.append({"model": f"majority class (always '{mb['majority_label']}', from the {mb.get('source', '')})", "n": n,
                     "accuracy (WA)": mb["accuracy"], "UA": mb["ua"], "macro-F1": mb["macro_f1"],
                     "weighted-F1": mb["weighted_f1"], "UA 95% CI": "", "macro-F1 95% CI": ""})
    return pd.DataFrame(rows).set_index("model")


def per_class_table(metrics: Mapping):
    import pandas as pd
    rows = [{"label": lab, "name": display_name(lab), **vals} for lab, vals in metrics["per_class"].items()]
    return pd.DataFrame(rows).set_index("label")


def breakdown_table(metrics: Mapping, by: str):
    """One row per value of `by` (language, dialog_type, speaker); empty DataFrame when that column was absent."""
    import pandas as pd
    groups = metrics.get("breakdowns", {}).get(by)
    if not groups:
        return pd.DataFrame(columns=["n", "accuracy", "ua", "macro_f1", "weighted_f1", "ece"])
    df = pd.DataFrame([{by: g, **{k: v for k, v in vals.items() if k != "support"}} for g, vals in groups.items()])
    return df.set_index(by)


def breakdown_compare(results: Mapping[str, Mapping], by: str, metric: str = "macro_f1"):
    """`metric` per group of `by` for several models side by side (columns: n, then one per model)."""
    import pandas as pd
    cols = {}
    n = {}
    for name, m in results.items():
        for g, vals in m.get("breakdowns", {}).get(by, {}).items():
            cols.setdefault(name, {})[g] = vals[metric]
            n.setdefault(g, vals["n"])
    if not cols:
        return pd.DataFrame()
    df = pd.DataFrame(cols)
    df.insert(0, "n", pd.Series(n))
    df.index.name = by
    return df


def verdict(results: Mapping[str, Mapping], metric: str = "macro_f1") -> str:
    """A plain sentence on which model wins on `metric`, whether the 95% intervals overlap, and the margin over
    the majority-class baseline (computed from the numbers, so it stays honest whatever they are)."""
    items = [(name, m) for name, m in results.items() if m]
    if not items:
        return "nothing to compare"
    ranked = sorted(items, key=lambda kv: kv[1][metric], reverse=True)
    (best, mb), rest = ranked[0], ranked[1:]
    lines = []
    for other, mo in rest:
        gap = mb[metric] - mo[metric]
        ci_b, ci_o = mb.get("ci95", {}).get(metric), mo.get("ci95", {}).get(metric)
        if ci_b and ci_o and ci_b[0] <= ci_o[1] and ci_o[0] <= ci_b[1]:
            how = "but their 95% intervals overlap, so this test set cannot tell them apart with confidence"
        elif ci_b and ci_o:
            how = "and their 95% intervals do not overlap"
        else:
            how = "(no intervals computed)"
        lines.append(f"{best} beats {other} on {metric} by {gap:+.3f} ({mb[metric]:.3f} vs {mo[metric]:.3f}), {how}.")
    maj = mb.get("majority_baseline")
    if maj:
        lines.append(f"Always answering '{maj['majority_label']}' would score {metric} {maj[metric]:.3f}: "
                     f"{best} is {mb[metric] - maj[metric]:+.3f} above it.")
    return "\n".join(lines)


def show_images(*paths) -> None:
    """Show PNG files inline (a notebook helper)."""
    from IPython.display import Image, display
    for p in paths:
        display(Image(filename=str(p)))


def reference_table():
    """Published results (percent) with dataset, protocol and source: context, not a like-for-like comparison."""
    import pandas as pd

    from .references import metric_rows
    return pd.DataFrame(metric_rows())


def misclassified(predictions, n: int = 4, seed: int = 0):
    """The `n` most confident wrong predictions (one per true label first, for variety)."""
    import pandas as pd
    wrong = predictions[predictions["label"] != predictions["prediction"]]
    if wrong.empty:
        return wrong
    wrong = wrong.sort_values("confidence", ascending=False, kind="stable")
    first = wrong.groupby("label", sort=True).head(1)
    rest = wrong.drop(first.index)
    return pd.concat([first, rest]).head(n)


def show_clips(rows, max_seconds: float = 15.0) -> None:
    """Display an audio player with its true/predicted labels for each row (in a notebook)."""
    from IPython.display import Audio, Markdown, display
    for _, r in rows.iterrows():
        display(Markdown(f"**{Path(r['path']).name}** true **{display_name(r['label'])}**, predicted "
                         f"**{display_name(r['prediction'])}** ({r['confidence']:.2f})"
                         + (f", {r['language']}" if "language" in r and isinstance(r["language"], str) else "")))
        y = audio_mod.load_audio(r["path"], max_duration_sec=None)[: int(max_seconds * SAMPLE_RATE)]
        display(Audio(y, rate=SAMPLE_RATE))


# ----------------------------------------------------------------------------- CLI
def _cmd_evaluate(args: argparse.Namespace) -> int:
    res = evaluate_wav2vec2(args.model_dir, args.manifest, output_json=args.output_json or None,
                            output_predictions_csv=args.output_predictions_csv or None,
                            output_confusion_csv=args.output_confusion_csv or None,
                            train_manifest=args.train_manifest or None, config=EvaluateConfig.from_params(vars(args)))
    m = res.metrics
    ci = m.get("ci95", {})
    print(f"n={m['n']}  accuracy {m['accuracy']:.4f}  UA {m['ua']:.4f}  macro-F1 {m['macro_f1']:.4f}"
          + (f" {_fmt_ci(ci.get('macro_f1'))}" if ci else "")
          + f"  ECE {m['ece']:.4f}  majority macro-F1 {m['majority_baseline']['macro_f1']:.4f}")
    for path in res.paths.values():
        print(f"wrote {path}")
    return 0


def register_cli(subparsers) -> None:
    """`ser evaluate-wav2vec2`: its settings' flags generated from EvaluateConfig, around the file flags."""
    p = subparsers.add_parser("evaluate-wav2vec2", help="evaluate a trained audio model on a manifest",
                              description=evaluate_wav2vec2.__doc__)
    p.add_argument("--model-dir", required=True)
    p.add_argument("--manifest", required=True)
    after_outputs = [f.name for f in fields(EvaluateConfig) if f.name not in FLAGS_BEFORE_OUTPUTS]
    add_dataclass_flags(p, EvaluateConfig, skip=after_outputs)
    p.add_argument("--output-json", default="")
    p.add_argument("--output-predictions-csv", default="")
    p.add_argument("--output-confusion-csv", default="")
    # additions (the flags above keep the user's interface)
    p.add_argument("--train-manifest", default="",
                   help="training manifest for the majority baseline (default: found via train_report.json)")
    add_dataclass_flags(p, EvaluateConfig, skip=FLAGS_BEFORE_OUTPUTS)
    add_split_overlap_flag(p)
    p.set_defaults(func=_cmd_evaluate)
