"""Choose the production fusion model (stage 09): rank candidates, copy the winner to `fusion_best/`.

Rule (the seed's): highest `{select_on}_macro_f1`, then lower `{select_on}_ece`, then fewer parameters,
then earlier (candidate order). `select_on="test"` is the user's convention; it makes the winner's test
score optimistic (the test set was used to choose), so `select_on="val"` is offered.
Taught in notebook 09 (09_select_fusion_best), with what a real recogniser costs the chosen model
(`compare_recognised_transcripts`: the same test rows with reference vs recognised transcripts).
"""
from __future__ import annotations

import datetime as _dt
import json
import shutil
from pathlib import Path
from typing import Sequence

from .common import SERError, atomic_dir, display_name, read_json, write_csv_atomic, write_json_atomic
from .layout import RunLayout

SELECT_ON = ("test", "val")
BEST_NAME = Path(RunLayout.FUSION_BEST).name  # fusion_best, never a candidate itself
COPY_SKIP = {"provenance.json", "README.md"}


def discover_candidates(models_dir, exclude: Sequence[str] = (BEST_NAME,)) -> list[Path]:
    """Every sub-directory of `models_dir` holding a fusion_model.pt (not fusion_best), oldest first."""
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        raise SERError(f"{models_dir}: no such directory of fusion models")
    found = [d for d in models_dir.iterdir() if d.is_dir() and d.name not in exclude and not d.name.startswith(".")
             and (d / "fusion_model.pt").exists()]
    return sorted(found, key=lambda d: ((d / "fusion_model.pt").stat().st_mtime, d.name))


def _candidate_row(order: int, d: Path, select_on: str) -> dict:
    rep_path = d / "train_report.json"
    if not (d / "fusion_model.pt").exists():
        raise SERError(f"{d}: not a fusion run (no fusion_model.pt)")
    if not rep_path.exists():
        raise SERError(f"{d}: not a fusion run (no train_report.json)")
    r = read_json(rep_path)
    for key in (f"{select_on}_macro_f1", f"{select_on}_ece"):
        if r.get(key) is None:
            raise SERError(f"{rep_path}: lacks the metric {key!r} needed to rank on {select_on}")
    row = {"order": order, "candidate": d.name, "path": str(d.resolve()), "mode": r.get("mode"),
           "fusion_arch": r.get("fusion_arch"), "fit_strategy": r.get("fit_strategy"),
           "n_parameters": int(r.get("n_parameters") or 0),
           "calibration_mode": (r.get("calibration") or {}).get("mode"),
           "temperature": (r.get("calibration") or {}).get("temperature")}
    for split in ("val", "test"):
        for key in ("macro_f1", "accuracy", "ua", "ece", "nll", "brier", "ece_uncalibrated"):
            row[f"{split}_{key}"] = r.get(f"{split}_{key}")
    ci = r.get("test_macro_f1_ci") or [None, None]
    row["test_macro_f1_ci_low"], row["test_macro_f1_ci_high"] = ci
    row["mtime"] = (d / "fusion_model.pt").stat().st_mtime
    return row


def rank_candidates(rows: list[dict], select_on: str = "test") -> list[dict]:
    """Sort by (-macro_f1, ece, n_parameters, order); adds `rank` (1 = winner)."""
    key = lambda r: (-r[f"{select_on}_macro_f1"], r[f"{select_on}_ece"], r["n_parameters"], r["order"])  # noqa: E731
    ranked = sorted(rows, key=key)
    for i, r in enumerate(ranked, 1):
        r["rank"] = i
    return ranked


def rank_only(candidates, select_on: str = "test", exclude: Sequence[str] = (BEST_NAME,)):
    """The ranking `select_fusion_best` would make, as a DataFrame, without writing anything."""
    import pandas as pd
    if isinstance(candidates, (str, Path)):
        dirs = discover_candidates(candidates, exclude)
    else:
        dirs = [Path(c) for c in candidates]
    ranked = rank_candidates([_candidate_row(i, d, select_on) for i, d in enumerate(dirs)], select_on)
    cols = ["rank", "candidate", "mode", "fusion_arch", f"{select_on}_macro_f1", f"{select_on}_ece", "n_parameters",
            "val_macro_f1", "test_macro_f1", "test_ece"]
    return pd.DataFrame(ranked)[list(dict.fromkeys(cols))].set_index("rank")


#: files of a component dir that inference does not need (training caches, plots, predictions, checkpoints)
BUNDLE_IGNORE = ("feature_cache*", "checkpoints", "*.png", "*_predictions.csv", "val_confusion_matrix_epoch*")


