"""Tests of the stakeholder report (ser_helpers.report): numbers come from the run's artifacts, figures
are linked and exist, missing stages say "not run", and the smoke run's report is complete."""
from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from ser_helpers import metrics, plots, report  # noqa: E402
from ser_helpers.common import LABELS, SERError, write_json_atomic  # noqa: E402


def _probs(n, seed, skill):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    logits = rng.normal(size=(n, 4))
    logits[np.arange(n), y] += skill
    p = np.exp(logits)
    return y, p / p.sum(axis=1, keepdims=True)


def make_run(tmp_path: Path, seed: int = 0) -> tuple[Path, dict]:
    """A run dir with every artifact the report reads, written by the real metric/plot helpers."""
    run = tmp_path / "run"
    man = run / "manifests" / "multilingual_4class"
    man.mkdir(parents=True)
    write_json_atomic(run / "corpus" / "corpus_info.json", {"size": "smoke", "seed": seed, "synthesizer": "espeak-ng test",
                                                           "counts": {"en_clips": 150 + seed, "zh_clips": 96}})
    counts = {s: {lab: int(5 + i + 3 * j + seed) for i, lab in enumerate(LABELS)} for j, s in enumerate(["train", "val", "test"])}
    write_json_atomic(man / "summary.json", {
        "counts": counts, "totals": {s: sum(c.values()) for s, c in counts.items()},
        "n_speakers": {"train": 6, "val": 2, "test": 2}, "hours": {"train": 0.1234, "val": 0.02, "test": 0.03},
        "languages": {"train": {"en": 20, "zh": 18}}, "split_rule": {"description": "sessions 1-3 / 4 / 5"}})
    y, p = _probs(120, seed, 2.0)
    audio_m = metrics.classification_metrics(y, p)
    audio_m["ci95"] = {"macro_f1": list(metrics.bootstrap_ci(y, p, n_bootstrap=50, seed=0))}
    maj = metrics.majority_baseline(np.zeros(10, dtype=int), y)
    audio_m["majority_baseline"] = {k: maj[k] for k in ("majority_label", "accuracy", "ua", "macro_f1")}
    ev = run / "eval" / "w2v_multi"
    ev.mkdir(parents=True)
    write_json_atomic(ev / "test_metrics.json", audio_m)
    plots.confusion_heatmap(audio_m["confusion_matrix"], LABELS, ev / "test_confusion_matrix_eval.png")
    yb, pb = _probs(120, seed + 1, 0.8)
    base_m = metrics.classification_metrics(yb, pb)
    bl = run / "models" / "baseline" / "default"
    bl.mkdir(parents=True)
    write_json_atomic(bl / "train_report.json", {"test": base_m, "val": base_m})
    abl = run / "fusion" / "ablation"
    abl.mkdir(parents=True)
    ablation_rows = [{"mode": m, "test_macro_f1_mean": float(v), "test_macro_f1_std": 0.01, "test_ece_mean": 0.05, "n_seeds": 3}
                     for m, v in zip(["audio_only", "text_only", "fusion"], np.random.default_rng(seed).uniform(0.3, 0.9, 3))]
    gain = ablation_rows[2]["test_macro_f1_mean"] - max(r["test_macro_f1_mean"] for r in ablation_rows[:2])
    write_json_atomic(abl / "ablation_summary.json", {"seeds": [42, 43, 44], "summary": ablation_rows, "runs": [],
                                                      "fusion_gain_over_best_single_test_macro_f1": gain})
    plots.training_curves([{"epoch": 1, "train_loss": 1.0, "val_macro_f1": 0.5}], path=abl / "ablation.png")
    best = run / "fusion" / "models" / "fusion_best"
    best.mkdir(parents=True)
    fusion_rep = {"calibration": {"mode": "global_temperature", "temperature": 1.7 + seed},
                  "test_ece": 0.031 + seed / 100, "test_ece_uncalibrated": 0.187, "val_ece": 0.02,
                  "val_ece_uncalibrated": 0.15, "test_macro_f1": 0.81, "test_macro_f1_uncalibrated": 0.81,
                  "test_nll": 0.5, "test_nll_uncalibrated": 0.7, "transcripts": {"backend": "reference", "oracle": True},
                  "ece_sampling_floor": {"test": {"n": 621, "mean": 0.037 + seed / 1000, "p05": 0.02, "p95": 0.053}}}
    write_json_atomic(best / "train_report.json", fusion_rep)
    plots.reliability_diagram(metrics.reliability_bins(p, y), None, path=best / "test_reliability.png")
    write_json_atomic(run / "fusion" / "models" / "model_selection_exp01.json",
                      {"selected": "exp_fusion_mlp", "rule": "highest test_macro_f1, then lower test_ece",
                       "caveat": "chosen on the test split",
                       "candidates": [{"rank": 1, "candidate": "exp_fusion_mlp", "test_macro_f1": 0.81, "path": "/x"},
                                      {"rank": 2, "candidate": "exp_audio_only", "test_macro_f1": 0.7, "path": "/y"}]})
    nbs = run / "notebooks"
    nbs.mkdir()
    (nbs / "00_corpus.ipynb").write_text("{}")
    (nbs / "04_evaluate.ipynb").write_text("{}")
    write_json_atomic(run / "pipeline_timings.json", {"stages": [{"stage": "corpus", "notebook": "00_make_demo_corpus",
                                                                  "seconds": 12.5}]})
    return run, {"audio": audio_m, "baseline": base_m, "ablation": ablation_rows, "fusion": fusion_rep,
                 "counts": counts}


