"""inference.AudioClassifier: padding invariance, one transformer forward per batch, loading, predict CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ser_helpers import acoustic, inference
from ser_helpers.common import LABELS, SERError

SR = 16000


def tone(seconds: float, freq: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    wave = 0.3 * np.sin(2 * np.pi * freq * t * (1 + 0.1 * np.sin(2 * np.pi * 3 * t))) + 0.02 * rng.standard_normal(t.size)
    return wave.astype(np.float32)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return acoustic.make_base_model(tmp_path_factory.mktemp("base") / "tiny", size="tiny", seed=1)


@pytest.fixture(scope="module")
def clf(tiny_model):
    return inference.AudioClassifier.load(tiny_model, device="cpu")


def test_make_base_model_is_standard_hf_dir(tiny_model):
    from transformers import AutoConfig
    cfg = AutoConfig.from_pretrained(tiny_model)
    assert cfg.model_type == "wav2vec2" and cfg.feat_extract_norm == "group"
    assert [cfg.id2label[i] for i in range(4)] == LABELS
    assert (tiny_model / "preprocessor_config.json").exists()


def test_small_base_model_size(tmp_path):
    from transformers import AutoModelForAudioClassification
    d = acoustic.make_base_model(tmp_path / "small", size="small")
    n = acoustic.count_parameters(AutoModelForAudioClassification.from_pretrained(d))
    assert 0.8e6 < n < 1.0e6


def test_labels_and_shape(clf):
    assert clf.labels == LABELS
    p = clf.predict_proba([tone(1.0, 200, 0), tone(0.5, 300, 1)])
    assert p.shape == (2, 4) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)


def test_batch_invariance_one_transformer_forward(clf):
    """A short clip alone == the same clip batched beside a much longer one; one encoder call per batch."""
    short, long_ = tone(0.7, 220, 2), tone(6.0, 150, 3)
    alone = clf.predict_proba([short], batch_size=1)[0]
    calls = []
    hook = clf.model.wav2vec2.encoder.register_forward_hook(lambda m, i, o: calls.append(i[0].shape))
    try:
        batched = clf.predict_proba([long_, short, tone(3.1, 400, 4)], batch_size=3)
    finally:
        hook.remove()
    assert len(calls) == 1 and calls[0][0] == 3
    np.testing.assert_allclose(batched[1], alone, atol=1e-4)
    # plain zero padding in the stock forward DOES change the short clip's output (the trap this avoids)
    import torch
    x = torch.zeros(2, len(long_))
    x[0] = torch.from_numpy(long_)
    x[1, :len(short)] = inference.normalize_clip(torch.from_numpy(short))
    x[0] = inference.normalize_clip(x[0])
    with torch.no_grad():
        naive = torch.softmax(clf.model(x).logits, -1)[1].numpy()
    assert np.abs(naive - alone).max() > 1e-3


def test_matches_stock_forward_and_pipeline_for_one_clip(clf, tiny_model):
    """Unbatched, our forward is exactly HF's (normalisation + mean pooling): pipeline() agrees."""
    from transformers import pipeline
    wave = tone(1.3, 250, 5)
    ours = clf.predict_proba([wave])[0]
    pipe = pipeline("audio-classification", model=str(tiny_model), device="cpu")
    out = pipe(wave.copy(), top_k=4)
    theirs = np.array([{d["label"]: d["score"] for d in out}[lab] for lab in clf.labels])
    np.testing.assert_allclose(ours, theirs, atol=1e-4)


def test_max_duration_cuts_clip(clf):
    wave = tone(4.0, 180, 6)
    np.testing.assert_allclose(clf.predict_proba([wave], max_duration_sec=2.0),
                               clf.predict_proba([wave[:2 * SR]], max_duration_sec=None), atol=1e-5)


def test_bad_inputs_are_clear_errors(clf, tmp_path):
    with pytest.raises(SERError, match="NaN"):
        clf.predict_proba([np.full(1000, np.nan, dtype=np.float32)])
    with pytest.raises(SERError, match="1-D"):
        clf.predict_proba([np.zeros((2, 100), dtype=np.float32)])
    with pytest.raises(SERError, match="not found"):
        inference.AudioClassifier.load(tmp_path / "missing" / "dir")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SERError, match="config.json"):
        inference.AudioClassifier.load(tmp_path / "empty")


def test_hub_id_offline_fails_fast_with_message(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(SERError, match="huggingface-cli download|local"):
        inference.AudioClassifier.load("facebook/wav2vec2-base")


def test_predict_cli_files_and_dirs(tiny_model, tmp_path, capsys):
    import soundfile as sf

    from ser_helpers import cli
    d = tmp_path / "clips"
    d.mkdir()
    sf.write(d / "a.wav", tone(1.0, 200, 7), SR)
    sf.write(d / "b.flac", np.stack([tone(0.8, 300, 8)] * 2, axis=1), 22050)  # stereo, other rate
    (d / "broken.wav").write_bytes(b"RIFF0000WAVEjunk")
    out_csv, out_json = tmp_path / "p.csv", tmp_path / "p.json"
    assert cli.main(["predict", "--model-dir", str(tiny_model), str(d / "a.wav"), str(d / "b.flac"),
                     "--output-csv", str(out_csv), "--output-json", str(out_json), "--device", "cpu"]) == 0
    import pandas as pd
    df = pd.read_csv(out_csv)
    assert list(df.columns) == ["path", "prediction", "confidence"] + [f"prob_{lab}" for lab in LABELS]
    assert len(df) == 2 and set(df["prediction"]) <= set(LABELS)
    assert len(json.loads(out_json.read_text())["predictions"]) == 2
    # a directory with a broken file: exit 1 and the message names the file
    assert cli.main(["predict", "--model-dir", str(tiny_model), str(d), "--device", "cpu"]) == 1
    assert "broken.wav" in capsys.readouterr().err
