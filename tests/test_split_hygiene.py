"""Data hygiene of the training and evaluation commands (issue 12): splits that share files or speakers are
refused (`--allow-split-overlap` forces it and the report says so), duplicate rows are warned about, and a
non-UTF-8 manifest, features CSV, label map or transcripts.csv gets one clear error naming the file."""
from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest

from ser_helpers import baseline, fusion
from ser_helpers.cli import build_parser
from ser_helpers.common import SERError, check_splits, read_json, read_manifest
from ser_helpers.manifest import read_transcripts_csv
from fusion_data import make_synthetic_features

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ["train-wav2vec2", "adapt-wav2vec2-head", "train-baseline", "evaluate-wav2vec2", "build-fusion-features",
            "train-late-fusion", "run-fusion-ablation", "train-text-emotion"]


def ser(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ser_helpers.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=600, cwd=ROOT)


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> dict:
    return baseline.toy_dataset(tmp_path_factory.mktemp("toy"), speakers_per_split=(2, 1, 1), clips_per_label=2,
                                durations=(0.6, 1.2))


def test_check_splits_refuses_shared_files_and_speakers():
    a = pd.DataFrame({"path": ["/x/1.wav", "/x/2.wav"], "speaker": ["s1", "s2"], "source_dataset": ["d", "d"]})
    b = pd.DataFrame({"path": ["/x/1.wav"], "speaker": ["s1"], "source_dataset": ["d"]})
    c = pd.DataFrame({"path": ["/x/9.wav"], "speaker": ["s2"], "source_dataset": ["d"]})
    with pytest.raises(SERError, match=r"train.csv \(train\) and test.csv \(test\) share 1 file") as info:
        check_splits({"train": a, "test": b}, sources={"train": "train.csv", "test": "test.csv"})
    assert "--allow-split-overlap" in str(info.value)
    with pytest.raises(SERError, match=r"train and val share speaker\(s\) \['s2'\]"):
        check_splits({"train": a, "val": c})
    # the same speaker id in two datasets is two people
    other = c.assign(source_dataset="other")
    assert check_splits({"train": a, "val": other})["ok"] is True
    with pytest.warns(UserWarning, match="--allow-split-overlap: going on"):
        rec = check_splits({"train": a, "test": b}, allow_overlap=True)
    assert rec["allow_split_overlap"] is True and rec["shared_files"] == {"train/test": 1} and rec["ok"] is False
    # only: the evaluated set against the training splits, not train against val
    rec = check_splits({"evaluated": c.assign(speaker="s9"), "train": a, "val": b}, allow_overlap=True,
                       only="evaluated")
    assert rec["shared_files"] == {} and rec["shared_speakers"] == {}


def test_duplicate_rows_warned():
    a = pd.DataFrame({"path": ["/x/1.wav"] * 5, "speaker": ["s1"] * 5})
    with pytest.warns(UserWarning, match=r"4 duplicate row\(s\) in the train manifest"):
        rec = check_splits({"train": a})
    assert rec["duplicate_rows"] == {"train": 4}


def test_every_training_and_evaluation_command_has_the_flag():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name in COMMANDS:
        flags = {o for a in sub.choices[name]._actions for o in a.option_strings}
        assert "--allow-split-overlap" in flags, name


@pytest.mark.slow  # trains the baseline twice (9 s); check_splits itself is tested quickly above
def test_train_baseline_same_csv_for_every_split_is_refused_then_forced(toy, tmp_path):
    same = toy["train"]
    r = ser("train-baseline", "--train-manifest", same, "--val-manifest", same, "--test-manifest", same,
            "--output-dir", tmp_path / "refused", "--bootstrap", "0")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "splits are not independent" in r.stderr and str(same) in r.stderr
    assert not (tmp_path / "refused").exists()
    r = ser("train-baseline", "--train-manifest", same, "--val-manifest", same, "--test-manifest", same,
            "--output-dir", tmp_path / "forced", "--bootstrap", "0", "--allow-split-overlap")
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads((tmp_path / "forced" / "train_report.json").read_text())
    assert rep["split_check"]["allow_split_overlap"] is True
    n = len(pd.read_csv(same))
    assert rep["split_check"]["shared_files"] == {"train/val": n, "train/test": n, "val/test": n}


@pytest.mark.slow  # trains the baseline (7 s)
def test_train_baseline_warns_about_duplicate_rows(toy, tmp_path):
    df = pd.read_csv(toy["train"])
    dup = pd.concat([df, df.iloc[[0] * 4]], ignore_index=True)
    dup.to_csv(tmp_path / "train_dup.csv", index=False)
    r = ser("train-baseline", "--train-manifest", tmp_path / "train_dup.csv", "--val-manifest", toy["val"],
            "--output-dir", tmp_path / "out", "--bootstrap", "0")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "4 duplicate row(s) in the train manifest" in r.stderr
    rep = json.loads((tmp_path / "out" / "train_report.json").read_text())
    assert rep["split_check"]["duplicate_rows"] == {"train": 4} and rep["split_check"]["ok"] is True


def test_non_utf8_manifest_is_one_clear_error(toy, tmp_path):
    bad = tmp_path / "latin1.csv"
    bad.write_bytes(Path(toy["train"]).read_text().replace("neu", "neu", 1).encode("utf-8") + "é,x\n".encode("latin-1"))
    with pytest.raises(SERError, match=r"latin1.csv: manifest CSV is not UTF-8 text \(byte 0xe9"):
        read_manifest(bad)
    r = ser("train-baseline", "--train-manifest", bad, "--val-manifest", toy["val"], "--output-dir", tmp_path / "o")
    assert r.returncode == 1 and "Traceback" not in r.stderr and "latin1.csv: manifest CSV is not UTF-8" in r.stderr


def test_non_utf8_transcripts_and_label_map(tmp_path):
    t = tmp_path / "transcripts.csv"
    t.write_bytes("file_id,speaker,emotion,text\na,s,angry,".encode() + "我很生气".encode("gbk") + b"\n")
    with pytest.raises(SERError, match=r"transcripts.csv: transcript sidecar is not UTF-8 text"):
        read_transcripts_csv(t)
    lm = tmp_path / "label_map.json"
    lm.write_bytes('{"labels": ["\xe9"]}'.encode("latin-1"))
    with pytest.raises(SERError, match=r"label_map.json: JSON file is not UTF-8 text"):
        read_json(lm)


def test_train_late_fusion_same_features_refused_and_forced(tmp_path):
    feats = make_synthetic_features(tmp_path / "features", n_per_speaker=8, seed=1)
    same = feats["train"]
    with pytest.raises(SERError, match="splits are not independent"):
        fusion.train_late_fusion(same, same, same, tmp_path / "refused", feats["summary"], epochs=2, device="cpu",
                                 make_plots=False, compare_fit_strategies=False, n_bootstrap=0,
                                 min_language_samples=10, fit_strategy="train")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fusion.train_late_fusion(same, same, same, tmp_path / "forced", feats["summary"], epochs=2,
                                       device="cpu", make_plots=False, compare_fit_strategies=False, n_bootstrap=0,
                                       min_language_samples=10, fit_strategy="train", allow_split_overlap=True)
    assert res.report["split_check"]["allow_split_overlap"] is True and res.report["split_check"]["ok"] is False
    ok = fusion.train_late_fusion(feats["train"], feats["val"], feats["test"], tmp_path / "ok", feats["summary"],
                                  epochs=2, device="cpu", make_plots=False, compare_fit_strategies=False,
                                  n_bootstrap=0, min_language_samples=10, fit_strategy="train")
    assert ok.report["split_check"]["ok"] is True
