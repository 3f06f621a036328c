"""Semantics of what the stages of ONE smoke run wrote (00-05 and the runner); later stages have their own files."""
from __future__ import annotations

import json
import re

import nbformat
import pandas as pd
import pytest

from ser_helpers.common import LABELS

SPLITS = ("train", "val", "test")


def _split(run, name, split):
    return pd.read_csv(run / "manifests" / name / f"{split}.csv")


def test_runner_executed_every_stage_in_order(smoke_run):
    timings = json.loads((smoke_run / "pipeline_timings.json").read_text())
    stages = [t["notebook"] for t in timings["stages"]]
    assert stages[:3] == ["00_make_demo_corpus", "01_iemocap_manifest", "02_folder_manifest"]
    assert {f"{i:02d}" for i in range(11)} <= {s[:2] for s in stages}
    executed = sorted((smoke_run / "notebooks").glob("*.ipynb"))
    assert len(executed) == len(stages)
    assert sorted(p.name for p in executed) == sorted(f"{t['notebook'][:2]}_{t['stage']}.ipynb" for t in timings["stages"])
    nb = nbformat.read(str(executed[0]), as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors


def test_corpus_has_both_real_layouts(smoke_run):
    corpus = smoke_run / "corpus"
    info = json.loads((corpus / "corpus_info.json").read_text())
    assert info["size"] == "smoke"
    evals = sorted((corpus / "iemocap_raw").glob("Session*/dialog/EmoEvaluation/*.txt"))
    assert {p.parts[-4] for p in evals} == {f"Session{i}" for i in range(1, 6)}
    line = re.compile(r"^\[(\d+\.\d+) - (\d+\.\d+)\]\t(Ses0\d[FM]_\w+_[FM]\d{3})\t(\w+)\t\[")
    utts = [m.group(3) for p in evals for ln in p.read_text().splitlines() if (m := line.match(ln))]
    assert utts, "no utterance lines in the EmoEvaluation files"
    wavs = {p.stem for p in (corpus / "iemocap_raw").glob("Session*/sentences/wav/*/*.wav")}
    assert set(utts) == wavs
    casia = corpus / "casia_raw"
    assert {p.name for p in casia.iterdir() if p.is_dir()} >= {"liuchanhg", "wangzhe", "zhaoquanyin", "ZhaoZuoxiang"}
    sidecar = pd.read_csv(casia / "transcripts.csv")
    assert list(sidecar.columns) == ["file_id", "speaker", "emotion", "text"]
    assert set(sidecar.file_id) == {p.stem for p in casia.glob("*/*/*.wav")}


def test_iemocap_manifest_columns_labels_and_counts(smoke_run):
    head = ["path", "label", "source_label", "duration_sec", "session", "dialog_id", "utterance_id"]
    summary = json.loads((smoke_run / "manifests" / "iemocap_4class" / "summary.json").read_text())
    frames = {s: _split(smoke_run, "iemocap_4class", s) for s in SPLITS}
    for split, df in frames.items():
        assert list(df.columns[:7]) == head
        assert set(df.label) <= set(LABELS)
        assert set(df.language) == {"en"} and set(df.dialog_type) <= {"impro", "script"}
        counts = df.label.value_counts().to_dict()
        assert {k: v for k, v in summary["counts"][split].items() if v} == counts
    assert set(frames["train"].session) == {"Session1", "Session2", "Session3"}
    assert set(frames["val"].session) == {"Session4"} and set(frames["test"].session) == {"Session5"}
    # exc merged into hap; fru/sur/xxx dropped
    hap_sources = set(pd.concat(frames.values()).query("label == 'hap'").source_label)
    assert hap_sources <= {"hap", "exc"} and "exc" in hap_sources
    assert not ({"fru", "sur", "xxx"} & set(pd.concat(frames.values()).source_label))
    speakers = [set(df.speaker) for df in frames.values()]
    assert not (speakers[0] & speakers[1] or speakers[0] & speakers[2] or speakers[1] & speakers[2])


def test_multilingual_manifest_is_the_union(smoke_run):
    for split in SPLITS:
        en = _split(smoke_run, "iemocap_4class", split)
        zh = _split(smoke_run, "casia_4class", split)
        both = _split(smoke_run, "multilingual_4class", split)
        assert list(both.columns[:4]) == ["path", "label", "source_label", "duration_sec"]
        assert len(both) == len(en) + len(zh)
        assert both.language.value_counts().to_dict() == {"en": len(en), "zh": len(zh)}
        assert set(both.path) == set(en.path) | set(zh.path)
        assert both.transcript.notna().all()


def test_audio_model_artifacts(smoke_run):
    out = smoke_run / "models" / "audio" / "multilingual"
    label_map = json.loads((out / "label_map.json").read_text())
    assert label_map["labels"] == LABELS
    config = json.loads((out / "best_model" / "config.json").read_text())
    assert [config["id2label"][str(i)] for i in range(4)] == LABELS
    report = json.loads((out / "train_report.json").read_text())
    assert report  # per-epoch history is checked in test_acoustic
    cms = sorted(out.glob("val_confusion_matrix_epoch*.csv"))
    assert cms
    cm = pd.read_csv(cms[0])
    val = _split(smoke_run, "multilingual_4class", "val")
    assert cm.iloc[:, 1:].to_numpy().sum() == len(val)
    test_cm = pd.read_csv(out / "test_confusion_matrix.csv")
    assert test_cm.iloc[:, 1:].to_numpy().sum() == len(_split(smoke_run, "multilingual_4class", "test"))


def test_whisper_encoder_model_beside_the_scratch_one(smoke_run):
    """The smoke profile's second notebook-03 stage: the bundled Whisper tiny.en encoder + head, evaluated by 04."""
    from ser_helpers.weights import bundled_available
    out = smoke_run / "models" / "audio" / "multilingual_whisper"
    if not bundled_available():  # the stage says what is missing and trains nothing
        assert not (out / "best_model").exists()
        return
    config = json.loads((out / "best_model" / "config.json").read_text())
    assert config["architectures"] == ["WhisperForAudioClassification"]
    assert [config["id2label"][str(i)] for i in range(4)] == LABELS
    report = json.loads((out / "train_report.json").read_text())
    assert report["config"]["base_model"] == "tiny.en" and report["test_metrics"]["n"] == len(
        _split(smoke_run, "multilingual_4class", "test"))
    ev = json.loads((smoke_run / "eval" / "multilingual_whisper" / "test_metrics.json").read_text())
    assert ev["architecture"] == "WhisperForAudioClassification"


def test_service_answers_written_by_notebook_05(smoke_run):
    answers = json.loads((smoke_run / "service" / "answers.json").read_text())
    assert len(answers) >= 2  # {clip name: answer}, one of them long enough for several segments
    assert max(len(body["segments"]) for body in answers.values()) >= 2
    for body in answers.values():
        assert body["overall"]["emotionCode"] in {"ANGRY", "HAPPY", "NEUTRAL", "SAD"}
        assert body["meta"]["sampleRate"] == 16000
        scores = body["overall"]["scores"]
        assert sum(scores.values()) == pytest.approx(1.0, abs=1e-3)
        assert body["segments"][-1]["endMs"] == pytest.approx(body["meta"]["durationMs"], abs=2)
