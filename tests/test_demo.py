"""Tests of the Gradio demo (ser_helpers.demo): input handling, examples, and the app called over HTTP
with gradio_client on loopback, first with a small fake predictor, then with the real FusionPredictor
of the smoke run."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from ser_helpers import audio as audio_io  # noqa: E402
from ser_helpers import demo  # noqa: E402
from ser_helpers.common import LABELS, SAMPLE_RATE, SERError, display_name  # noqa: E402
from fusion_data import make_synthetic_features  # noqa: E402

POSITIVE_WORDS = ("great", "happy", "love", "wonderful")
NEGATIVE_WORDS = ("hate", "awful", "angry", "terrible")


def _softmax(z):
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max())
    return e / e.sum()


class FakePredictor:
    """Same interface as FusionPredictor; outputs depend on the waveform and the transcript, so a demo
    that passes the wrong audio, sample rate, language or transcript gives different numbers."""

    labels = list(LABELS)
    temperature = 1.7

    def __init__(self):
        self.calls = []

    def predict(self, audio, sample_rate, language=None, transcript=None):
        x = np.asarray(audio, dtype=np.float64)
        assert x.ndim == 1 and sample_rate == SAMPLE_RATE
        self.calls.append({"n": x.size, "language": language, "transcript": transcript})
        rms = np.sqrt(np.mean(x ** 2))
        zcr = np.mean(np.abs(np.diff(np.sign(x)))) / 2
        audio_p = _softmax([20 * rms, 40 * zcr, x.size / SAMPLE_RATE, 10 * np.max(np.abs(x)) - 8 * rms])
        lang = language or "en"
        text = transcript if transcript is not None else ""
        if text:
            low = text.lower()
            pos = sum(low.count(w) for w in POSITIVE_WORDS)
            neg = sum(low.count(w) for w in NEGATIVE_WORDS)
            text_p = _softmax([neg, pos, 0.5 + 0.01 * len(low), 0.3 * neg])
            fused = _softmax((np.log(audio_p) + np.log(text_p) + (0.2 if lang == "zh" else 0.0)) / self.temperature)
        else:
            text_p = None
            fused = _softmax(np.log(audio_p) / self.temperature)
        k = int(np.argmax(fused))
        as_dict = lambda p: {c: float(v) for c, v in zip(self.labels, p)}  # noqa: E731
        return {"transcript": text, "language": lang, "labels": list(self.labels),
                "audio_probs": as_dict(audio_p), "text_probs": None if text_p is None else as_dict(text_p),
                "fused_probs": as_dict(fused), "label": self.labels[k], "confidence": float(fused[k]),
                "temperature": self.temperature}

    def describe(self):
        return {"audio_model": "fake-audio", "text_model": "fake-text", "asr": "none"}


def write_clip(path, seconds=1.2, sr=22050, channels=2, freq=180.0, amp=0.3, subtype="PCM_16"):
    t = np.arange(int(seconds * sr)) / sr
    wave = amp * (np.sin(2 * np.pi * freq * t) + 0.4 * np.sin(2 * np.pi * 3.1 * freq * t)) * (1 + 0.3 * np.sin(3 * t))
    data = np.stack([wave, 0.5 * wave], axis=1) if channels == 2 else wave
    sf.write(str(path), data.astype(np.float32), sr, subtype=subtype)
    return Path(path)


def label_confidences(label_output) -> dict:
    """gr.Label value as returned by gradio_client -> {display name: confidence}."""
    return {c["label"]: c["confidence"] for c in label_output["confidences"]}


def assert_label_matches(label_output, probs: dict, tol=1e-6):
    shown = label_confidences(label_output)
    assert set(shown) == {display_name(c) for c in probs}
    for code, p in probs.items():
        assert shown[display_name(code)] == pytest.approx(p, abs=tol)
    top = max(probs, key=probs.get)
    assert label_output["label"] == display_name(top)


# ----------------------------------------------------------------------------- input handling
def test_file_upload_is_downmixed_and_resampled(tmp_path):
    path = write_clip(tmp_path / "stereo22k.wav", seconds=1.0, sr=22050, channels=2)
    wav, name = demo.to_waveform(str(path))
    assert wav.dtype == np.float32 and wav.ndim == 1
    assert abs(wav.size - SAMPLE_RATE) <= 2
    assert name == "stereo22k.wav"
    np.testing.assert_array_equal(wav, audio_io.load_audio(path))


def test_microphone_48k_stereo_int16_is_converted():
    sr = 48000
    t = np.arange(int(1.5 * sr)) / sr
    left = (0.4 * np.sin(2 * np.pi * 220 * t) * 32767).astype(np.int16)
    mic = np.stack([left, left], axis=1)  # what gr.Audio(type="numpy") gives for a recording
    wav, name = demo.to_waveform((sr, mic))
    assert name == "microphone recording"
    assert wav.dtype == np.float32 and wav.ndim == 1
    assert abs(wav.size - int(1.5 * SAMPLE_RATE)) <= 2
    assert 0.35 < float(np.max(np.abs(wav))) < 0.45  # int16 scaled to [-1, 1], not averaged away


@pytest.mark.parametrize("case, message", [
    ("silent", "silent"), ("short", "under the minimum"), ("long", "over the limit"),
    ("garbage", "cannot decode"), ("empty", "empty"), ("none", "no audio"),
])
def test_bad_audio_gives_clear_error(tmp_path, case, message):
    path = tmp_path / f"{case}.wav"
    if case == "silent":
        sf.write(str(path), np.zeros(SAMPLE_RATE, dtype=np.float32), SAMPLE_RATE)
    elif case == "short":
        write_clip(path, seconds=0.1, sr=SAMPLE_RATE, channels=1)
    elif case == "long":
        write_clip(path, seconds=demo.MAX_DURATION_SEC + 1, sr=8000, channels=1)
    elif case == "garbage":
        path.write_bytes(b"RIFF\x00\x00not really a wav file" * 10)
    elif case == "empty":
        path.write_bytes(b"")
    value = None if case == "none" else str(path)
    with pytest.raises(audio_io.AudioError, match=message):
        demo.analyze(FakePredictor(), value)


def test_language_choices():
    assert demo.language_code("auto") is None
    assert demo.language_code("English") == "en"
    assert demo.language_code("Mandarin") == "zh"
    with pytest.raises(SERError, match="unknown language"):
        demo.language_code("Klingon")


def test_analyze_equals_predictor_and_uses_typed_transcript(tmp_path):
    path = write_clip(tmp_path / "clip.wav")
    fake = FakePredictor()
    res = demo.analyze(fake, str(path), "auto", "")
    direct = FakePredictor().predict(audio_io.load_audio(path), SAMPLE_RATE)
    assert res.prediction == direct
    assert fake.calls[-1]["transcript"] is None and fake.calls[-1]["language"] is None
    typed = demo.analyze(fake, str(path), "Mandarin", "  I love this, wonderful!  ")
    assert fake.calls[-1] == {"n": fake.calls[0]["n"], "language": "zh", "transcript": "I love this, wonderful!"}
    assert typed.prediction["text_probs"] is not None
    assert typed.prediction["fused_probs"] != res.prediction["fused_probs"]


# ----------------------------------------------------------------------------- examples
def _fake_run(tmp_path, with_features=True):
    run = tmp_path / "run"
    fusion_dir = run / "fusion" / "models" / "fusion_best"
    fusion_dir.mkdir(parents=True)
    clips = run / "clips"
    clips.mkdir()
    rows = []
    for i, code in enumerate(LABELS * 2):
        p = write_clip(clips / f"{code}_{i}.wav", freq=150 + 20 * i, channels=1, sr=SAMPLE_RATE)
        rows.append({"path": str(p), "label": code, "language": "zh" if i % 2 else "en",
                     "transcript": f"sentence {i}"})
    rows.insert(0, {"path": str(clips / "missing.wav"), "label": "ang", "language": "en", "transcript": "x"})
    if with_features:
        (run / "features").mkdir()
        pd.DataFrame(rows).to_csv(run / "features" / "test_features.csv", index=False)
    man = run / "manifests" / "multilingual_4class"
    man.mkdir(parents=True)
    pd.DataFrame(rows)[["path", "label", "language"]].to_csv(man / "test.csv", index=False)
    return run, fusion_dir


def test_find_examples_one_per_emotion(tmp_path):
    run, fusion_dir = _fake_run(tmp_path)
    ex = demo.find_examples(fusion_dir)
    assert [e.label for e in ex] == LABELS
    assert all(Path(e.path).exists() for e in ex)  # the missing clip is skipped
    assert ex[0].transcript == "sentence 0" and ex[1].language == "zh"
    # without features/, the manifest is used (no transcripts there)
    run2, fusion_dir2 = _fake_run(tmp_path / "b", with_features=False)
    ex2 = demo.find_examples(fusion_dir2)
    assert [e.label for e in ex2] == LABELS and all(e.transcript == "" for e in ex2)
    assert demo.find_examples(tmp_path / "nowhere") == []
    # the fusion model's own record of its test table (train_report.json inputs) comes first
    other = pd.read_csv(run / "features" / "test_features.csv").iloc[5:]
    other.to_csv(tmp_path / "moved_test_features.csv", index=False)
    (fusion_dir / "train_report.json").write_text(json.dumps({"inputs": {"test": str(tmp_path / "moved_test_features.csv")}}))
    assert [e.transcript for e in demo.find_examples(fusion_dir)] == [f"sentence {i}" for i in (4, 5, 6, 7)]


def test_examples_table_needs_columns(tmp_path):
    bad = tmp_path / "test.csv"
    pd.DataFrame({"file": ["a.wav"]}).to_csv(bad, index=False)
    with pytest.raises(SERError, match="needs columns 'path' and 'label'"):
        demo.examples_from_table(bad)


def test_predict_examples_table(tmp_path):
    run, fusion_dir = _fake_run(tmp_path)
    ex = demo.find_examples(fusion_dir)
    table = demo.predict_examples(FakePredictor(), ex)
    assert list(table["true_label"]) == [display_name(c) for c in LABELS]
    for e, (_, row) in zip(ex, table.iterrows()):
        direct = FakePredictor().predict(audio_io.load_audio(e.path), SAMPLE_RATE, transcript=e.transcript)
        assert row["label"] == display_name(direct["label"])
        assert row["fused_ang"] == pytest.approx(direct["fused_probs"]["ang"], abs=1e-4)
        assert row["transcript"] == e.transcript


def test_build_demo_from_missing_dir_is_clear(tmp_path):
    with pytest.raises(SERError, match="fusion model directory not found"):
        demo.build_demo(tmp_path / "no_such_fusion")


def test_cli_demo_missing_dir_exits_1(tmp_path, capsys):
    from ser_helpers.cli import main
    assert main(["demo", "--fusion-dir", str(tmp_path / "nope")]) == 1
    assert "fusion model directory not found" in capsys.readouterr().err


# ----------------------------------------------------------------------------- over HTTP
@pytest.fixture(scope="module")
def fake_app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("demo_app")
    run, fusion_dir = _fake_run(tmp)
    predictor = FakePredictor()
    app = demo.launch_demo(predictor, examples=demo.find_examples(fusion_dir), block=False,
                           max_file_size=200_000)
    yield app, predictor
    app.close()


def test_app_binds_loopback_without_share(fake_app):
    app, _ = fake_app
    assert app.local_url.startswith("http://127.0.0.1:")
    assert not app.share_url
    assert app.max_file_size == 200_000
    assert len(app.ser_examples) == len(LABELS)


def test_app_over_http_equals_predictor(fake_app, tmp_path):
    from gradio_client import Client, handle_file
    app, predictor = fake_app
    path = write_clip(tmp_path / "upload.wav", seconds=1.3, sr=22050, channels=2)
    client = Client(app.local_url, verbose=False)
    transcript, fused, audio_lab, text_lab, details = client.predict(
        handle_file(str(path)), "auto", "", api_name="/predict")
    direct = FakePredictor().predict(audio_io.load_audio(path), SAMPLE_RATE)
    assert transcript == direct["transcript"]
    assert_label_matches(fused, direct["fused_probs"])
    assert_label_matches(audio_lab, direct["audio_probs"])
    assert text_lab is None or not text_lab.get("confidences")
    assert f"{direct['temperature']:.3f}" in details and "fake-audio" in details
    # the edited transcript is used on re-submit
    _, fused2, _, text2, _ = client.predict(handle_file(str(path)), "English", "I hate this, awful", api_name="/predict")
    direct2 = FakePredictor().predict(audio_io.load_audio(path), SAMPLE_RATE, language="en",
                                      transcript="I hate this, awful")
    assert_label_matches(fused2, direct2["fused_probs"])
    assert_label_matches(text2, direct2["text_probs"])


def test_app_bad_input_is_readable_error(fake_app, tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError
    app, _ = fake_app
    silent = tmp_path / "silent.wav"
    sf.write(str(silent), np.zeros(SAMPLE_RATE, dtype=np.float32), SAMPLE_RATE)
    client = Client(app.local_url, verbose=False)
    with pytest.raises(AppError, match="silent") as info:
        client.predict(handle_file(str(silent)), "auto", "", api_name="/predict")
    assert "Traceback" not in str(info.value)
    # the server itself refuses uploads over max_file_size (not only the client)
    import httpx
    resp = httpx.post(app.local_url + "gradio_api/upload",
                      files={"files": ("big.wav", b"\0" * 300_000, "audio/wav")}, timeout=30)
    assert resp.status_code == 413 and "maximum allowed size" in resp.text


# ----------------------------------------------------------------------------- the real predictor
@pytest.fixture(scope="module")
def real_fusion_dir(request):
    """fusion_best of the smoke run (SER_DEMO_FUSION_DIR overrides it, for development)."""
    override = os.environ.get("SER_DEMO_FUSION_DIR")
    if override:
        return Path(override)
    return Path(request.getfixturevalue("smoke_run")) / "fusion" / "models" / "fusion_best"


def test_real_predictor_over_http(real_fusion_dir):
    from gradio_client import Client, handle_file
    from ser_helpers.predictor import FusionPredictor
    examples = demo.find_examples(real_fusion_dir)
    assert examples, f"no test-split examples found for {real_fusion_dir}"
    app = demo.launch_demo(real_fusion_dir, block=False)
    try:
        assert {e.label for e in app.ser_examples} == set(LABELS)
        predictor = FusionPredictor.load(real_fusion_dir)
        clip = examples[0]
        client = Client(app.local_url, verbose=False)
        for typed in ("", clip.transcript):
            transcript, fused, audio_lab, text_lab, details = client.predict(
                handle_file(clip.path), "auto", typed, api_name="/predict")
            direct = predictor.predict(audio_io.load_audio(clip.path), SAMPLE_RATE, transcript=typed or None)
            assert transcript == (direct["transcript"] or "")
            assert_label_matches(fused, direct["fused_probs"], tol=1e-5)
            assert_label_matches(audio_lab, direct["audio_probs"], tol=1e-5)
            if direct["text_probs"]:
                assert_label_matches(text_lab, direct["text_probs"], tol=1e-5)
            assert f"{direct['temperature']:.3f}" in details
    finally:
        app.close()


def test_auto_language_uses_whisper_detection_when_configured(tmp_path):
    from types import SimpleNamespace
    from ser_helpers import asr
    path = write_clip(tmp_path / "clip.wav", seconds=1.0, sr=SAMPLE_RATE, channels=1)
    fake = FakePredictor()
    fake.components = {"asr": {"backend": "reference", "oracle": True}}
    demo.analyze(fake, str(path), "auto")
    assert fake.calls[-1]["language"] is None  # no real Whisper: the predictor's default language applies
    ckpt = asr.make_tiny_whisper_checkpoint(tmp_path / "tiny.pt", seed=0)
    fake.components = {"asr": {"backend": "whisper", "model": str(ckpt)}}
    fake.featurizer = SimpleNamespace(transcriber=asr.get_transcriber("whisper", str(ckpt), cpu_threads=1))
    wav = audio_io.load_audio(path)
    detected = demo.detect_language(fake, wav)
    assert detected in ("en", "zh") and demo.detect_language(fake, wav) == detected
    demo.analyze(fake, str(path), "auto")
    assert fake.calls[-1]["language"] == detected
    demo.analyze(fake, str(path), "Mandarin")
    assert fake.calls[-1]["language"] == "zh"  # an explicit choice wins over detection


class StubFeaturizer:
    """Stands in for features.Featurizer under a REAL FusionPredictor: feature rows computed from the audio
    (audio branch) and the transcript (text4 branch), no ASR (empty transcript -> text branch not ready)."""

    def __init__(self, base_row: dict):
        self.base_row = base_row

    def transcribe(self, audio, language):
        return ""

    def row(self, audio, language, transcript=None):
        p = FakePredictor().predict(np.asarray(audio, dtype=np.float32), SAMPLE_RATE, language, transcript or None)
        row = dict(self.base_row, transcript=transcript or "", language=language,
                   lang_is_zh=1.0 if language == "zh" else 0.0)
        for code in LABELS:
            row[f"audio_prob_{code}"] = p["audio_probs"][code]
            row[f"text4_prob_{code}"] = (p["text_probs"] or {c: 0.25 for c in LABELS})[code]
        row["text4_ready"] = 1.0 if transcript else 0.0
        return row


@pytest.fixture(scope="module")
def trained_fusion_dir(tmp_path_factory):
    """A real (tiny) late-fusion model trained on the fusion helper's synthetic feature rows."""
    from ser_helpers import fusion
    base = tmp_path_factory.mktemp("fusion_demo")
    feats = make_synthetic_features(base / "features", n_per_speaker=12, seed=3)
    res = fusion.train_late_fusion(feats["train"], feats["val"], feats["test"], base / "fusion_x", epochs=8,
                                   device="cpu", make_plots=False, compare_fit_strategies=False, n_bootstrap=20)
    return res.output_dir, pd.read_csv(feats["test"]).iloc[0].to_dict()


