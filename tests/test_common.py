"""Atomic writes and manifest reading."""
from __future__ import annotations

import pytest

from ser_helpers.common import SERError, atomic_dir, label_map, read_manifest, write_text_atomic


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.json"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError):
        from ser_helpers.common import atomic_path
        with atomic_path(target) as tmp:
            tmp.write_text("half-written")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_atomic_dir_replaces_whole_dir_only_on_success(tmp_path):
    target = tmp_path / "model"
    with atomic_dir(target) as d:
        (d / "a.txt").write_text("1")
    with pytest.raises(ValueError):
        with atomic_dir(target) as d:
            (d / "b.txt").write_text("2")
            raise ValueError("boom")
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_label_map_sorted_codes():
    lm = label_map(["sad", "ang", "neu", "hap"])
    assert lm["labels"] == ["ang", "hap", "neu", "sad"]
    assert lm["id2label"]["0"] == "ang" and lm["label2id"]["sad"] == 3


def test_read_manifest_resolves_relative_paths_and_checks(tmp_path):
    (tmp_path / "m").mkdir()
    csv = tmp_path / "m" / "train.csv"
    csv.write_text("path,label,source_label,duration_sec\nclips/a.wav,ang,ang,1.0\n")
    df = read_manifest(csv)
    assert df.loc[0, "path"] == str((tmp_path / "m" / "clips" / "a.wav").resolve())
    csv.write_text("path,label,source_label,duration_sec\na.wav,angry,ang,1.0\n")
    with pytest.raises(SERError, match="unknown label.*'label'"):
        read_manifest(csv, labels=["ang", "hap", "neu", "sad"])
    csv.write_text("file,emotion\na.wav,ang\n")
    with pytest.raises(SERError, match="lacks column"):
        read_manifest(csv)
    with pytest.raises(SERError, match="not found"):
        read_manifest(tmp_path / "missing.csv")


def test_dataclass_flags_and_params_come_from_one_dataclass():
    import argparse
    from dataclasses import dataclass, field

    from ser_helpers.common import add_dataclass_flags, dataclass_from, dataclass_params

    @dataclass
    class Cfg:
        arch: str = field(default="mlp", metadata={"choices": ("mlp", "gated"), "help": "the network"})
        epochs: int = 80
        rate: float = 2e-3
        compare: bool = True
        quiet: bool = False
        progress: bool = field(default=True, metadata={"cli": False})

    p = argparse.ArgumentParser()
    add_dataclass_flags(p, Cfg)
    assert vars(p.parse_args([])) == {"arch": "mlp", "epochs": 80, "rate": 2e-3, "compare": True, "quiet": False}
    args = p.parse_args(["--arch", "gated", "--epochs", "3", "--rate", "0.5", "--no-compare", "--quiet"])
    assert dataclass_from(Cfg, vars(args)) == Cfg("gated", 3, 0.5, False, True)
    with pytest.raises(SystemExit):
        p.parse_args(["--arch", "cnn"])
    assert dataclass_params(Cfg, {"epochs": 5, "run_dir": "x"}) == {"epochs": 5}
    assert dataclass_from(Cfg, {"epochs": 5, "run_dir": "x"}, epochs=7).epochs == 7
