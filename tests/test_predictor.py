"""FusionPredictor: load a fusion dir, predict from audio (through a featurizer) or from a feature row."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from ser_helpers import fusion
from ser_helpers.common import LABELS, SERError
from ser_helpers.predictor import FusionPredictor
from fusion_data import make_synthetic_features


class FakeFeaturizer:
    """Stands in for features.Featurizer: returns a fixed feature row, records the calls."""

    def __init__(self, row):
        self.base_row, self.calls = row, []

    def transcribe(self, audio, language):
        self.calls.append(("transcribe", len(audio), language))
        return {"text": "asr words", "language": language}

    def row(self, audio, language, transcript=None):
        self.calls.append(("row", len(audio), language, transcript))
        return dict(self.base_row, transcript=transcript, language=language)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    base = tmp_path_factory.mktemp("pred")
    feats = make_synthetic_features(base / "features", n_per_speaker=16, seed=5)
    res = fusion.train_late_fusion(feats["train"], feats["val"], feats["test"], base / "models" / "fusion_x",
                                   epochs=15, device="cpu", make_plots=False, compare_fit_strategies=False,
                                   n_bootstrap=50, calibration_mode="per_language_temperature",
                                   min_language_samples=10)
    # the dir alone must do: move it away from the features folder
    moved = base / "elsewhere" / "fusion_best"
    shutil.copytree(res.output_dir, moved)
    shutil.rmtree(res.output_dir)
    return moved, pd.read_csv(feats["test"]), res


def _row(df, i):
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in df.iloc[i].to_dict().items()}


def test_predict_features_matches_model(run):
    d, test, res = run
    pred = FusionPredictor.load(d)
    model = fusion.load_fusion_model(d)
    for i in (0, len(test) - 1):
        row = _row(test, i)
        out = pred.predict_features(row)
        expect = model.predict_proba([row], [row["language"]])[0]
        assert np.allclose([out["fused_probs"][l] for l in LABELS], expect)
        assert out["label"] == LABELS[int(expect.argmax())] and out["confidence"] == pytest.approx(expect.max())
        assert out["temperature"] == res.report["calibration"]["per_language"][row["language"]]
        assert out["audio_probs"] == {l: row[f"audio_prob_{l}"] for l in LABELS}
        assert out["text_probs"] == {l: row[f"text4_prob_{l}"] for l in LABELS}
        assert out["language"] == row["language"] and out["labels"] == LABELS


def test_predict_audio_uses_asr_unless_transcript_given(run):
    d, test, _ = run
    fake = FakeFeaturizer({k: v for k, v in _row(test, 0).items() if k not in ("transcript", "language")})
    pred = FusionPredictor.load(d, featurizer=fake)
    stereo_48k = (np.random.default_rng(0).normal(0, 0.1, (48000, 2)) * 32767).astype(np.int16)
    out = pred.predict(stereo_48k, 48000, language="zh")
    assert out["transcript"] == "asr words" and out["language"] == "zh"
    assert fake.calls[0] == ("transcribe", 16000, "zh") and fake.calls[1][3] == "asr words"
    fake.calls.clear()
    out = pred.predict(stereo_48k, 48000, transcript="given words")
    assert [c[0] for c in fake.calls] == ["row"] and out["transcript"] == "given words"
    assert out["language"] == "en"  # default_language from the components
    assert abs(sum(out["fused_probs"].values()) - 1) < 1e-9


def test_describe_and_self_contained_components(run):
    d, _, _ = run
    info = FusionPredictor.load(d).describe()
    assert info["calibration_mode"] == "per_language_temperature" and info["temperature"] > 0
    assert info["transcripts_oracle"] is True and info["components_loaded"] is False
    assert info["text4_head"] == str((d / "text4_head").resolve())
    assert info["n_features"] == len(fusion.DEFAULT_FEATURE_COLUMNS["fusion"])


def test_bad_inputs(run, tmp_path):
    d, test, _ = run
    pred = FusionPredictor.load(d)
    row = _row(test, 0)
    del row["text4_entropy"]
    with pytest.raises(SERError, match="text4_entropy"):
        pred.predict_features(row)
    with pytest.raises(SERError, match="NaN"):
        pred.predict_features(dict(_row(test, 0), audio_confidence=float("nan")))
    with pytest.raises(SERError, match="language 'fr'"):
        FusionPredictor.load(d, featurizer=FakeFeaturizer({})).predict(np.ones(1600) * 0.1, 16000, language="fr")
    with pytest.raises(SERError, match="pipeline.json"):
        FusionPredictor.load(tmp_path)
    bad = tmp_path / "bad"
    shutil.copytree(d, bad)
    pipe = json.loads((bad / "pipeline.json").read_text())
    pipe["feature_names"] = pipe["feature_names"][:-1]
    (bad / "pipeline.json").write_text(json.dumps(pipe))
    with pytest.raises(SERError, match="lang_is_zh"):
        FusionPredictor.load(bad)