def bundle_components(fusion_dir: Path, pipeline: dict) -> dict:
    """Copy every LOCAL component that `pipeline.json` names (audio models, text models, a Whisper checkpoint file)
    into `fusion_dir/components/` and point pipeline.json at the copies (relative paths), so that the fusion dir
    alone drives the demo and the service on another machine. Hub ids are kept as they are.
    Returns {original path: relative copy}."""
    comp = pipeline.get("components") or {}
    copied: dict[str, str] = {}

    def take(src, name: str):
        if not src or not Path(src).is_absolute() or not Path(src).exists():
            return src  # a hub id, an already-relative path (text4_head) or something absent
        if src not in copied:
            rel = f"components/{name}"
            dst = fusion_dir / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            if Path(src).is_dir():
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns(*BUNDLE_IGNORE))
            else:
                rel = f"{rel}{''.join(Path(src).suffixes)}"
                shutil.copy2(src, fusion_dir / rel)
            copied[src] = rel
        return copied[src]

    for group, prefix in (("audio_models", "audio"), ("text_models", "text")):
        for lang, src in sorted((comp.get(group) or {}).items()):
            comp.setdefault(group, {})[lang] = take(src, f"{prefix}_{lang}")
    asr = comp.get("asr") or {}
    if asr.get("backend") == "whisper" and asr.get("model"):
        asr["model"] = take(asr["model"], "whisper")
    if comp.get("text4_head"):
        comp["text4_head"] = take(comp["text4_head"], "text4")
    pipeline["components"] = comp
    pipeline["bundled_components"] = copied
    return copied


def select_fusion_best(candidates, output_dir, experiment: str = "exp01", select_on: str = "test",
                       bundle: bool = True) -> dict:
    """Rank `candidates` (fusion run dirs, or one models dir to scan) and install the winner at `output_dir`.

    Writes `model_selection_{experiment}.csv/.json` beside `output_dir` (its parent) and replaces
    `output_dir` atomically with a copy of the winner + provenance.json + README.md (model card).
    With `bundle` (default) the local components it needs are copied in too (`bundle_components`).
    """
    if select_on not in SELECT_ON:
        raise SERError(f"select_on={select_on!r} is not one of {list(SELECT_ON)}")
    output_dir = Path(output_dir)
    if isinstance(candidates, (str, Path)):
        cand_dirs = discover_candidates(candidates)
    else:
        cand_dirs = [Path(c) for c in candidates]
    cand_dirs = [d for d in cand_dirs if d.resolve() != output_dir.resolve()]
    if not cand_dirs:
        raise SERError(f"no fusion candidates to select from (looked at {candidates!r})")
    for d in cand_dirs:
        if not d.is_dir():
            raise SERError(f"{d}: candidate directory not found")
    rows = [_candidate_row(i, d, select_on) for i, d in enumerate(cand_dirs)]
    ranked = rank_candidates(rows, select_on)
    winner = ranked[0]
    rule = (f"highest {select_on}_macro_f1, then lower {select_on}_ece, then fewer parameters, "
            f"then earlier (candidate order)")
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    payload = {"experiment": experiment, "select_on": select_on, "rule": rule, "selected": winner["candidate"],
               "selected_path": winner["path"], "output_dir": str(output_dir.resolve()), "time": now,
               "candidates": ranked,
               "caveat": ("chosen on the test split: the winner's test score is optimistically biased"
                          if select_on == "test" else "chosen on the val split: the test score stays unbiased")}
    import pandas as pd
    sel_dir = output_dir.parent
    write_csv_atomic(sel_dir / f"model_selection_{experiment}.csv",
                     pd.DataFrame(ranked).drop(columns=["mtime"]))
    write_json_atomic(sel_dir / f"model_selection_{experiment}.json", payload)

    src = Path(winner["path"])
    report = read_json(src / "train_report.json")
    pipeline = read_json(src / "pipeline.json") if (src / "pipeline.json").exists() else {}
    with atomic_dir(output_dir) as tmp:
        for item in src.iterdir():
            if item.name in COPY_SKIP or item.name.startswith("."):
                continue
            (shutil.copytree if item.is_dir() else shutil.copy2)(item, tmp / item.name)
        bundled = {}
        if bundle and pipeline:
            bundled = bundle_components(tmp, pipeline)
            write_json_atomic(tmp / "pipeline.json", pipeline)
        write_json_atomic(tmp / "provenance.json", {
            "bundled_components": bundled,
            "source": winner["path"], "experiment": experiment, "select_on": select_on, "rule": rule, "time": now,
            "metrics": {k: v for k, v in winner.items() if k not in ("path", "mtime")},
            "selection_file": str((sel_dir / f"model_selection_{experiment}.json").resolve()),
            "n_candidates": len(ranked)})
        (tmp / "README.md").write_text(model_card(report, pipeline, winner, payload), encoding="utf-8")
    return payload


def _fmt(v, nd=3):
    return "n/a" if v is None else f"{v:.{nd}f}"