def test_fusion_predictor_through_the_app(trained_fusion_dir, tmp_path):
    """The real FusionPredictor (real fusion model + calibration; stub featurizer) served by the demo:
    what the HTTP API returns equals predictor.predict on the same clip, with and without a transcript."""
    from gradio_client import Client, handle_file
    from ser_helpers.predictor import FusionPredictor
    fusion_dir, base_row = trained_fusion_dir
    base_row = {k: (v.item() if hasattr(v, "item") else v) for k, v in base_row.items()}
    predictor = FusionPredictor.load(fusion_dir, featurizer=StubFeaturizer(base_row))
    path = write_clip(tmp_path / "clip.wav", seconds=1.1, sr=SAMPLE_RATE, channels=1)
    app = demo.launch_demo(predictor, examples=[], block=False)
    try:
        client = Client(app.local_url, verbose=False)
        for lang_choice, lang, typed in (("auto", None, ""), ("Mandarin", "zh", "I love it, wonderful")):
            transcript, fused, audio_lab, text_lab, details = client.predict(
                handle_file(str(path)), lang_choice, typed, api_name="/predict")
            direct = predictor.predict(audio_io.load_audio(path), SAMPLE_RATE, language=lang, transcript=typed or None)
            assert transcript == direct["transcript"]
            assert_label_matches(fused, direct["fused_probs"])
            assert_label_matches(audio_lab, direct["audio_probs"])
            if direct["text_probs"] is None:
                assert text_lab is None or not text_lab.get("confidences")
            else:
                assert_label_matches(text_lab, direct["text_probs"])
            assert f"{direct['temperature']:.3f}" in details and "fusion model" in details
    finally:
        app.close()


def test_notebook10_ran_headless_in_the_smoke_run(smoke_run):
    """Notebook 10 under papermill: one prediction per example shown as a table, the report written."""
    import nbformat
    executed = [p for p in sorted(Path(smoke_run, "notebooks").glob("*.ipynb"))
                if "10_gradio_demo" in nbformat.read(str(p), as_version=4).metadata.get("papermill", {}).get("input_path", "")]
    assert executed, f"no executed copy of notebook 10 in {smoke_run}/notebooks"
    nb = nbformat.read(str(executed[-1]), as_version=4)
    outputs = "\n".join(str(o.get("data", {}).get("text/html", "")) + str(o.get("data", {}).get("text/plain", ""))
                        + str(o.get("text", ""))
                        for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "true_label" in outputs and "fused_ang" in outputs
    for code in LABELS:
        assert display_name(code) in outputs
    assert "REPORT.md" in outputs and (Path(smoke_run) / "REPORT.md").is_file()
