"""Choosing the components stage 06 builds on: the audio branch among every trained audio model (by validation
score), and, offline, a tiny local sentiment model for the text branch.

Taught in notebook 06 (06_build_fusion_features.ipynb).
"""
from __future__ import annotations

import json
from pathlib import Path

from ..common import LABELS, SERError, read_manifest
from ..layout import RunLayout


def choose_audio_model(run_dir: str | Path, name: str, kind: str = "auto") -> tuple[str, "pd.DataFrame"]:
    """Pick the audio branch for the fusion features among every trained candidate, all loadable by AudioClassifier:
    the fine-tuned wav2vec2 (`RunLayout.audio_best_model(name)`), the classical MFCC+prosody baseline
    (`RunLayout.baseline_model(name)`), and any other audio model trained on the same data as
    `audio_best_model(f"{name}_<suffix>")` (e.g. `multilingual_whisper`: the pretrained Whisper encoder
    of notebook 03), listed as `<suffix>`.

    kind: "wav2vec2", "baseline", a listed `<suffix>` (e.g. "whisper"), or "auto" = the candidate with the highest
    VALIDATION macro-F1 (test is never read). Returns (model path, a table of the candidates' val macro-F1)."""
    import pandas as pd
    run = RunLayout(run_dir)
    audio_root = run.audio_models
    candidates = {"wav2vec2": run.audio_best_model(name), "baseline": run.baseline_model(name)}
    reports = {"wav2vec2": run.audio_model(name) / "train_report.json",
               "baseline": run.baseline_model(name) / "train_report.json"}
    if audio_root.is_dir():
        for d in sorted(audio_root.glob(f"{name}_*")):
            suffix = d.name[len(name) + 1:]
            if suffix and suffix not in candidates and run.audio_best_model(d.name).is_dir():
                candidates[suffix] = run.audio_best_model(d.name)
                reports[suffix] = run.audio_model(d.name) / "train_report.json"

    def val_f1(which: str):
        path = reports[which]
        if not path.exists():
            return None
        rep = json.loads(path.read_text())
        val = rep.get("val") if which == "baseline" else rep.get("best_val_metrics")
        return float(val["macro_f1"]) if isinstance(val, dict) and "macro_f1" in val else None

    table = pd.DataFrame([{"audio model": k, "path": str(v), "exists": v.exists(), "val_macro_f1": val_f1(k)}
                          for k, v in candidates.items()])
    if kind != "auto" and kind not in candidates:
        raise SERError(f"audio_model_kind must be auto or one of {list(candidates)}, got {kind!r}")
    if kind == "auto":
        usable = table[table.exists & table.val_macro_f1.notna()]
        if usable.empty:
            usable = table[table.exists]  # no val score to compare: the one that exists (wav2vec2 first)
        if usable.empty:
            raise SERError(f"no trained audio model {name!r} in {run.audio_models} or {run.baseline_model(name)} "
                           "(run notebook 03, or 04 for the baseline)")
        kind = str(usable.sort_values("val_macro_f1", ascending=False, kind="stable", na_position="last")
                   .iloc[0]["audio model"])
    path = candidates[kind]
    if not path.exists():
        raise SERError(f"{path}: audio model ({kind}) not found; run notebook 03 (wav2vec2) or 04 (baseline) first")
    table["chosen"] = table["audio model"] == kind
    return str(path), table


def train_sentiment_model_from_manifest(train_manifest: str, output_dir: str, val_manifest: str = "",
                                        seed: int = 42, epochs: int = 8) -> Path:
    """The smoke profile's tiny local 3-class sentiment model, trained on the train manifest's transcripts
    (ang/sad -> negative, neu -> neutral, hap -> positive). Returns its directory (a --text-model-en value)."""
    from ..text import make_tiny_text_model
    tr = read_manifest(train_manifest, labels=LABELS)
    if "transcript" not in tr.columns:
        raise SERError(f"{train_manifest}: no 'transcript' column to train a sentiment model on")
    va = read_manifest(val_manifest, labels=LABELS) if val_manifest else None
    vt = va["transcript"].fillna("").tolist() if va is not None and "transcript" in va.columns else []
    vl = va["label"].tolist() if vt else []
    return make_tiny_text_model(output_dir, tr["transcript"].fillna("").tolist(), tr["label"].tolist(),
                                val_texts=vt, val_labels=vl, seed=seed, epochs=epochs)