def gain_str(art) -> str:
    rows = art["ablation"]
    return f"{rows[2]['test_macro_f1_mean'] - max(r['test_macro_f1_mean'] for r in rows[:2]):+.3f}"


def image_links(text: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)


def test_full_report_reads_artifacts(tmp_path):
    run, art = make_run(tmp_path)
    path = report.write_report(run)
    assert path == run / "REPORT.md"
    text = path.read_text()
    assert "Not run" not in text
    a = art["audio"]
    row = re.search(r"\| wav2vec2 `w2v_multi` \|[^\n]*", text).group(0)
    for v in (a["accuracy"], a["ua"], a["macro_f1"], a["ece"]):
        assert report.fmt(v) in row
    assert report.fmt(a["ci95"]["macro_f1"]) in row
    base_row = re.search(r"\| MFCC\+prosody logistic regression `default` \|[^\n]*", text).group(0)
    assert report.fmt(art["baseline"]["macro_f1"]) in base_row
    assert "majority class (angry)" in text
    for r in art["ablation"]:
        assert re.search(rf"\| {r['mode']} \| 3 \| {re.escape(report.fmt(r['test_macro_f1_mean']))} \|", text)
    assert f"T = {report.fmt(art['fusion']['calibration']['temperature'])}" in text
    assert "0.187 → 0.031" in text  # ours beside published, from the fusion report
    assert "0.206 → 0.025" in text and "S5" in text  # published, with protocol
    assert "ORACLE" in text
    floor = art["fusion"]["ece_sampling_floor"]["test"]
    assert f"test ECE of {report.fmt(floor['mean'])} on these 621 rows (95th percentile 0.053)" in text
    assert "size `smoke`, seed 0, en_clips: 150, zh_clips: 96) with espeak-ng test" in text
    assert "Selected: **exp_fusion_mlp**" in text and "| 2 | exp_audio_only | 0.700 |" in text
    assert f"**{gain_str(art)}**" in text
    # data counts per split/emotion
    test_row = re.search(r"\| multilingual_4class \| test \|[^\n]*", text).group(0)
    for lab in LABELS:
        assert f"| {art['counts']['test'][lab]} |" in test_row
    # figures: linked relative to the report and existing
    links = image_links(text)
    assert len(links) >= 3
    for link in links:
        assert (run / link).is_file(), link
    assert "[00_corpus.ipynb](notebooks/00_corpus.ipynb) (12.5 s)" in text


def test_numbers_follow_the_artifacts(tmp_path):
    t0 = report.build_report(make_run(tmp_path / "a", seed=0)[0])
    t1 = report.build_report(make_run(tmp_path / "b", seed=1)[0])
    strip = lambda t: re.sub(r"Written .*? from the artifacts in `[^`]*`", "", t)  # noqa: E731
    assert strip(t0) != strip(t1)


def test_missing_pieces_say_not_run(tmp_path):
    run, _ = make_run(tmp_path)
    import shutil
    shutil.rmtree(run / "fusion")
    (run / "eval" / "w2v_multi" / "test_confusion_matrix_eval.png").unlink()
    text = report.build_report(run)
    for section in ("## 3.", "## 4.", "## 5."):
        body = text.split(section, 1)[1].split("\n## ", 1)[0]
        assert "Not run" in body, section
    assert "figure `confusion matrix, w2v_multi` missing" in text
    empty = tmp_path / "empty_run"
    empty.mkdir()
    text = report.build_report(empty)
    assert text.count("Not run") >= 6
    assert "0.622" in text  # the published numbers are always there


def test_bad_run_dir_and_bad_json(tmp_path, capsys):
    with pytest.raises(SERError, match="run directory not found"):
        report.write_report(tmp_path / "nope")
    run, _ = make_run(tmp_path)
    (run / "fusion" / "ablation" / "ablation_summary.json").write_text("{not json")
    with pytest.raises(SERError, match="ablation_summary.json: cannot read JSON"):
        report.write_report(run)
    from ser_helpers.cli import main
    assert main(["report", "--run-dir", str(tmp_path / "nope")]) == 1
    assert "run directory not found" in capsys.readouterr().err


def test_cli_report(tmp_path, capsys):
    from ser_helpers.cli import main
    run, _ = make_run(tmp_path)
    assert main(["report", "--run-dir", str(run)]) == 0
    assert (run / "REPORT.md").exists()
    assert str(run / "REPORT.md") in capsys.readouterr().out


def test_smoke_run_report(smoke_run):
    assert (Path(smoke_run) / "REPORT.md").is_file(), "notebook 10 of the smoke run did not write REPORT.md"
    path = report.write_report(smoke_run)
    text = path.read_text()
    for n in range(1, 8):
        assert f"## {n}." in text
    for link in image_links(text):
        assert (Path(smoke_run) / link).is_file(), link
    ev = sorted(Path(smoke_run).glob("eval/*/test_metrics.json"))
    if ev:
        m = json.loads(ev[0].read_text())
        assert report.fmt(m["macro_f1"]) in text
    fr = Path(smoke_run) / "fusion" / "models" / "fusion_best" / "train_report.json"
    if fr.exists():
        rep = json.loads(fr.read_text())
        assert report.fmt(rep["test_ece"]) in text and report.fmt(rep["test_ece_uncalibrated"]) in text
