"""Selection of fusion_best (stage 09): order, ties, files, atomic install, model card."""
from __future__ import annotations

import json
import os
import shutil
import time

import pandas as pd
import pytest
import torch

from ser_helpers import selection
from ser_helpers.cli import main
from ser_helpers.common import SERError


def fake_run(d, test_f1, test_ece, n_params, val_f1=0.5, val_ece=0.1):
    """A minimal train-late-fusion output dir (only what selection reads)."""
    d.mkdir(parents=True)
    torch.save({"state_dict": {}}, d / "fusion_model.pt")
    report = {"mode": "fusion", "fusion_arch": "mlp", "fit_strategy": "val_cv", "n_parameters": n_params,
              "calibration": {"mode": "global_temperature", "temperature": 1.3},
              "test_macro_f1": test_f1, "test_ece": test_ece, "val_macro_f1": val_f1, "val_ece": val_ece,
              "test_macro_f1_ci": [test_f1 - 0.05, test_f1 + 0.05], "test_ece_ci": [0.01, 0.09],
              "labels": ["ang", "hap", "neu", "sad"], "feature_names": ["a", "b"], "rows": {"test": {"en": 10}},
              "calibrated": {"test": {"macro_f1": test_f1, "per_language": {"en": {"macro_f1": test_f1}}}},
              "uncalibrated": {}}
    (d / "train_report.json").write_text(json.dumps(report))
    (d / "pipeline.json").write_text(json.dumps({"components": {"asr": {"backend": "reference", "oracle": True}},
                                                 "feature_names": ["a", "b"]}))
    (d / "feature_scaler.json").write_text("{}")
    return d


def test_rank_order_and_ties(tmp_path):
    models = tmp_path / "models"
    a = fake_run(models / "a", 0.70, 0.05, 500)
    b = fake_run(models / "b", 0.72, 0.09, 900)      # best F1 wins despite worse ECE
    c = fake_run(models / "c", 0.72, 0.04, 900)      # tie on F1 -> lower ECE wins
    d = fake_run(models / "d", 0.72, 0.04, 300)      # tie on F1 and ECE -> fewer parameters wins
    e = fake_run(models / "e", 0.72, 0.04, 300)      # full tie -> earlier (candidate order) wins
    payload = selection.select_fusion_best([a, b, c, e, d], models / "fusion_best")
    order = [r["candidate"] for r in payload["candidates"]]
    assert order == ["e", "d", "c", "b", "a"]
    assert payload["selected"] == "e"
    payload = selection.select_fusion_best([a, b, c, d, e], models / "fusion_best")
    assert payload["selected"] == "d" and [r["rank"] for r in payload["candidates"]] == [1, 2, 3, 4, 5]


