"""Late fusion + calibration (stage 07): training, calibration, weights-only loading, bad input, CLI."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from ser_helpers import fusion, metrics
from ser_helpers.cli import build_parser, main
from ser_helpers.common import LABELS, SERError
from fusion_data import make_synthetic_features

FAST = dict(epochs=25, patience=8, n_bootstrap=100, device="cpu", make_plots=False, compare_fit_strategies=False)


@pytest.fixture(scope="module")
def feats(tmp_path_factory):
    return make_synthetic_features(tmp_path_factory.mktemp("features"), n_per_speaker=24, seed=3)


@pytest.fixture(scope="module")
def fusion_run(feats, tmp_path_factory):
    out = tmp_path_factory.mktemp("fusion") / "fusion_mlp"
    return fusion.train_late_fusion(feats["train"], feats["val"], feats["test"], out,
                                    **dict(FAST, make_plots=True, compare_fit_strategies=True))


def test_training_writes_every_artifact(fusion_run):
    out = fusion_run.output_dir
    for name in ("fusion_model.pt", "feature_scaler.json", "train_report.json", "pipeline.json",
                 "val_confusion_calibrated.csv", "test_confusion_calibrated.csv", "val_reliability.png",
                 "test_reliability.png", "test_confusion_calibrated.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "test_reliability.png").read_bytes()[:4] == b"\x89PNG"
    report = json.loads((out / "train_report.json").read_text())
    for split in ("val", "test"):
        for kind in ("uncalibrated", "calibrated"):
            block = report[kind][split]
            for key in ("accuracy", "ua", "macro_f1", "ece", "nll", "brier"):
                assert 0.0 <= block[key] <= (10 if key == "nll" else 1.0), (kind, split, key)
            assert set(block["per_language"]) == {"en", "zh"}
    lo, hi = report["test_macro_f1_ci"]
    assert lo <= report["test_macro_f1"] <= hi
    lo, hi = report["test_ece_ci"]
    assert lo <= report["test_ece"] + 1e-9 and report["test_ece"] - 1e-9 <= hi
    # both fitting strategies were measured on test
    assert set(report["fit_strategy_comparison"]) == {"val_cv", "train"}
    assert report["fit"]["strategy"] == "val_cv" and report["fit"]["group_by"] == "speaker"
    # every val fold held out whole speakers; out-of-fold logits come from fold models trained for the
    # same epoch count as the deployed model (the recipe the temperature is fitted for)
    held = [g for m in report["fit"]["members"] for g in m["held_out_groups"]]
    assert len(held) == len(set(held)) == 3
    fit = report["fit"]
    assert fit["oof_epochs"] == fit["final"]["epochs"] == fit["final"]["epochs_run"]
    assert fit["oof_epochs"] == round(np.mean([m["best_epoch"] for m in fit["members"]]))
    assert all(0.0 <= m["oof_macro_f1"] <= 1.0 for m in fit["members"])
    floor = report["ece_sampling_floor"]["test"]
    assert floor["n"] == report["calibrated"]["test"]["n"] and 0 < floor["p05"] < floor["mean"] < floor["p95"] < 0.5
    conf = pd.read_csv(out / "test_confusion_calibrated.csv")
    assert list(conf.columns) == ["true_label", *LABELS]
    assert conf[LABELS].to_numpy().sum() == report["calibrated"]["test"]["n"]
    scaler = json.loads((out / "feature_scaler.json").read_text())
    assert scaler["feature_names"] == report["feature_names"] and len(scaler["mean"]) == len(scaler["scale"])


def test_fusion_beats_single_modalities_on_synthetic(feats, tmp_path, fusion_run):
    scores = {}
    for mode in ("audio_only", "text_only"):
        res = fusion.train_late_fusion(feats["train"], feats["val"], feats["test"], tmp_path / mode, mode=mode, **FAST)
        scores[mode] = res.metrics["test_macro_f1"]
        assert res.report["feature_names"] == fusion.DEFAULT_FEATURE_COLUMNS[mode]
    assert fusion_run.metrics["test_macro_f1"] > max(scores.values()) + 0.05, scores


def test_same_seed_same_numbers(feats, tmp_path):
    a = fusion.train_late_fusion(feats["train"], feats["val"], feats["test"], tmp_path / "a", seed=7, **FAST)
    b = fusion.train_late_fusion(feats["train"], feats["val"], feats["test"], tmp_path / "b", seed=7, **FAST)
    assert a.metrics == b.metrics
    sa = torch.load(tmp_path / "a" / "fusion_model.pt", weights_only=True)["state_dict"]
    sb = torch.load(tmp_path / "b" / "fusion_model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_gated_reports_gate_per_language_and_falls_back_for_one_modality(feats, tmp_path):
    res = fusion.train_late_fusion(feats["train"], feats["val"], feats["test"], tmp_path / "g", fusion_arch="gated",
                                   **FAST)
    gate = res.report["gate"]
    assert res.report["fusion_arch"] == "gated"
    for split in ("val", "test"):
        assert set(gate[split]) == {"en", "zh"} and all(0 < v < 1 for v in gate[split].values())
    with pytest.warns(UserWarning, match="falls back to mlp"):
        one = fusion.train_late_fusion(feats["train"], feats["val"], feats["test"], tmp_path / "a", mode="audio_only",
                                       fusion_arch="gated", **FAST)
    assert one.report["fusion_arch"] == "mlp" and one.report["gate"] is None


def test_val_cv_falls_back_with_one_val_speaker(feats, tmp_path):
    import shutil
    for f in ("train_features.csv", "test_features.csv", "summary.json"):
        shutil.copy(feats["summary"].parent / f, tmp_path / f)
    val = pd.read_csv(feats["val"]).assign(speaker="only_one")
    val.to_csv(tmp_path / "val_features.csv", index=False)
    with pytest.warns(UserWarning, match="fewer than 2 speakers"):
        res = fusion.train_late_fusion(tmp_path / "train_features.csv", tmp_path / "val_features.csv",
                                       tmp_path / "test_features.csv", tmp_path / "o", **FAST)
    assert res.report["fit_strategy"] == "train" and res.report["fit_strategy_requested"] == "auto"


def test_auto_strategy_follows_in_sample_confidence_gap():
    gap = {"audio_confidence": {"train_mean": 0.9, "val_mean": 0.6}}
    assert fusion.resolve_fit_strategy("auto", gap)[0] == "val_cv"
    no_gap = {"audio_confidence": {"train_mean": 0.61, "val_mean": 0.6}}
    assert fusion.resolve_fit_strategy("auto", no_gap)[0] == "train"
    assert fusion.resolve_fit_strategy("train", gap) == ("train", "requested")
    assert fusion.resolve_fit_strategy("auto", {})[0] == "val_cv"
    # a class-balanced audio model over-fits train without growing more confident: the macro-F1 gap counts too
    overfit = {"audio_confidence": {"train_mean": 0.74, "val_mean": 0.75},
               "raw_metrics": {"train": {"audio": {"macro_f1": 0.86}}, "val": {"audio": {"macro_f1": 0.57}}}}
    strategy, reason = fusion.resolve_fit_strategy("auto", overfit)
    assert strategy == "val_cv" and "macro-F1 train 0.86" in reason
    honest = {"audio_confidence": {"train_mean": 0.74, "val_mean": 0.75},
              "raw_metrics": {"train": {"audio": {"macro_f1": 0.58}}, "val": {"audio": {"macro_f1": 0.57}}}}
    assert fusion.resolve_fit_strategy("auto", honest)[0] == "train"


def test_naive_strategy_trains_on_train_rows(feats, tmp_path):
    res = fusion.train_late_fusion(feats["train"], feats["val"], feats["test"], tmp_path / "n", fit_strategy="train",
                                   **FAST)
    assert res.report["fit"]["strategy"] == "train" and len(res.report["fit"]["members"]) == 1
    assert res.report["n_parameters"] == res.report["n_parameters_per_member"]


# ----------------------------------------------------------------------------- calibration
def _overconfident(n=600, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    z = rng.normal(0, 1, (n, 4))
    z[np.arange(n), y] += 1.0          # moderately informative
    return z * 6.0, y                   # scaled up: far too confident


def test_temperature_above_one_for_overconfident_model():
    z, y = _overconfident()
    cal = fusion.fit_calibration(z, y, ["en"] * len(y))
    assert cal["temperature"] > 1.5
    before = metrics.ece_score(fusion.softmax(z), y)
    after = metrics.ece_score(fusion.apply_calibration(z, cal, ["en"] * len(y)), y)
    assert after < before / 2
    # temperature never changes the argmax
    assert (fusion.apply_calibration(z, cal).argmax(1) == z.argmax(1)).all()


def test_per_language_temperature_needs_enough_rows():
    z, y = _overconfident(400)
    langs = np.array(["en"] * 350 + ["zh"] * 50)
    z[langs == "en"] /= 3.0
    cal = fusion.fit_calibration(z, y, langs, "per_language_temperature", min_language_samples=100)
    assert set(cal["per_language"]) == {"en"}
    assert fusion.temperature_for(cal, "zh") == cal["temperature"]
    assert fusion.temperature_for(cal, "en") == cal["per_language"]["en"] != cal["temperature"]
    cal_all = fusion.fit_calibration(z, y, langs, "per_language_temperature", min_language_samples=10)
    assert cal_all["per_language"]["zh"] > cal_all["per_language"]["en"]


def test_vector_scaling_lowers_nll():
    z, y = _overconfident()
    cal = fusion.fit_calibration(z, y, ["en"] * len(y), "vector_scaling")
    assert len(cal["w"]) == len(cal["b"]) == 4
    assert metrics.nll_score(fusion.apply_calibration(z, cal), y) < metrics.nll_score(fusion.softmax(z), y)
    assert fusion.temperature_for(cal, "en") is None


def test_bootstrap_matches_reference_definitions():
    rng = np.random.default_rng(1)
    probs = fusion.softmax(rng.normal(0, 2, (80, 4)))
    y = rng.integers(0, 4, 80)
    fast = fusion.bootstrap_intervals(y, probs, n_bootstrap=50, seed=5)
    idx = np.random.default_rng(5).integers(0, 80, (50, 80))
    from sklearn.metrics import f1_score
    f1 = [f1_score(y[i], probs[i].argmax(1), labels=[0, 1, 2, 3], average="macro", zero_division=0) for i in idx]
    ece = [metrics.ece_score(probs[i], y[i]) for i in idx]
    assert np.allclose(fast["macro_f1"], np.percentile(f1, [2.5, 97.5]))
    lo, hi = np.percentile(ece, [2.5, 97.5])
    bias = np.mean(ece) - metrics.ece_score(probs, y)  # the ECE interval is shifted by the bootstrap bias
    assert np.allclose(fast["ece"], [max(0.0, lo - bias), max(0.0, hi - bias)])


# ----------------------------------------------------------------------------- loading
def test_weights_only_loading_and_feature_check(fusion_run):
    out = fusion_run.output_dir
    payload = torch.load(out / "fusion_model.pt", weights_only=True)
    assert {"state_dict", "arch", "feature_names", "labels", "calibration", "mode"} <= set(payload)
    assert payload["labels"] == LABELS and payload["calibration"]["temperature"] > 0
    model = fusion.load_fusion_model(out, expected_feature_names=payload["feature_names"])
    rows = pd.read_csv(fusion_run.report["inputs"]["test"])
    probs = model.predict_proba(rows, rows["language"])
    assert np.allclose(probs.sum(1), 1)
    acc = float((probs.argmax(1) == rows["label_id"].to_numpy()).mean())
    assert acc == pytest.approx(fusion_run.report["test_accuracy"])
    wrong = [c for c in payload["feature_names"] if c != "text4_ready"] + ["text_extra"]
    with pytest.raises(SERError, match=r"missing \['text4_ready'\].*unexpected \['text_extra'\]"):
        fusion.load_fusion_model(out, expected_feature_names=wrong)


def test_loading_rejects_mismatched_scaler(fusion_run, tmp_path):
    import shutil
    d = tmp_path / "copy"
    shutil.copytree(fusion_run.output_dir, d)
    sc = json.loads((d / "feature_scaler.json").read_text())
    sc["feature_names"][0] = "audio_prob_xxx"
    (d / "feature_scaler.json").write_text(json.dumps(sc))
    with pytest.raises(SERError, match="feature_scaler.json.*audio_prob_xxx"):
        fusion.load_fusion_model(d)


def test_pipeline_json_is_self_contained(fusion_run):
    out = fusion_run.output_dir
    pipe = json.loads((out / "pipeline.json").read_text())
    assert pipe["components"]["text4_head"] == "text4_head" and (out / "text4_head" / "head.json").exists()
    assert pipe["feature_names"] == fusion_run.report["feature_names"] and pipe["labels"] == LABELS
    assert pipe["calibration"] == fusion_run.report["calibration"] and pipe["transcripts_oracle"] is True


# ----------------------------------------------------------------------------- bad input
def _bad_copy(feats, tmp_path, split, edit):
    import shutil
    for f in ("train_features.csv", "val_features.csv", "test_features.csv", "summary.json"):
        shutil.copy(feats["summary"].parent / f, tmp_path / f)
    df = pd.read_csv(tmp_path / f"{split}_features.csv")
    df = edit(df)
    df.to_csv(tmp_path / f"{split}_features.csv", index=False)
    return [tmp_path / f"{s}_features.csv" for s in ("train", "val", "test")]


@pytest.mark.parametrize("split,edit,pattern", [
    ("val", lambda df: df.drop(columns=["text4_entropy"]), r"val_features.csv.*missing.*text4_entropy"),
    ("train", lambda df: df.assign(audio_confidence=df["audio_confidence"].where(df.index != 3)),
     r"train_features.csv: column 'audio_confidence' has 1 NaN.*line.*5"),
    ("test", lambda df: df.assign(label=df["label"].replace("sad", "fru")),
     r"test_features.csv: column 'label' has unknown label.*fru"),
    ("train", lambda df: df[df["label"] != "neu"],
     r"val_features.csv: column 'label' has label\(s\) \['neu'\] absent from the train split"),
    ("val", lambda df: df.assign(label_id=0), r"val_features.csv: column 'label_id' disagrees"),
])
def test_bad_input_names_file_and_column(feats, tmp_path, split, edit, pattern):
    paths = _bad_copy(feats, tmp_path, split, edit)
    with pytest.raises(SERError, match=pattern):
        fusion.train_late_fusion(*paths, tmp_path / "out", **FAST)
    assert not (tmp_path / "out").exists()


def test_bad_settings_are_rejected(feats, tmp_path):
    with pytest.raises(SERError, match="calibration_mode"):
        fusion.train_late_fusion(feats["train"], feats["val"], feats["test"], tmp_path / "o",
                                 calibration_mode="platt")
    with pytest.raises(SERError, match="unknown setting"):
        fusion.train_late_fusion(feats["train"], feats["val"], feats["test"], tmp_path / "o", hiden_size=3)


# ----------------------------------------------------------------------------- CLI
def test_cli_defaults_match_contract():
    args = build_parser().parse_args(["train-late-fusion", "--train-features", "a", "--val-features", "b",
                                      "--test-features", "c", "--output-dir", "d"])
    expected = dict(mode="fusion", fusion_arch="mlp", hidden_size=64, gate_hidden_size=32, dropout=0.2, epochs=80,
                    batch_size=128, learning_rate=2e-3, weight_decay=1e-4, patience=12, seed=42, device="auto",
                    calibration_mode="global_temperature", calibration_max_iter=200, min_language_samples=100)
    assert {k: getattr(args, k) for k in expected} == expected


def test_cli_trains_and_reports_errors(feats, tmp_path, capsys):
    out = tmp_path / "cli"
    rc = main(["train-late-fusion", "--train-features", str(feats["train"]), "--val-features", str(feats["val"]),
               "--test-features", str(feats["test"]), "--output-dir", str(out), "--mode", "text_only",
               "--epochs", "10", "--device", "cpu", "--calibration-mode", "per_language_temperature",
               "--min-language-samples", "20", "--no-compare-fit-strategies", "--n-bootstrap", "50"])
    assert rc == 0
    report = json.loads((out / "train_report.json").read_text())
    assert report["mode"] == "text_only" and report["calibration"]["mode"] == "per_language_temperature"
    assert set(report["calibration"]["per_language"]) == {"en", "zh"}
    rc = main(["train-late-fusion", "--train-features", str(tmp_path / "nope.csv"), "--val-features", "x",
               "--test-features", "y", "--output-dir", str(tmp_path / "z")])
    assert rc == 1 and "nope.csv" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the smoke run (stage 07 outputs)
def test_smoke_run_fusion_models(smoke_run):
    models = smoke_run / "fusion" / "models"
    runs = [d for d in models.iterdir() if d.is_dir() and d.name != "fusion_best" and (d / "fusion_model.pt").exists()]
    assert runs, f"no fusion run under {models}"
    summary = json.loads((smoke_run / "features" / "summary.json").read_text())
    for d in runs:
        report = json.loads((d / "train_report.json").read_text())
        assert report["feature_names"] == summary["feature_columns"][report["mode"]]
        assert report["calibration"]["fitted_on"] == "val" and report["calibration"]["temperature"] > 0
        model = fusion.load_fusion_model(d, expected_feature_names=report["feature_names"])
        test = pd.read_csv(smoke_run / "features" / "test_features.csv")
        probs = model.predict_proba(test, test["language"])
        acc = float((probs.argmax(1) == test["label"].map({l: i for i, l in enumerate(LABELS)})).mean())
        assert acc == pytest.approx(report["test_accuracy"]), d
        for name in ("feature_scaler.json", "pipeline.json", "val_confusion_calibrated.csv",
                     "test_confusion_calibrated.csv", "test_reliability.png"):
            assert (d / name).exists(), (d, name)


def test_flags_and_notebook_parameters_come_from_fusion_config():
    """Each train-late-fusion / run-fusion-ablation default is FusionConfig's; a notebook's globals() build it."""
    import dataclasses
    for cmd, out in (("train-late-fusion", "--output-dir"), ("run-fusion-ablation", "--output-root")):
        args = build_parser().parse_args([cmd, "--train-features", "a", "--val-features", "b", "--test-features", "c",
                                          out, "d"])
        for f in dataclasses.fields(fusion.FusionConfig):
            if f.name in fusion.TRAINING_KEYS and f.name != "compare_fit_strategies":  # ablation turns it off
                assert getattr(args, f.name) == f.default, (cmd, f.name)
    cfg = fusion.FusionConfig.from_params({"epochs": 3, "mode": "text_only", "run_dir": "outputs/cpu"})
    assert cfg == dataclasses.replace(fusion.FusionConfig(), epochs=3, mode="text_only")
