"""The stakeholder report of a run: `{run_dir}/REPORT.md` (notebook 10, `ser report --run-dir`).

Every number and figure in it is read from the run's own artifacts; nothing of ours is typed in.
Published reference numbers (with their protocols and sources) stand beside ours. A missing
artifact (a smoke run may skip stages) gives a "not run" line, never a crash.

All artifact names live in `ARTIFACTS` below, so that a renamed file is a one-line change.
Taught in notebook 10 (10_gradio_demo).
"""
from __future__ import annotations

import json
import math
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

from .common import LABELS, SERError, display_name, write_text_atomic
from .layout import RunLayout
from .references import text_rows

REPORT_NAME = RunLayout.REPORT

L = RunLayout  # the run folder's places (ser_helpers.layout); the files inside them are named here
#: where each artifact lives, relative to run_dir (globs allowed); the one place to adjust lookups
ARTIFACTS: dict[str, Any] = {
    "corpus_info": f"{L.CORPUS}/corpus_info.json",
    "manifest_summaries": f"{L.MANIFESTS}/*/summary.json",
    "audio_train_reports": f"{L.AUDIO_MODELS}/*/train_report.json",
    "eval_metrics": f"{L.EVAL}/*/test_metrics.json",
    "eval_confusion_png": ["test_confusion_matrix_eval_normalized.png", "test_confusion_matrix_eval.png"],
    "baseline_reports": f"{L.BASELINE_MODELS}/*/train_report.json",
    "baseline_confusion_png": ["test_confusion_matrix_normalized.png", "test_confusion_matrix.png"],
    "features_summary": f"{L.FEATURES}/summary.json",
    "ablation_json": f"{L.ABLATION}/ablation_summary.json",
    "ablation_csv": f"{L.ABLATION}/ablation_summary.csv",
    "ablation_png": [f"{L.ABLATION}/ablation.png", f"{L.ABLATION}/ablation_summary.png"],
    "fusion_best": L.FUSION_BEST,
    "fusion_report": f"{L.FUSION_BEST}/train_report.json",
    "fusion_reliability_png": f"{L.FUSION_BEST}/test_reliability.png",
    "fusion_confusion_png": f"{L.FUSION_BEST}/test_confusion_calibrated.png",
    "provenance": f"{L.FUSION_BEST}/provenance.json",
    "selection_json": f"{L.FUSION_MODELS}/model_selection_exp01.json",
    "asr_vs_reference": f"{L.FUSION_MODELS}/asr_vs_reference.json",
    "features_asr_test": f"{L.FEATURES}/test_features_asr.csv",
    "selection_csv": f"{L.FUSION_MODELS}/model_selection_exp01.csv",
    "notebooks": f"{L.NOTEBOOKS}/*.ipynb",
    "timings": L.TIMINGS,
}

#: Published numbers (from ../shared/REFERENCE_RESULTS.md, with sources): not ours, never mixed with ours.
REFERENCES: list[dict] = text_rows()  # published numbers, kept once in ser_helpers.references
NOT_RUN = "_Not run (missing: `{}`)._"


# ----------------------------------------------------------------------------- small helpers
def _read_json(path: Path):
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise SERError(f"{path}: cannot read JSON artifact ({exc})") from exc


def _glob(run_dir: Path, pattern: str) -> list[Path]:
    return sorted(run_dir.glob(pattern))


def _first_existing(base: Path, names: Iterable[str] | str) -> Path | None:
    for name in [names] if isinstance(names, str) else names:
        p = base / name
        if p.exists():
            return p
    return None