def model_card(report: dict, pipeline: dict, winner: dict, selection: dict) -> str:
    """A short Markdown model card for fusion_best/."""
    lines = [f"# Fusion model card: `{winner['candidate']}` (selected as fusion_best)",
             "",
             f"Selected {selection['time']} from {len(selection['candidates'])} candidate(s) by: {selection['rule']}.",
             f"{selection['caveat'].capitalize()}.",
             ""]
    for section in (_card_components(report, pipeline), _card_data(report), _card_metrics(report),
                    _card_calibration(report), _card_limits(report), CARD_ETHICS):
        lines += section + [""]
    return "\n".join(lines)


def _card_components(report: dict, pipeline: dict) -> list[str]:
    comp = pipeline.get("components") or {}
    asr = comp.get("asr") or {}
    oracle = bool(asr.get("oracle")) or pipeline.get("transcripts_oracle")
    return [
        "## Components",
        f"- Fusion: {report.get('fusion_arch')} over {len(report.get('feature_names', []))} features "
        f"(mode `{report.get('mode')}`, {report.get('n_parameters')} parameters, fit strategy "
        f"`{report.get('fit_strategy')}`).",
        f"- Audio models: {json.dumps(comp.get('audio_models'))}",
        f"- ASR: backend `{asr.get('backend')}`, model `{asr.get('model')}`"
        + (" - **ORACLE transcripts** (the corpus's own text, not speech recognition): text scores are an "
           "upper bound on what ASR would give." if oracle else "."),
        f"- Text models: {json.dumps(comp.get('text_models'))}; text4 head: `{comp.get('text4_head')}`"]


def _card_data(report: dict) -> list[str]:
    return [
        "## Data",
        f"- Rows per split and language: {json.dumps(report.get('rows') or {})}",
        "- Fusion fitted on: " + ("the validation rows, by speaker-grouped cross-validation (`val_cv`); the train rows "
                                  "trained the audio model and text head only, so the fusion never sees their "
                                  "in-sample confidence." if report.get("fit_strategy") == "val_cv" else
                                  "the train rows, early-stopped and calibrated on the validation rows."),
        f"- Inputs: {json.dumps(report.get('inputs'))}"]


def _card_metrics(report: dict) -> list[str]:
    unc, calb = report.get("uncalibrated", {}), report.get("calibrated", {})
    lines = ["## Metrics (calibrated; uncalibrated in brackets)",
             "| split | macro-F1 | accuracy | UA | ECE | NLL |",
             "|---|---|---|---|---|---|"]
    for s in ("val", "test"):
        c, u = calb.get(s, {}), unc.get(s, {})
        lines.append(f"| {s} | {_fmt(c.get('macro_f1'))} | {_fmt(c.get('accuracy'))} | {_fmt(c.get('ua'))} | "
                     f"{_fmt(c.get('ece'))} ({_fmt(u.get('ece'))}) | {_fmt(c.get('nll'))} ({_fmt(u.get('nll'))}) |")
    ci = report.get("test_macro_f1_ci") or [None, None]
    eci = report.get("test_ece_ci") or [None, None]
    floor = (report.get("ece_sampling_floor") or {}).get("test") or {}
    lines += [f"- Test macro-F1 95% bootstrap interval [{_fmt(ci[0])}, {_fmt(ci[1])}]; "
              f"test ECE interval [{_fmt(eci[0])}, {_fmt(eci[1])}] (bias-corrected)."
              + (f" A perfectly calibrated model would show ECE {_fmt(floor.get('mean'))} (95th percentile "
                 f"{_fmt(floor.get('p95'))}) on these {floor.get('n')} test rows." if floor.get("mean") else ""),
              "- Per language (test, calibrated): " + ", ".join(
                  f"{lang} macro-F1 {_fmt(m.get('macro_f1'))}" for lang, m in
                  calb.get("test", {}).get("per_language", {}).items())]
    return lines


def _card_calibration(report: dict) -> list[str]:
    cal = report.get("calibration") or {}
    return ["## Calibration",
            f"- Mode `{cal.get('mode')}`, fitted on the validation split only; temperature "
            f"{_fmt(cal.get('temperature'))}" + (f", per language {json.dumps(cal.get('per_language'))}"
                                                 if cal.get("per_language") else "") + "."]


def _card_limits(report: dict) -> list[str]:
    return ["## Limits",
            "- Labels: " + ", ".join(display_name(x) for x in report.get("labels", [])) +
            " only; other emotions are forced into one of them.",
            "- Trained and evaluated on the data above; on the embedded default that is a synthetic corpus "
            "(synthesised speech, scripted wording), so the numbers say nothing about real conversations.",
            "- Calibration holds for data like the validation split; under label or domain shift it degrades."]


