"""Fusion ablation (stage 08): every mode x seed, mean ± std summary, chart, CLI."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ser_helpers import ablation
from ser_helpers.cli import build_parser, main
from ser_helpers.common import SERError
from fusion_data import make_synthetic_features


@pytest.fixture(scope="module")
def feats(tmp_path_factory):
    return make_synthetic_features(tmp_path_factory.mktemp("abl_features"), n_per_speaker=16, seed=11)


@pytest.mark.slow  # three seeds of fusion training (4.6 s); test_cli_flags_and_single_seed_layout runs one quickly
def test_ablation_over_seeds(feats, tmp_path):
    root = tmp_path / "ablation"
    payload = ablation.run_fusion_ablation(feats["train"], feats["val"], feats["test"], root, seeds="1,2",
                                           epochs=12, device="cpu", n_bootstrap=50)
    assert payload["seeds"] == [1, 2]
    for mode in ("audio_only", "text_only", "fusion"):
        for s in (1, 2):
            assert (root / f"{mode}_seed{s}" / "fusion_model.pt").exists()
    csv = pd.read_csv(root / "ablation_summary.csv")
    assert list(csv["mode"]) == ["audio_only", "text_only", "fusion"]
    for col in ("val_macro_f1_mean", "test_macro_f1_std", "test_accuracy_mean", "test_ua_mean", "test_ece_mean",
                "test_macro_f1_en_mean", "test_macro_f1_zh_mean", "test_macro_f1_ci_low_mean"):
        assert col in csv.columns, col
    runs = pd.read_csv(root / "ablation_runs.csv")
    fus = runs[runs["mode"] == "fusion"]["test_macro_f1"].to_numpy()
    row = csv[csv["mode"] == "fusion"].iloc[0]
    assert row["test_macro_f1_mean"] == pytest.approx(fus.mean())
    assert row["test_macro_f1_std"] == pytest.approx(fus.std())
    saved = json.loads((root / "ablation_summary.json").read_text())
    assert saved["fusion_gain_over_best_single_test_macro_f1"] == pytest.approx(
        row["test_macro_f1_mean"] - csv[csv["mode"] != "fusion"]["test_macro_f1_mean"].max())
    assert (root / "ablation.png").read_bytes()[:4] == b"\x89PNG"
    table = ablation.summary_table(payload)
    assert "±" in table.loc["fusion", "test_macro_f1"]
    # the ECE a perfectly calibrated model would show on this test split, per run
    assert (runs["test_ece_floor"] > 0).all() and (runs["test_ece_floor_p95"] > runs["test_ece_floor"]).all()
    assert table.loc["fusion", "test_ece if perfectly calibrated"].startswith(f"{row['test_ece_floor_mean']:.3f}")


def test_seed_parsing():
    assert ablation.parse_seeds("42, 43,44") == [42, 43, 44]
    assert ablation.parse_seeds("", default_seed=7) == [7]
    with pytest.raises(SERError, match="seeds"):
        ablation.parse_seeds("4x")
    with pytest.raises(SERError, match="distinct"):
        ablation.parse_seeds("1,1")


@pytest.mark.filterwarnings("ignore:mode .* has a single modality")
def test_cli_flags_and_single_seed_layout(feats, tmp_path, capsys):
    args = build_parser().parse_args(["run-fusion-ablation", "--train-features", "a", "--val-features", "b",
                                      "--test-features", "c", "--output-root", "d"])
    for k, v in dict(epochs=80, batch_size=128, learning_rate=2e-3, weight_decay=1e-4, hidden_size=64,
                     gate_hidden_size=32, dropout=0.2, patience=12, seed=42, device="auto", fusion_arch="mlp",
                     calibration_mode="global_temperature", calibration_max_iter=200,
                     min_language_samples=100).items():
        assert getattr(args, k) == v, k
    root = tmp_path / "abl"
    rc = main(["run-fusion-ablation", "--train-features", str(feats["train"]), "--val-features", str(feats["val"]),
               "--test-features", str(feats["test"]), "--output-root", str(root), "--epochs", "8", "--seed", "5",
               "--device", "cpu", "--fusion-arch", "gated", "--n-bootstrap", "20"])
    assert rc == 0
    assert {p.name for p in root.iterdir() if p.is_dir()} == {"audio_only", "text_only", "fusion"}
    out = json.loads(capsys.readouterr().out)
    assert out["seeds"] == [5] and set(out["test_macro_f1"]) == {"audio_only", "text_only", "fusion"}
    rep = json.loads((root / "fusion" / "train_report.json").read_text())
    assert rep["fusion_arch"] == "gated" and rep["settings"]["seed"] == 5
    assert np.isfinite(rep["test_ece"])


def test_smoke_run_ablation(smoke_run):
    root = smoke_run / "fusion" / "ablation"
    payload = json.loads((root / "ablation_summary.json").read_text())
    csv = pd.read_csv(root / "ablation_summary.csv")
    assert set(csv["mode"]) == {"audio_only", "text_only", "fusion"}
    assert (csv["n_seeds"] == len(payload["seeds"])).all()
    assert len(payload["runs"]) == 3 * len(payload["seeds"])
    for run in payload["runs"]:
        rep = json.loads((Path(run["run_dir"]) / "train_report.json").read_text())
        assert rep["test_macro_f1"] == pytest.approx(run["test_macro_f1"]) and rep["mode"] == run["mode"]
    assert (root / "ablation.png").read_bytes()[:4] == b"\x89PNG"
