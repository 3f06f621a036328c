"""Classical baseline (MFCC + prosody -> logistic regression) on toy clips whose prosody carries the label."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ser_helpers import baseline as B
from ser_helpers.audio import AudioError
from ser_helpers.cli import build_parser
from ser_helpers.cli import main as cli_main
from ser_helpers.common import LABELS, SERError


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy_baseline")
    manifests = B.toy_dataset(root / "data", speakers_per_split=(3, 1, 1), clips_per_label=2, seed=1)
    res = B.train_baseline(manifests["train"], manifests["val"], manifests["test"], root / "model", seed=42,
                           n_bootstrap=100)
    return manifests, res


def test_feature_vector_shape_and_prosody():
    sr = 16000
    t = np.arange(int(1.5 * sr)) / sr
    tone = (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    vec = B.extract_features(tone, sr)
    names = B.feature_names()
    assert vec.shape == (len(names),) and np.all(np.isfinite(vec))
    f = dict(zip(names, vec))
    assert f["f0_mean_st"] == pytest.approx(12.0, abs=0.3)   # 200 Hz = one octave above 100 Hz
    assert f["f0_std_st"] < 0.3
    assert f["voiced_ratio"] > 0.9
    assert f["duration_sec"] == pytest.approx(1.5)
    short = dict(zip(names, B.extract_features(tone[:800], sr)))  # 50 ms: padded internally, duration kept
    assert short["duration_sec"] == pytest.approx(0.05) and np.isfinite(list(short.values())).all()
    louder = B.extract_features(tone * 3, sr)
    assert dict(zip(names, louder))["rms_db_mean"] == pytest.approx(f["rms_db_mean"] + 20 * np.log10(3), abs=0.1)


def test_train_writes_artifacts_and_beats_chance(toy):
    manifests, res = toy
    out = res.output_dir
    for name in ("baseline_model.json", "train_report.json", "feature_cache.npz", "test_predictions.csv",
                 "val_predictions.csv", "test_confusion_matrix.csv", "test_confusion_matrix.png",
                 "test_confusion_matrix_normalized.png", "val_confusion_matrix.csv"):
        assert (out / name).exists(), name
    report = json.loads((out / "train_report.json").read_text())
    # C is the grid value with the best val macro-F1 (ties -> smaller C)
    best = max(report["c_search"], key=lambda r: (r["val_macro_f1"], -r["C"]))
    assert report["C"] == best["C"]
    test = report["test"]
    assert test["n"] == len(pd.read_csv(manifests["test"]))
    assert test["macro_f1"] > test["majority_baseline"]["macro_f1"] + 0.3
    lo, hi = test["ci95"]["macro_f1"]
    assert lo <= test["macro_f1"] <= hi
    assert report["train_label_counts"] == {lab: 6 for lab in LABELS}
    cm = pd.read_csv(out / "test_confusion_matrix.csv")
    assert list(cm.columns) == ["true_label", *LABELS]
    assert cm[LABELS].to_numpy().sum() == test["n"]


def test_saved_model_matches_sklearn_and_predicts_arrays(toy):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    manifests, res = toy
    model = B.BaselineModel.load(res.output_dir)
    test = pd.read_csv(manifests["test"])
    X = B.manifest_features(test)
    train = pd.read_csv(manifests["train"])
    Xtr = B.manifest_features(train)
    ytr = np.array([LABELS.index(v) for v in train["label"]])
    scaler = StandardScaler().fit(Xtr)
    ref = LogisticRegression(C=model.C, max_iter=5000, class_weight="balanced", random_state=42)
    ref.fit(scaler.transform(Xtr), ytr)
    np.testing.assert_allclose(model.predict_proba_features(X), ref.predict_proba(scaler.transform(X)), atol=1e-6)
    # the raw-array path gives the probabilities written to the predictions CSV
    from ser_helpers.audio import load_audio
    waves = [load_audio(p) for p in test["path"][:4]]
    pred = pd.read_csv(res.output_dir / "test_predictions.csv")
    np.testing.assert_allclose(model.predict_proba(waves), pred[[f"prob_{lab}" for lab in LABELS]].to_numpy()[:4],
                               atol=1e-6)
    assert list(pred.columns[:3]) == ["path", "label", "prediction"]
    assert {"speaker", "language", "dialog_type"} <= set(pred.columns)


def test_rerun_is_deterministic_and_uses_cache(toy, tmp_path):
    manifests, res = toy
    again = B.train_baseline(manifests["train"], manifests["val"], manifests["test"], res.output_dir, seed=42,
                             n_bootstrap=100)
    assert again.report["timings"]["files_featurised"] == 0
    assert again.report["timings"]["cached_files_before"] == sum(len(pd.read_csv(m)) for m in manifests.values())
    for split in ("val", "test"):
        assert again.report[split]["macro_f1"] == res.report[split]["macro_f1"]
        assert again.report[split]["confusion_matrix"] == res.report[split]["confusion_matrix"]
    assert again.report["test"]["ci95"] == res.report["test"]["ci95"]


def test_feature_processes_give_the_same_features_and_name_a_bad_row(toy, tmp_path):
    manifests, _ = toy
    df = pd.read_csv(manifests["train"])
    np.testing.assert_array_equal(B.manifest_features(df, num_workers=2), B.manifest_features(df))
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF0000WAVEjunk")
    df.loc[5, "path"] = str(broken)
    with pytest.raises(AudioError, match=r"train\.csv row 7: .*broken\.wav: cannot decode"):
        B.manifest_features(df, num_workers=2, manifest_name="train.csv")


def test_bad_file_and_bad_label_are_named(toy, tmp_path):
    manifests, _ = toy
    df = pd.read_csv(manifests["val"])
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF0000WAVEjunk")
    df.loc[1, "path"] = str(broken)
    bad = tmp_path / "val_bad.csv"
    df.to_csv(bad, index=False)
    with pytest.raises(AudioError, match=r"row 3: .*broken\.wav: cannot decode"):
        B.train_baseline(manifests["train"], bad, "", tmp_path / "m1", n_bootstrap=0)
    assert not (tmp_path / "m1").exists()  # nothing half-written
    df = pd.read_csv(manifests["val"])
    df.loc[0, "path"] = str(tmp_path / "missing.wav")
    df.to_csv(bad, index=False)
    with pytest.raises(AudioError, match=r"missing\.wav: file not found"):
        B.train_baseline(manifests["train"], bad, "", tmp_path / "m1", n_bootstrap=0)
    df = pd.read_csv(manifests["val"])
    df.loc[0, "label"] = "fru"
    df.to_csv(bad, index=False)
    with pytest.raises(SERError, match=r"unknown label.*fru"):
        B.train_baseline(manifests["train"], bad, "", tmp_path / "m1", n_bootstrap=0)


def test_cli_flags_are_baseline_config_fields():
    """BaselineConfig holds every default once: the parsed defaults are its defaults; --c-grid text becomes the C
    values, the contract's --bootstrap sets n_bootstrap."""
    files = ["train-baseline", "--train-manifest", "t.csv", "--val-manifest", "v.csv", "--output-dir", "o"]
    assert B.BaselineConfig.from_params(vars(build_parser().parse_args(files))) == B.BaselineConfig()
    cfg = B.BaselineConfig.from_params(vars(build_parser().parse_args(
        files + ["--c-grid", "0.1, 1", "--bootstrap", "0", "--f0-method", "pyin"])))
    assert (cfg.c_grid, cfg.n_bootstrap, cfg.f0_method) == ((0.1, 1.0), 0, "pyin")
    assert B.c_values("") == B.DEFAULT_C_GRID


def test_cli_train_baseline(toy, tmp_path, capsys):
    manifests, res = toy
    out = tmp_path / "cli_model"
    rc = cli_main(["train-baseline", "--train-manifest", str(manifests["train"]), "--val-manifest",
                   str(manifests["val"]), "--output-dir", str(out), "--c-grid", "0.1,1", "--bootstrap", "0"])
    assert rc == 0
    report = json.loads((out / "train_report.json").read_text())
    assert [r["C"] for r in report["c_search"]] == [0.1, 1.0]
    assert "test" not in report and "val" in report
    assert "macro-F1" in capsys.readouterr().out
    assert cli_main(["train-baseline", "--train-manifest", str(tmp_path / "nope.csv"), "--val-manifest",
                     str(manifests["val"]), "--output-dir", str(out)]) == 1