CARD_ETHICS = [
    "## Ethical caveats",
    "- Emotion recognition infers an internal state from voice and words; it is often wrong and must not "
    "drive decisions about people (hiring, policing, health, credit) or run without their consent.",
    "- Accuracy differs by language, speaker, accent and recording conditions; check per-group numbers "
    "before any use. Transcripts and audio are personal data."]


def _cli(args) -> int:
    cands = args.candidates
    if len(cands) == 1 and not (Path(cands[0]) / "fusion_model.pt").exists():
        cands = cands[0]  # a models dir to scan
    payload = select_fusion_best(cands, args.output_dir, experiment=args.experiment, select_on=args.select_on,
                                 bundle=args.bundle)
    print(json.dumps({"selected": payload["selected"], "select_on": payload["select_on"],
                      "ranking": [(r["candidate"], r[f"{args.select_on}_macro_f1"], r[f"{args.select_on}_ece"])
                                  for r in payload["candidates"]]}, indent=2))
    return 0


def register_cli(subparsers) -> None:
    p = subparsers.add_parser("select-fusion-best", help="rank fusion runs and install fusion_best/ (stage 09)")
    p.add_argument("--candidates", nargs="+", required=True,
                   help="train-late-fusion output dirs (or one models dir to scan)")
    p.add_argument("--output-dir", required=True, help="the fusion_best dir; selection files go beside it")
    p.add_argument("--experiment", default="exp01")
    p.add_argument("--select-on", choices=SELECT_ON, default="test")
    p.add_argument("--no-bundle", dest="bundle", action="store_false",
                   help="do not copy the local audio/text/ASR components into the output dir (keep their paths)")
    p.set_defaults(func=_cli)


# ----------------------------------------------------------------------------- what real ASR costs (notebook 09)
def compare_recognised_transcripts(fusion_dir: str, features_dir: str, split: str = "test",
                                   output_json: str = "", missing_ok: bool = False) -> dict | None:
    """What a real recogniser costs the fused model: its macro-F1 (and accuracy, UA) on the SAME rows of
    `{split}_features.csv` (reference transcripts) and `{split}_features_asr.csv` (recognised transcripts).
    Written to `output_json` (default `{fusion_dir}/../asr_vs_reference.json`) for the report."""
    import pandas as pd

    from .asr import wer
    from .fusion import load_fusion_model
    from .metrics import classification_metrics
    features_dir, fusion_dir = Path(features_dir), Path(fusion_dir)
    asr_path, ref_path = features_dir / f"{split}_features_asr.csv", features_dir / f"{split}_features.csv"
    for p in (asr_path, ref_path):
        if not p.exists():
            if missing_ok:
                return None
            raise SERError(f"{p}: not found (notebook 06 writes it; build_asr_features for the recognised rows)")
    asr_df = pd.read_csv(asr_path, keep_default_na=False)
    ref_df = pd.read_csv(ref_path, keep_default_na=False)
    ref_df = ref_df.set_index("path").loc[asr_df["path"]].reset_index()  # the same rows, same order
    model = load_fusion_model(fusion_dir)
    out = {"fusion_dir": str(fusion_dir), "split": split, "rows": int(len(asr_df)),
           "languages": sorted(set(asr_df["language"])), "mode": model.mode}
    y = asr_df["label_id"].to_numpy()
    for name, df in (("reference", ref_df), ("recognised", asr_df)):
        P = model.predict_proba(df, df["language"].tolist())
        m = classification_metrics(y, P)
        out[name] = {"macro_f1": m["macro_f1"], "accuracy": m["accuracy"], "ua": m["ua"]}
        if name == "recognised" and "reference_transcript" in df.columns:
            out["wer"] = wer(df["reference_transcript"].astype(str).tolist(), df["transcript"].astype(str).tolist())["wer"]
    out["macro_f1_cost"] = out["reference"]["macro_f1"] - out["recognised"]["macro_f1"]
    path = Path(output_json) if output_json else fusion_dir.parent / "asr_vs_reference.json"
    write_json_atomic(path, out)
    out["path"] = str(path)
    return out


def describe_asr_cost(cmp: dict | None) -> str:
    """One sentence: the fused model's macro-F1 with reference vs recognised transcripts on the same rows."""
    if not cmp:
        return "No recognised test rows (notebook 06 ran without asr_eval_model): nothing to compare."
    return (f"fusion_best on the same {cmp['rows']} {'/'.join(cmp['languages'])} {cmp['split']} rows: macro-F1 "
            f"{cmp['reference']['macro_f1']:.3f} with reference (ORACLE) transcripts, "
            f"{cmp['recognised']['macro_f1']:.3f} with recognised ones (WER {cmp.get('wer', float('nan')):.3f}): "
            f"a real recogniser costs {cmp['macro_f1_cost']:+.3f} macro-F1.")
