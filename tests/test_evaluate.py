"""Evaluation stage: batch invariance on a group-norm model, hand-computed metrics, breakdowns, bad files, CLI."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ser_helpers import evaluate as E
from ser_helpers.acoustic import make_base_model
from ser_helpers.audio import AudioError, write_wav
from ser_helpers.baseline import toy_clip
from ser_helpers.cli import build_parser
from ser_helpers.cli import main as cli_main
from ser_helpers.common import LABELS, SERError
from ser_helpers.inference import AudioClassifier


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_base_model(tmp_path_factory.mktemp("tiny") / "best_model", size="tiny", seed=3)


@pytest.fixture(scope="module")
def clf(model_dir):
    return AudioClassifier.load(model_dir, device="cpu")


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    """8 clips of very different lengths (0.3 s .. 4 s) with language/speaker/dialog_type columns."""
    root = tmp_path_factory.mktemp("eval_data")
    durations = [0.3, 4.0, 1.1, 2.6, 0.6, 1.8, 3.5, 0.9]
    rows = []
    for i, dur in enumerate(durations):
        lab = LABELS[i % 4]
        path = write_wav(root / f"clip{i}.wav", toy_clip(lab, dur, seed=i))
        rows.append({"path": str(path), "label": lab, "source_label": lab, "duration_sec": dur,
                     "speaker": f"spk{i % 2}", "language": "en" if i < 5 else "zh",
                     "dialog_type": "impro" if i % 3 else "script"})
    path = root / "test.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_batched_equals_one_clip_at_a_time(model_dir, clf, manifest, tmp_path):
    import torch
    from transformers import Wav2Vec2ForSequenceClassification
    assert clf.model.config.feat_extract_norm == "group"
    batched = E.evaluate_wav2vec2(model_dir, manifest, batch_size=8, classifier=clf, n_bootstrap=0, progress=False)
    single = E.evaluate_wav2vec2(model_dir, manifest, batch_size=1, classifier=clf, n_bootstrap=0, progress=False)
    cols = [f"prob_{lab}" for lab in LABELS]
    np.testing.assert_allclose(batched.predictions[cols].to_numpy(), single.predictions[cols].to_numpy(), atol=1e-4)
    assert list(batched.predictions["prediction"]) == list(single.predictions["prediction"])
    assert batched.metrics["confusion_matrix"] == single.metrics["confusion_matrix"]
    # the trap this guards against is real on this config: a plain zero-padded HF forward changes a short clip
    from ser_helpers.audio import load_audio
    waves = [load_audio(p) for p in pd.read_csv(manifest)["path"][:2]]  # 0.3 s and 4 s
    fe = clf.feature_extractor
    model = Wav2Vec2ForSequenceClassification.from_pretrained(model_dir).eval()
    with torch.no_grad():
        padded = model(**fe(waves, sampling_rate=16000, return_tensors="pt", padding=True)).logits.softmax(-1)
    np.testing.assert_allclose(clf.predict_proba(waves[:1])[0], batched.predictions[cols].to_numpy()[0], atol=1e-4)
    assert np.abs(padded[0].numpy() - batched.predictions[cols].to_numpy()[0]).max() > 1e-3


def test_metrics_hand_computed():
    labels = ["ang", "hap", "neu", "sad"]
    y = np.array([0, 0, 1, 1, 2, 3])
    probs = np.array([[0.7, 0.1, 0.1, 0.1],   # ang ok   conf .7
                      [0.2, 0.6, 0.1, 0.1],   # ang->hap conf .6
                      [0.1, 0.8, 0.05, 0.05],  # hap ok  conf .8
                      [0.1, 0.8, 0.05, 0.05],  # hap ok  conf .8
                      [0.1, 0.1, 0.7, 0.1],   # neu ok   conf .7
                      [0.1, 0.1, 0.6, 0.2]])  # sad->neu conf .6
    meta = pd.DataFrame({"language": ["en", "en", "en", "zh", "zh", "zh"]})
    m = E.compute_metrics(y, probs, labels, meta, n_bootstrap=200, seed=0,
                          train_counts={"ang": 1, "hap": 2, "neu": 9, "sad": 0}, train_source="test")
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["ua"] == pytest.approx((0.5 + 1 + 1 + 0) / 4)
    # P/R/F1 per class: ang 1/.5/.667, hap 2/3/1/.8, neu .5/1/.667, sad 0
    f1 = [2 / 3, 0.8, 2 / 3, 0.0]
    assert m["macro_f1"] == pytest.approx(np.mean(f1))
    assert m["weighted_f1"] == pytest.approx(np.dot(f1, [2, 2, 1, 1]) / 6)
    assert m["per_class"]["hap"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["ang"]["support"] == 2
    # ECE: bin (0.667,0.733]: conf .7 x2, both right; (0.533,0.6]: conf .6 x2, both wrong; (0.733,0.8]: .8 x2 right
    assert m["ece"] == pytest.approx(2 / 6 * 0.3 + 2 / 6 * 0.6 + 2 / 6 * 0.2)
    assert m["nll"] == pytest.approx(-np.mean(np.log([0.7, 0.2, 0.8, 0.8, 0.7, 0.2])))
    assert m["confusion_matrix"] == [[1, 1, 0, 0], [0, 2, 0, 0], [0, 0, 1, 0], [0, 0, 1, 0]]
    # majority of the TRAIN distribution (neu), scored on the evaluated labels
    mb = m["majority_baseline"]
    assert mb["majority_label"] == "neu" and mb["accuracy"] == pytest.approx(1 / 6)
    assert mb["source"] == "train distribution" and mb["source_detail"] == "test"
    # without train counts: majority of the evaluated set (ang/hap tie -> first)
    mb2 = E.compute_metrics(y, probs, labels, n_bootstrap=0)["majority_baseline"]
    assert mb2["majority_label"] == "ang" and mb2["source"] == "evaluated set"
    # breakdown by language, hand-computed
    en, zh = m["breakdowns"]["language"]["en"], m["breakdowns"]["language"]["zh"]
    assert (en["n"], zh["n"]) == (3, 3)
    assert en["accuracy"] == pytest.approx(2 / 3) and zh["accuracy"] == pytest.approx(2 / 3)
    assert zh["ua"] == pytest.approx((1 + 1 + 0) / 3)
    lo, hi = m["ci95"]["macro_f1"]
    assert 0 <= lo <= m["macro_f1"] <= hi <= 1 and lo < hi


def test_outputs_breakdowns_and_columns(model_dir, clf, manifest, tmp_path):
    # a train_report.json beside best_model/ with label counts gives the majority baseline its train distribution
    (model_dir.parent / "train_report.json").write_text(json.dumps(
        {"data": {"train": {"n": 9, "label_counts": {"ang": 1, "hap": 1, "neu": 5, "sad": 2}},
                  "val": {"n": 9, "label_counts": {"ang": 9}}}}))
    try:
        res = E.evaluate_wav2vec2(model_dir, manifest, classifier=clf, n_bootstrap=100, progress=False,
                                  **E.eval_paths(tmp_path / "eval", "test"))
    finally:
        (model_dir.parent / "train_report.json").unlink()
    m = json.loads((tmp_path / "eval" / "test_metrics.json").read_text())
    for key in ("accuracy", "ua", "macro_f1", "weighted_f1", "ece", "nll", "per_class", "confusion_matrix",
                "majority_baseline", "ci95", "breakdowns"):
        assert key in m, key
    assert m["majority_baseline"]["majority_label"] == "neu"
    assert m["majority_baseline"]["source"] == "train distribution"
    assert "train_report.json" in m["majority_baseline"]["source_detail"]
    assert set(m["breakdowns"]) == {"language", "dialog_type", "speaker"}
    assert set(m["breakdowns"]["language"]) == {"en", "zh"}
    assert m["breakdowns"]["language"]["en"]["n"] == 5 and m["breakdowns"]["speaker"]["spk0"]["n"] == 4
    assert sum(g["n"] for g in m["breakdowns"]["dialog_type"].values()) == 8
    pred = pd.read_csv(tmp_path / "eval" / "test_predictions.csv")
    assert list(pred.columns) == ["path", "label", "prediction", "prob_ang", "prob_hap", "prob_neu", "prob_sad",
                                  "confidence", "language", "speaker", "dialog_type"]
    np.testing.assert_allclose(pred[[f"prob_{lab}" for lab in LABELS]].sum(axis=1), 1.0, atol=1e-5)
    assert (pred["prediction"] == pred[[f"prob_{lab}" for lab in LABELS]].idxmax(axis=1).str[5:]).all()
    cm = pd.read_csv(tmp_path / "eval" / "test_confusion_matrix_eval.csv")
    assert list(cm.columns) == ["true_label", *LABELS] and cm[LABELS].to_numpy().sum() == 8
    assert (tmp_path / "eval" / "test_confusion_matrix_eval.png").stat().st_size > 0
    assert (tmp_path / "eval" / "test_confusion_matrix_eval_normalized.png").stat().st_size > 0
    table = E.compare_table({"wav2vec2": res.metrics})
    assert list(table.index)[0] == "wav2vec2" and table.index[1] == "majority class (always 'neu', from the train distribution)"
    assert E.breakdown_table(res.metrics, "language").loc["zh", "n"] == 3
    assert E.breakdown_table(res.metrics, "session").empty
    wrong = E.misclassified(res.predictions, n=3)
    assert len(wrong) <= 3 and (wrong["label"] != wrong["prediction"]).all()


def test_bad_files_are_named(model_dir, clf, manifest, tmp_path):
    df = pd.read_csv(manifest)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x10\x00\x00\x00WAVEnot audio at all")
    df.loc[2, "path"] = str(tmp_path / "gone.wav")
    df.loc[5, "path"] = str(corrupt)
    bad = tmp_path / "bad.csv"
    df.to_csv(bad, index=False)
    out = tmp_path / "out.json"
    with pytest.raises(AudioError) as err:
        E.evaluate_wav2vec2(model_dir, bad, classifier=clf, output_json=out, progress=False)
    msg = str(err.value)
    assert "2 bad audio file(s)" in msg
    assert "row 4: " in msg and "gone.wav: file not found" in msg
    assert "row 7: " in msg and "corrupt.wav: cannot decode audio" in msg
    assert not out.exists()
    df = pd.read_csv(manifest)
    df.loc[0, "label"] = "fea"
    df.to_csv(bad, index=False)
    with pytest.raises(SERError, match=r"'fea' at row 2 .*not one of the model's labels"):
        E.evaluate_wav2vec2(model_dir, bad, classifier=clf, progress=False)


def test_cli_flags_match_contract_and_run(model_dir, manifest, tmp_path, capsys):
    parser = build_parser()
    args = parser.parse_args(["evaluate-wav2vec2", "--model-dir", "m", "--manifest", "x.csv"])
    assert (args.sample_rate, args.max_duration_sec, args.batch_size, args.num_workers, args.device) == \
        (16000, 15.0, 8, 0, "auto")
    with pytest.raises(SystemExit):
        parser.parse_args(["evaluate-wav2vec2", "--model-dir", "m", "--manifest", "x.csv", "--device", "tpu"])
    out = tmp_path / "cli"
    rc = cli_main(["evaluate-wav2vec2", "--model-dir", str(model_dir.parent), "--manifest", str(manifest),
                   "--sample-rate", "16000", "--max-duration-sec", "2.0", "--batch-size", "3", "--num-workers", "2",
                   "--device", "cpu", "--output-json", str(out / "m.json"),
                   "--output-predictions-csv", str(out / "p.csv"), "--output-confusion-csv", str(out / "c.csv"),
                   "--bootstrap", "50"])
    assert rc == 0
    m = json.loads((out / "m.json").read_text())
    assert m["num_samples"] == 8 and m["batch_size"] == 3 and m["max_duration_sec"] == 2.0
    assert m["clips_cut_to_max_duration"] == 3  # the 4.0, 2.6 and 3.5 s clips
    assert (out / "p.csv").exists() and (out / "c.csv").exists() and (out / "c.png").exists()
    assert "macro-F1" in capsys.readouterr().out
    assert cli_main(["evaluate-wav2vec2", "--model-dir", str(tmp_path / "nomodel"), "--manifest",
                     str(manifest)]) == 1


def test_cli_flags_are_evaluate_config_fields():
    """EvaluateConfig holds every default once: the parsed defaults are its defaults; the contract's --bootstrap and
    --seed set n_bootstrap and bootstrap_seed."""
    args = build_parser().parse_args(["evaluate-wav2vec2", "--model-dir", "m", "--manifest", "x.csv"])
    assert E.EvaluateConfig.from_params(vars(args)) == E.EvaluateConfig()
    args = build_parser().parse_args(["evaluate-wav2vec2", "--model-dir", "m", "--manifest", "x.csv",
                                      "--bootstrap", "7", "--seed", "3", "--allow-split-overlap"])
    cfg = E.EvaluateConfig.from_params(vars(args))
    assert (cfg.n_bootstrap, cfg.bootstrap_seed, cfg.allow_split_overlap) == (7, 3, True)


def test_verdict_and_breakdown_compare():
    def fake(f1, ci, groups):
        return {"macro_f1": f1, "ci95": {"macro_f1": ci},
                "majority_baseline": {"majority_label": "neu", "macro_f1": 0.1},
                "breakdowns": {"language": {g: {"n": 5, "macro_f1": v} for g, v in groups.items()}}}
    a, b = fake(0.5, [0.4, 0.6], {"en": 0.6, "zh": 0.4}), fake(0.7, [0.65, 0.75], {"en": 0.8})
    text = E.verdict({"A": a, "B": b})
    assert text.startswith("B beats A on macro_f1 by +0.200") and "do not overlap" in text and "+0.600" in text
    b["ci95"]["macro_f1"] = [0.55, 0.8]
    assert "overlap, so this test set cannot tell" in E.verdict({"A": a, "B": b})
    table = E.breakdown_compare({"A": a, "B": b}, "language")
    assert table.loc["en", "B"] == 0.8 and table.loc["zh", "A"] == 0.4 and np.isnan(table.loc["zh", "B"])


def test_reference_table_names_protocols():
    ref = E.reference_table()
    assert {"system", "dataset", "protocol", "WA", "UA", "macro-F1", "source"} <= set(ref.columns)
    assert ref["protocol"].str.len().min() > 0


def test_smoke_run_evaluation(smoke_run):
    """Notebook 04 of the smoke run: metrics JSON agrees with its own predictions CSV; baseline beside it."""
    from ser_helpers.metrics import classification_metrics
    jsons = sorted(smoke_run.glob("eval/*/test_metrics.json"))
    assert jsons, f"no eval/<name>/test_metrics.json in {smoke_run}"
    with_baseline = []
    for path in jsons:
        m = json.loads(path.read_text())
        name = path.parent.name
        pred = pd.read_csv(path.parent / "test_predictions.csv")
        manifest = pd.read_csv(m["manifest"])
        assert m["num_samples"] == m["n"] == len(pred) == len(manifest)
        assert sorted(pred["path"]) == sorted(manifest["path"])
        again = classification_metrics(pred["label"], pred[[f"prob_{lab}" for lab in m["labels"]]].to_numpy(),
                                       m["labels"])
        for key in ("accuracy", "ua", "macro_f1", "ece"):
            assert again[key] == pytest.approx(m[key], abs=1e-6), key
        assert again["confusion_matrix"] == m["confusion_matrix"]
        assert m["ci95"]["macro_f1"][0] <= m["macro_f1"] <= m["ci95"]["macro_f1"][1]
        assert m["majority_baseline"]["source"] == "train distribution"
        if "language" in manifest.columns:
            langs = m["breakdowns"]["language"]
            assert set(langs) == set(manifest["language"]) and sum(g["n"] for g in langs.values()) == m["n"]
        for png in ("test_confusion_matrix_eval.png", "test_confusion_matrix_eval_normalized.png"):
            assert (path.parent / png).stat().st_size > 0
        baseline = smoke_run / "models" / "baseline" / name / "train_report.json"
        if baseline.exists():  # notebook 04 trains the classical baseline beside the main model only
            report = json.loads(baseline.read_text())
            assert report["test"]["n"] == m["n"] and "majority_baseline" in report["test"]
            with_baseline.append(name)
    assert with_baseline, "no evaluated model has the classical baseline beside it"