def test_select_on_val_and_files(tmp_path):
    models = tmp_path / "models"
    a = fake_run(models / "a", 0.80, 0.05, 500, val_f1=0.60)
    b = fake_run(models / "b", 0.70, 0.05, 500, val_f1=0.65)
    best = models / "fusion_best"
    assert selection.select_fusion_best([a, b], best, select_on="test")["selected"] == "a"
    payload = selection.select_fusion_best([a, b], best, experiment="exp02", select_on="val")
    assert payload["selected"] == "b" and "val_macro_f1" in payload["rule"]
    csv = pd.read_csv(models / "model_selection_exp02.csv")
    assert list(csv["candidate"]) == ["b", "a"] and {"test_macro_f1", "test_ece", "n_parameters"} <= set(csv.columns)
    saved = json.loads((models / "model_selection_exp02.json").read_text())
    assert saved["rule"] == payload["rule"] and len(saved["candidates"]) == 2
    prov = json.loads((best / "provenance.json").read_text())
    assert prov["source"] == str(b.resolve()) and prov["metrics"]["val_macro_f1"] == 0.65 and prov["time"]
    card = (best / "README.md").read_text()
    for word in ("Components", "Data", "Metrics", "Calibration", "Limits", "Ethical", "ORACLE", "Fusion fitted on: the"):
        assert word in card
    assert (best / "fusion_model.pt").exists() and (best / "pipeline.json").exists()
    assert not [p for p in models.iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_discovery_skips_fusion_best_and_orders_by_time(tmp_path):
    models = tmp_path / "models"
    old = fake_run(models / "zz_old", 0.7, 0.05, 100)
    new = fake_run(models / "aa_new", 0.7, 0.05, 100)
    os.utime(old / "fusion_model.pt", (time.time() - 100, time.time() - 100))
    (models / "other").mkdir()  # not a run
    selection.select_fusion_best(models, models / "fusion_best")
    found = selection.discover_candidates(models)
    assert [p.name for p in found] == ["zz_old", "aa_new"]          # fusion_best and 'other' skipped
    payload = selection.select_fusion_best(models, models / "fusion_best")
    assert payload["selected"] == "zz_old"                          # full tie -> earlier


def test_bad_candidates(tmp_path):
    with pytest.raises(SERError, match="no fusion candidates"):
        selection.select_fusion_best([], tmp_path / "fusion_best")
    (tmp_path / "x").mkdir()
    with pytest.raises(SERError, match="x: not a fusion run"):
        selection.select_fusion_best([tmp_path / "x"], tmp_path / "fusion_best")
    r = fake_run(tmp_path / "r", 0.7, 0.05, 10)
    rep = json.loads((r / "train_report.json").read_text()); del rep["test_ece"]
    (r / "train_report.json").write_text(json.dumps(rep))
    with pytest.raises(SERError, match="test_ece"):
        selection.select_fusion_best([r], tmp_path / "fusion_best")
    with pytest.raises(SERError, match="select_on"):
        selection.select_fusion_best([r], tmp_path / "fusion_best", select_on="train")


def test_cli(tmp_path, capsys):
    models = tmp_path / "models"
    a = fake_run(models / "a", 0.70, 0.05, 500)
    b = fake_run(models / "b", 0.75, 0.05, 500)
    rc = main(["select-fusion-best", "--candidates", str(a), str(b), "--output-dir", str(models / "fusion_best"),
               "--experiment", "exp01", "--select-on", "test"])
    assert rc == 0 and json.loads(capsys.readouterr().out)["selected"] == "b"
    assert (models / "model_selection_exp01.csv").exists()
    rc = main(["select-fusion-best", "--candidates", str(models), "--output-dir", str(models / "fusion_best")])
    assert rc == 0


def test_bundle_copies_local_components_only(tmp_path, capsys):
    """fusion_best carries copies of the local components it needs; hub ids stay ids; --no-bundle keeps paths."""
    audio = tmp_path / "runs" / "models" / "audio" / "best_model"
    (audio / "checkpoints").mkdir(parents=True)
    (audio / "config.json").write_text("{}")
    (audio / "checkpoints" / "big.bin").write_bytes(b"x" * 1000)
    (audio / "feature_cache.npz").write_bytes(b"x" * 1000)
    whisper = tmp_path / "runs" / "tiny.pt"
    whisper.write_bytes(b"ckpt")
    a = fake_run(tmp_path / "models" / "a", 0.70, 0.05, 500)
    (a / "text4_head").mkdir()
    (a / "text4_head" / "head.json").write_text("{}")
    comps = {"audio_models": {"en": str(audio), "zh": str(audio)}, "text_models": {"en": "org/hub-sentiment", "zh": None},
             "asr": {"backend": "whisper", "model": str(whisper), "oracle": False}, "text4_head": "text4_head"}
    (a / "pipeline.json").write_text(json.dumps({"components": comps, "feature_names": ["a", "b"]}))
    best = tmp_path / "models" / "fusion_best"
    selection.select_fusion_best([a], best)
    pj = json.loads((best / "pipeline.json").read_text())["components"]
    assert pj["audio_models"] == {"en": "components/audio_en", "zh": "components/audio_en"}  # one copy for both
    assert (best / "components" / "audio_en" / "config.json").exists()
    assert not (best / "components" / "audio_en" / "checkpoints").exists()
    assert not (best / "components" / "audio_en" / "feature_cache.npz").exists()
    assert pj["text_models"] == {"en": "org/hub-sentiment", "zh": None} and pj["text4_head"] == "text4_head"
    assert pj["asr"]["model"] == "components/whisper.pt" and (best / "components" / "whisper.pt").read_bytes() == b"ckpt"
    prov = json.loads((best / "provenance.json").read_text())
    assert prov["bundled_components"] == {str(audio): "components/audio_en", str(whisper): "components/whisper.pt"}
    assert "components/audio_en" in (best / "README.md").read_text()
    # a copy elsewhere resolves its components inside itself
    from ser_helpers.predictor import _resolve_components
    moved = tmp_path / "elsewhere"
    shutil.copytree(best, moved)
    res = _resolve_components(pj, moved)
    assert res["audio_models"]["zh"] == str((moved / "components" / "audio_en").resolve())
    assert res["asr"]["model"] == str((moved / "components" / "whisper.pt").resolve())
    assert res["text_models"]["en"] == "org/hub-sentiment"
    rc = main(["select-fusion-best", "--candidates", str(a), "--output-dir", str(best), "--no-bundle"])
    capsys.readouterr()
    assert rc == 0 and not (best / "components").exists()
    assert json.loads((best / "pipeline.json").read_text())["components"]["audio_models"]["en"] == str(audio)


def test_smoke_run_selection(smoke_run):
    models = smoke_run / "fusion" / "models"
    best = models / "fusion_best"
    sel_files = sorted(models.glob("model_selection_*.json"))
    assert sel_files and (best / "fusion_model.pt").exists()
    sel = json.loads(sel_files[0].read_text())
    key = f"{sel['select_on']}_macro_f1"
    assert sel["candidates"][0][key] == max(c[key] for c in sel["candidates"])
    prov = json.loads((best / "provenance.json").read_text())
    assert prov["source"] == sel["selected_path"] and "Ethical" in (best / "README.md").read_text()
    from ser_helpers.predictor import FusionPredictor
    row = pd.read_csv(smoke_run / "features" / "test_features.csv").iloc[0].to_dict()
    out = FusionPredictor.load(best).predict_features(row)
    assert abs(sum(out["fused_probs"].values()) - 1) < 1e-6 and out["label"] in out["labels"]


def test_smoke_run_fusion_best_is_self_contained(smoke_run, tmp_path):
    """A copy of fusion_best alone (no run dir paths) loads its own audio model and text head and predicts the same."""
    import numpy as np

    from ser_helpers.audio import load_audio
    from ser_helpers.predictor import FusionPredictor
    best = smoke_run / "fusion" / "models" / "fusion_best"
    comps = json.loads((best / "pipeline.json").read_text())["components"]
    assert all(not os.path.isabs(p) and (best / p).exists() for p in comps["audio_models"].values() if p)
    moved = tmp_path / "shipped" / "fusion_best"
    shutil.copytree(best, moved)
    pred = FusionPredictor.load(moved)
    info = pred.describe()
    assert all(str(moved.resolve()) in p for p in info["audio_models"].values() if p)
    row = pd.read_csv(smoke_run / "features" / "test_features.csv").iloc[0]
    audio = load_audio(row["path"])
    a = pred.predict(audio, 16000, language=row["language"], transcript=row["transcript"])
    b = FusionPredictor.load(best).predict(audio, 16000, language=row["language"], transcript=row["transcript"])
    assert a["label"] == b["label"]
    assert np.allclose([a["fused_probs"][k] for k in a["labels"]], [b["fused_probs"][k] for k in b["labels"]])