def fmt(value, digits: int = 3) -> str:
    """Numbers for tables: floats rounded, None/NaN as '–', lists as [a, b]."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.{digits}f}"
    if isinstance(value, (list, tuple)):
        if len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
            return f"[{fmt(float(value[0]), digits)}, {fmt(float(value[1]), digits)}]"
        return ", ".join(fmt(v, digits) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {fmt(v, digits)}" for k, v in value.items())
    return str(value).replace("|", "\\|").replace("\n", " ")


def md_table(rows: Sequence[dict], columns: Sequence[str] | None = None, headers: Sequence[str] | None = None) -> str:
    """A GitHub markdown table of `rows` (list of dicts)."""
    if not rows:
        return "_(empty)_"
    columns = list(columns or list(dict.fromkeys(k for r in rows for k in r)))
    headers = list(headers or columns)
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(fmt(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(out)


def _rel(path: Path, run_dir: Path) -> str:
    return os.path.relpath(path, run_dir).replace(os.sep, "/")


def _image(path: Path | None, run_dir: Path, alt: str) -> str:
    return f"![{alt}]({_rel(path, run_dir)})" if path is not None and path.exists() else f"_(figure `{alt}` missing)_"


def _metric_row(name: str, m: dict, extra: dict | None = None) -> dict:
    ci = (m.get("ci95") or {}).get("macro_f1")
    row = {"model": name, "n": m.get("n"), "WA (accuracy)": m.get("accuracy", m.get("wa")), "UA": m.get("ua"),
           "macro-F1": m.get("macro_f1"), "macro-F1 95% CI": ci, "ECE": m.get("ece")}
    row.update(extra or {})
    return row


# ----------------------------------------------------------------------------- sections
def section_data(run_dir: Path) -> str:
    parts = ["## 1. Data"]
    info = _read_json(run_dir / ARTIFACTS["corpus_info"])
    if info:
        synth = info.get("synthesizer") or info.get("generator")
        clips = {k: v for k, v in (info.get("counts") or {}).items() if isinstance(v, (int, float))}
        parts.append(f"Corpus: generated by this project (size `{info.get('size', '?')}`, seed {info.get('seed', '?')}"
                     + (f", {fmt(clips)}" if clips else "") + ")"
                     + (f" with {fmt(synth)}" if isinstance(synth, str) else "")
                     + ". Synthetic speech: emotion is carried by prosody and wording; numbers on it are NOT "
                       "comparable with published IEMOCAP/CASIA results, which are shown in section 6 for context.")
    summaries = _glob(run_dir, ARTIFACTS["manifest_summaries"])
    if not summaries:
        parts.append(NOT_RUN.format(ARTIFACTS["manifest_summaries"]))
        return "\n\n".join(parts)
    rows = []
    for path in summaries:
        s = _read_json(path) or {}
        counts = s.get("counts") or {}
        totals = s.get("totals") or {}
        for split in ("train", "val", "test"):
            c = counts.get(split) or {}
            row = {"manifest": path.parent.name, "split": split, "utterances": totals.get(split, sum(c.values()) or None),
                   "speakers": (s.get("n_speakers") or {}).get(split), "hours": (s.get("hours") or {}).get(split)}
            for lab in LABELS:
                row[display_name(lab)] = c.get(lab)
            langs = (s.get("languages") or {}).get(split)
            row["languages"] = ", ".join(f"{k} {v}" for k, v in sorted(langs.items())) if langs else None
            rows.append(row)
    parts.append("Utterances per split and emotion (speaker-independent splits; from each manifest's `summary.json`):")
    parts.append(md_table(rows))
    rules = []
    for path in summaries:
        s = _read_json(path) or {}
        rule = (s.get("split_rule") or {}).get("description") if isinstance(s.get("split_rule"), dict) else s.get("split_rule")
        if rule:
            rules.append(f"- `{path.parent.name}`: {rule}")
    if rules:
        parts.append("Split rules:\n" + "\n".join(rules))
    return "\n\n".join(parts)


def section_audio(run_dir: Path) -> tuple[str, dict]:
    """Audio model test metrics + confusion matrix, the classical baseline beside it."""
    parts = ["## 2. Audio model (wav2vec2) and the classical baseline"]
    ours: dict = {}
    evals = _glob(run_dir, ARTIFACTS["eval_metrics"])
    rows = []
    for path in evals:
        m = _read_json(path) or {}
        kind = "pretrained Whisper encoder" if m.get("architecture") == "WhisperForAudioClassification" else "wav2vec2"
        rows.append(_metric_row(f"{kind} `{path.parent.name}`", m))
        ours.setdefault("audio", m)
    for path in _glob(run_dir, ARTIFACTS["baseline_reports"]):
        rep = _read_json(path) or {}
        if rep.get("test"):
            rows.append(_metric_row(f"MFCC+prosody logistic regression `{path.parent.name}`", rep["test"]))
            ours.setdefault("baseline", rep["test"])
    if not rows:
        parts.append(NOT_RUN.format(f"{ARTIFACTS['eval_metrics']}, {ARTIFACTS['baseline_reports']}"))
        return "\n\n".join(parts), ours
    maj = (ours.get("audio") or ours.get("baseline") or {}).get("majority_baseline")
    if maj:
        rows.append(_metric_row(f"majority class ({display_name(maj.get('majority_label', '?'))})", maj))
    parts.append("Test split (never used for training, early stopping or calibration):")
    parts.append(md_table(rows))
    if not evals:
        parts.append(NOT_RUN.format(ARTIFACTS["eval_metrics"]))
    for path in evals:
        m = _read_json(path) or {}
        per = m.get("per_class") or {}
        if per:
            parts.append(f"Per emotion (`{path.parent.name}`):")
            parts.append(md_table([{"emotion": display_name(lab), "precision": v.get("precision"),
                                    "recall": v.get("recall"), "F1": v.get("f1"), "support": v.get("support")}
                                   for lab, v in per.items()]))
        lang = (m.get("breakdowns") or {}).get("language")
        if isinstance(lang, dict) and lang:
            parts.append("By language:")
            parts.append(md_table([{"language": k, **{c: v.get(c) for c in ("n", "accuracy", "ua", "macro_f1", "ece")}}
                                   for k, v in lang.items() if isinstance(v, dict)]))
        png = _first_existing(path.parent, ARTIFACTS["eval_confusion_png"])
        parts.append(_image(png, run_dir, f"confusion matrix, {path.parent.name}"))
    for path in _glob(run_dir, ARTIFACTS["baseline_reports"]):
        png = _first_existing(path.parent, ARTIFACTS["baseline_confusion_png"])
        if png:
            parts.append(_image(png, run_dir, f"baseline confusion matrix, {path.parent.name}"))
    return "\n\n".join(parts), ours


def _ablation_rows(data) -> list[dict]:
    """ablation_summary.json -> list of flat dict rows, whatever its exact shape (list / {rows|summary|modes})."""
    if isinstance(data, list):
        return [r for r in data if isinstance(r, dict)]
    if isinstance(data, dict):
        for key in ("rows", "summary", "table", "modes", "results"):
            val = data.get(key)
            if isinstance(val, list):
                return [r for r in val if isinstance(r, dict)]
            if isinstance(val, dict) and all(isinstance(v, dict) for v in val.values()):
                return [{"mode": k, **v} for k, v in val.items()]
        if all(isinstance(v, dict) for v in data.values()):
            return [{"mode": k, **v} for k, v in data.items()]
    return []


def _flat_columns(rows: list[dict]) -> list[str]:
    keep = []
    for r in rows:
        for k, v in r.items():
            if k not in keep and (v is None or isinstance(v, (str, int, float, bool))
                                  or (isinstance(v, list) and len(v) == 2)):
                keep.append(k)
    return keep


ABLATION_COLUMNS = ["mode", "n_seeds", "test_macro_f1_mean", "test_macro_f1_std", "test_ua_mean", "test_accuracy_mean",
                    "test_ece_mean", "test_ece_uncalibrated_mean", "val_macro_f1_mean", "test_macro_f1_en_mean",
                    "test_macro_f1_zh_mean"]
SELECTION_COLUMNS = ["rank", "candidate", "mode", "fusion_arch", "calibration_mode", "temperature", "val_macro_f1",
                     "test_macro_f1", "test_ece", "test_ece_uncalibrated", "n_parameters"]


def _header(column: str) -> str:
    """`test_macro_f1_mean` -> `test macro-F1 (mean)` for table headers."""
    name, stat = column, ""
    for suffix in ("_mean", "_std"):
        if column.endswith(suffix):
            name, stat = column[: -len(suffix)], f" ({suffix[1:]})"
    for old, new in (("macro_f1", "macro-F1"), ("ece_uncalibrated", "ECE uncalibrated"), ("ece", "ECE"),
                     ("accuracy", "WA"), ("ua", "UA"), ("n_seeds", "seeds")):
        name = name.replace(old, new)
    return name.replace("_", " ") + stat


def _pick_columns(rows: list[dict], preferred: Sequence[str]) -> list[str]:
    """The preferred columns that the rows have (in that order); all flat columns when none match."""
    have = {k for r in rows for k in r}
    cols = [c for c in preferred if c in have]
    return cols if len(cols) >= 2 else _flat_columns(rows)


def section_ablation(run_dir: Path) -> tuple[str, list[dict]]:
    parts = ["## 3. What each modality contributes (ablation)"]
    data = _read_json(run_dir / ARTIFACTS["ablation_json"])
    rows = _ablation_rows(data) if data is not None else []
    if not rows and (run_dir / ARTIFACTS["ablation_csv"]).exists():
        import pandas as pd
        rows = pd.read_csv(run_dir / ARTIFACTS["ablation_csv"]).to_dict("records")
    if not rows:
        parts.append(NOT_RUN.format(ARTIFACTS["ablation_json"]))
        return "\n\n".join(parts), []
    parts.append("Late fusion trained on audio features only, text features only, and both (test split, "
                 "calibrated; mean over seeds where several were run):")
    cols = _pick_columns(rows, ABLATION_COLUMNS)
    parts.append(md_table(rows, cols, [_header(c) for c in cols]))
    if isinstance(data, dict):
        gain = data.get("fusion_gain_over_best_single_test_macro_f1")
        if gain is not None:
            parts.append(f"Fusion minus the best single modality (test macro-F1): **{gain:+.3f}**"
                         + (f" over seeds {fmt(data.get('seeds'))}" if data.get("seeds") else "") + ".")
    png = _first_existing(run_dir, ARTIFACTS["ablation_png"])
    parts.append(_image(png, run_dir, "ablation chart"))
    return "\n\n".join(parts), rows


def section_calibration(run_dir: Path) -> tuple[str, dict]:
    parts = ["## 4. Calibration of the fused model (before / after)"]
    rep = _read_json(run_dir / ARTIFACTS["fusion_report"])
    if not rep:
        parts.append(NOT_RUN.format(ARTIFACTS["fusion_report"]))
        return "\n\n".join(parts), {}
    cal = rep.get("calibration") or {}
    rows = []
    for split in ("val", "test"):
        row = {"split": split}
        for key, name in (("ece", "ECE"), ("nll", "NLL"), ("brier", "Brier"), ("macro_f1", "macro-F1"),
                          ("accuracy", "WA")):
            row[f"{name} before"] = rep.get(f"{split}_{key}_uncalibrated")
            row[f"{name} after"] = rep.get(f"{split}_{key}")
        rows.append(row)
    parts.append(f"Calibration `{cal.get('mode', '?')}` fitted on the validation split only; temperature "
                 f"T = {fmt(cal.get('temperature'))}"
                 + (f" (per language: {fmt(cal.get('per_language'))})" if cal.get("per_language") else "") + ".")
    parts.append(md_table(rows))
    if rep.get("test_ece_ci"):
        parts.append(f"Test ECE 95% bootstrap interval after calibration: {fmt(rep.get('test_ece_ci'))}"
                     f" (before: {fmt(rep.get('test_ece_uncalibrated_ci'))}; bias-corrected).")
    floor = (rep.get("ece_sampling_floor") or {}).get("test") or {}
    if floor.get("mean") is not None:
        parts.append(f"A perfectly calibrated model with these confidences would show a test ECE of "
                     f"{fmt(floor['mean'])} on these {floor['n']} rows (95th percentile {fmt(floor['p95'])}): "
                     f"ECE differences smaller than that are sampling noise.")
    png = run_dir / ARTIFACTS["fusion_reliability_png"]
    parts.append(_image(png, run_dir, "reliability diagram, test split"))
    cm = run_dir / ARTIFACTS["fusion_confusion_png"]
    parts.append(_image(cm, run_dir, "confusion matrix of the fused model, test split"))
    transcripts = rep.get("transcripts") or {}
    if transcripts.get("oracle"):
        parts.append("Note: the text branch used the corpus's reference transcripts (ORACLE ASR, "
                     f"backend `{transcripts.get('backend')}`), so text results are an upper bound of what "
                     "a real recogniser gives.")
    asr_text = section_asr(run_dir)
    if asr_text:
        parts.append(asr_text)
    return "\n\n".join(parts), rep


def section_asr(run_dir: Path) -> str:
    """The bundled ASR's WER on the English test rows and fusion_best's test macro-F1 with reference vs recognised
    transcripts on the same rows (fusion/models/asr_vs_reference.json, written in notebook 09; computed here
    from the feature tables when 09 did not)."""
    ev = (_read_json(run_dir / ARTIFACTS["features_summary"]) or {}).get("asr_eval") or {}
    cmp_ = _read_json(run_dir / ARTIFACTS["asr_vs_reference"])
    best = run_dir / ARTIFACTS["fusion_best"]
    if not cmp_ and (run_dir / ARTIFACTS["features_asr_test"]).exists() and (best / "pipeline.json").exists():
        from .selection import compare_recognised_transcripts
        try:
            cmp_ = compare_recognised_transcripts(best, RunLayout(run_dir).features, missing_ok=True)
        except SERError as exc:
            return f"**Real ASR:** the recognised test rows could not be scored ({exc})."
    if not ev.get("splits") and not cmp_:
        return ""
    lines = ["**Real speech recognition (what a recogniser costs).**"]
    test = (ev.get("splits") or {}).get("test") or {}
    asr = ev.get("asr") or {}
    if test:
        per = test.get("asr_sec_per_recognised_clip")
        lines.append(f"The bundled Whisper `{asr.get('model')}` ({asr.get('engine')}, {asr.get('compute_type')}) "
                     f"recognised the {test['rows']} English test rows with WER {fmt(test['wer'])} "
                     f"(digits spelled out before scoring; {fmt(test.get('wer_numbers_as_written'))} with digits as "
                     f"written), {fmt(test.get('asr_sec'), 1)} s"
                     + (f", {fmt(per, 2)} s per clip (clips packed into 30 s windows)" if per else " (cache)") + ".")
    if cmp_:
        lines.append(md_table([{"transcripts": "reference (ORACLE)", **{k: cmp_["reference"].get(k) for k in
                                                                      ("macro_f1", "accuracy", "ua")}},
                               {"transcripts": "recognised", **{k: cmp_["recognised"].get(k) for k in
                                                              ("macro_f1", "accuracy", "ua")}}],
                              ["transcripts", "macro_f1", "accuracy", "ua"],
                              ["fusion_best on the same " + f"{cmp_['rows']} English test rows", "macro-F1", "WA", "UA"]))
        lines.append(f"A real recogniser costs the fused model {fmt(cmp_['macro_f1_cost'])} macro-F1 on these rows; "
                     "Mandarin rows keep their reference transcripts (tiny.en is English-only).")
    return "\n\n".join(lines)


def section_selection(run_dir: Path) -> str:
    parts = ["## 5. The selected model (`fusion_best`)"]
    sel = _read_json(run_dir / ARTIFACTS["selection_json"])
    prov = _read_json(run_dir / ARTIFACTS["provenance"])
    if not sel and not prov:
        parts.append(NOT_RUN.format(ARTIFACTS["selection_json"]))
        return "\n\n".join(parts)
    if isinstance(sel, dict):
        winner = next((sel[k] for k in ("selected", "winner", "best", "fusion_best") if sel.get(k) is not None), None)
        rule = sel.get("rule") or sel.get("ranking_rule") or sel.get("criteria")
        if winner is not None:
            parts.append(f"Selected: **{fmt(winner.get('name', winner)) if isinstance(winner, dict) else fmt(winner)}**")
            if isinstance(winner, dict):
                parts.append(md_table([winner], _pick_columns([winner], SELECTION_COLUMNS)))
        if rule:
            parts.append(f"Rule: {fmt(rule)}")
        if sel.get("caveat"):
            parts.append(f"Caveat: {fmt(sel['caveat'])}")
        cands = next((sel[k] for k in ("candidates", "ranking", "rows", "table") if isinstance(sel.get(k), list)), None)
        if cands:
            parts.append("Candidates, best first:")
            parts.append(md_table(cands, _pick_columns(cands, SELECTION_COLUMNS)))
    elif isinstance(sel, list) and sel:
        parts.append("Candidates, best first:")
        parts.append(md_table(sel, _pick_columns(sel, SELECTION_COLUMNS)))
    if isinstance(prov, dict):
        flat = {k: v for k, v in prov.items() if isinstance(v, (str, int, float, bool)) and k != "selection_file"}
        if flat:
            parts.append("Provenance (`fusion_best/provenance.json`): " + "; ".join(f"{k}: {fmt(v)}" for k, v in flat.items()))
    parts.append(f"Try it: `ser demo --fusion-dir {run_dir / ARTIFACTS['fusion_best']}` "
                 "(notebook 10 launches the same app).")
    return "\n\n".join(parts)


def section_references(run_dir: Path, ours: dict, ablation: list[dict], fusion_rep: dict) -> str:
    parts = ["## 6. Our numbers beside published ones",
             "Protocols differ, so compare with care: published numbers are on the REAL corpora with the protocol "
             "named; ours are on this run's data and split (section 1)."]
    rows = []
    protocol = "this run: test split of its manifests (speaker-independent)"
    if ours.get("audio"):
        m = ours["audio"]
        rows.append({"dataset": "this run", "system": "our wav2vec2 (audio only)", "protocol": protocol,
                     "metric": "WA / UA / macro-F1",
                     "value": f"{fmt(m.get('accuracy'))} / {fmt(m.get('ua'))} / {fmt(m.get('macro_f1'))}"})
    if ours.get("baseline"):
        m = ours["baseline"]
        rows.append({"dataset": "this run", "system": "our MFCC+prosody baseline", "protocol": protocol,
                     "metric": "WA / UA / macro-F1",
                     "value": f"{fmt(m.get('accuracy'))} / {fmt(m.get('ua'))} / {fmt(m.get('macro_f1'))}"})
    for r in ablation:
        mode = r.get("mode") or r.get("name")
        f1 = next((r[k] for k in ("test_macro_f1_mean", "test_macro_f1", "macro_f1") if r.get(k) is not None), None)
        if mode and f1 is not None:
            rows.append({"dataset": "this run", "system": f"our late fusion, {mode}", "protocol": protocol,
                         "metric": "macro-F1", "value": fmt(f1)})
    if fusion_rep:
        rows.append({"dataset": "this run", "system": f"our fusion_best, temperature scaling (T = {fmt((fusion_rep.get('calibration') or {}).get('temperature'), 2)})",
                     "protocol": protocol + "; calibrated on val", "metric": "test ECE before → after",
                     "value": f"{fmt(fusion_rep.get('test_ece_uncalibrated'))} → {fmt(fusion_rep.get('test_ece'))}"})
    if rows:
        parts.append("**Ours (read from this run's artifacts):**")
        parts.append(md_table(rows, ["dataset", "system", "protocol", "metric", "value"]))
    else:
        parts.append("_No model of ours was evaluated in this run._")
    parts.append("**Published (see `../shared/REFERENCE_RESULTS.md` for the full list and caveats; accuracy/UA in %):**")
    parts.append(md_table(REFERENCES, ["dataset", "system", "protocol", "metric", "value", "source"]))
    return "\n\n".join(parts)


def section_notebooks(run_dir: Path) -> str:
    parts = ["## 7. Executed notebooks"]
    nbs = _glob(run_dir, ARTIFACTS["notebooks"])
    timings = _read_json(run_dir / ARTIFACTS["timings"]) or {}
    secs = {t.get("notebook"): t.get("seconds") for t in timings.get("stages", []) if isinstance(t, dict)}
    secs_by_stage = {t.get("stage"): t.get("seconds") for t in timings.get("stages", []) if isinstance(t, dict)}
    if not nbs:
        parts.append(NOT_RUN.format(ARTIFACTS["notebooks"]))
    else:
        lines = []
        for nb in nbs:
            stage = nb.stem.split("_", 1)[-1]
            sec = secs_by_stage.get(stage, secs.get(nb.stem))
            lines.append(f"- [{nb.name}]({_rel(nb, run_dir)})" + (f" ({sec:.1f} s)" if isinstance(sec, (int, float)) else ""))
        parts.append("\n".join(lines))
    total = sum(t for t in secs_by_stage.values() if isinstance(t, (int, float)))
    if total:
        parts.append(f"Stage time recorded so far (by the runner, `pipeline_timings.json`): {total:.1f} s.")
    return "\n\n".join(parts)


# ----------------------------------------------------------------------------- entry
def build_report(run_dir: str | os.PathLike) -> str:
    """The report's markdown text (written by `write_report`)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise SERError(f"{run_dir}: run directory not found (run the pipeline first, e.g. `make run`)")
    data = section_data(run_dir)
    audio, ours = section_audio(run_dir)
    ablation, ablation_rows = section_ablation(run_dir)
    calibration, fusion_rep = section_calibration(run_dir)
    head = [f"# Speech emotion recognition: run report (`{run_dir.name}`)",
            f"Written {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} from the artifacts in "
            f"`{run_dir}`. Every number and figure below is read from those files. Emotions: "
            + ", ".join(display_name(c) for c in LABELS) + "."]
    body = [data, audio, ablation, calibration, section_selection(run_dir),
            section_references(run_dir, ours, ablation_rows, fusion_rep), section_notebooks(run_dir)]
    return "\n\n".join(head + body) + "\n"


def write_report(run_dir: str | os.PathLike) -> Path:
    """Write `{run_dir}/REPORT.md` atomically and return its path."""
    text = build_report(run_dir)
    return write_text_atomic(RunLayout(run_dir).report, text)


def register_cli(subparsers) -> None:
    p = subparsers.add_parser("report", help="write the stakeholder report {run_dir}/REPORT.md")
    p.add_argument("--run-dir", required=True, help="a run directory, e.g. outputs/cpu")

    def _run(args) -> int:
        print(write_report(args.run_dir))
        return 0

    p.set_defaults(func=_run)
