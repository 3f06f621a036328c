"""Real ASR where English speech is wanted: the service's /asr/transcribe works by default (bundled Whisper
tiny.en, no fusion dir), /ser/analyze with a fusion dir trained on reference transcripts recognises the speech
and fuses, the predictor and the demo fill the transcript. Speech is spoken here by espeak-ng."""
from __future__ import annotations

import io

import pytest
import soundfile as sf

from ser_helpers import asr
from ser_helpers import service as svc
from ser_helpers.service.client import wav_bytes

from test_asr_whisper import SENTENCES, _speak  # noqa: E402  (tests/ is on sys.path under pytest)


@pytest.fixture(scope="module")
def clip():
    return _speak(SENTENCES[0])


@pytest.fixture(scope="module")
def audio_model(tmp_path_factory):
    from ser_helpers.acoustic import make_base_model
    path = tmp_path_factory.mktemp("asr_service") / "model"
    make_base_model(path, size="tiny", seed=0)
    return path


@pytest.fixture(scope="module")
def reference_fusion_dir(make_fusion_dir, audio_model):
    """A fusion dir whose features used the corpus's reference (ORACLE) transcripts, as the cpu profile's."""
    return make_fusion_dir("ref_fusion", audio_model, {"backend": "reference", "model": "manifest:transcript",
                                                       "oracle": True})


@pytest.fixture(scope="module")
def predictor(reference_fusion_dir):
    from ser_helpers.predictor import FusionPredictor
    return FusionPredictor.load(reference_fusion_dir)


def test_asr_transcribe_works_by_default_without_a_fusion_dir(audio_model, clip):
    from fastapi.testclient import TestClient
    service = svc.SERService(svc.ServiceSettings(model_dir=str(audio_model)), models={}, device="cpu")
    assert service.asr_problem() is None
    with TestClient(svc.create_app(service=service)) as client:
        r = client.post("/asr/transcribe", files={"file": ("a.wav", wav_bytes(clip), "audio/wav")},
                        data={"language": "en"})
        assert r.status_code == 200, r.text
        t = r.json()
        assert t["language"] == "en" and t["durationMs"] == round(clip.size / 16)
        assert "apple" in t["text"].lower() and asr.wer([SENTENCES[0]], [t["text"]])["wer"] <= 0.34
        assert t["segments"] and all(set(s) == {"startMs", "endMs", "text"} for s in t["segments"])
        assert all(0 <= s["startMs"] <= s["endMs"] <= t["durationMs"] + 30 for s in t["segments"])
        assert t["asrModel"] == "tiny.en" and t["asrEngine"] == "faster-whisper"
        zh = client.post("/asr/transcribe", files={"file": ("a.wav", wav_bytes(clip), "audio/wav")},
                         data={"language": "zh"})
        assert zh.status_code == 422 and "English-only" in zh.json()["detail"]


def test_asr_transcribe_is_503_when_no_recogniser_is_installed(audio_model, clip, monkeypatch):
    monkeypatch.setattr(asr.factory, "faster_whisper_available", lambda: False)
    service = svc.SERService(svc.ServiceSettings(model_dir=str(audio_model)), models={}, device="cpu")
    with pytest.raises(svc.RequestError, match="faster-whisper is not installed") as info:
        service.transcribe(wav_bytes(clip))
    assert info.value.status == 503


def test_predictor_trained_on_reference_transcripts_recognises_english(predictor, clip):
    info = predictor.describe()
    assert info["transcripts_oracle"] is True
    assert info["asr_inference"]["model"] == "tiny.en" and info["asr_inference"]["languages"] == ["en"]
    p = predictor.predict(clip, 16000, language="en")
    assert "apple" in p["transcript"].lower()
    typed = predictor.predict(clip, 16000, language="en", transcript=p["transcript"])
    assert typed["fused_probs"] == pytest.approx(p["fused_probs"])
    zh = predictor.predict(clip, 16000, language="zh")  # Mandarin: no recogniser, audio evidence only
    assert zh["transcript"] == ""


def test_fusion_analyze_without_text_features_recognises_the_speech(audio_model, reference_fusion_dir,
                                                                    predictor, clip):
    settings = svc.ServiceSettings(model_dir=str(audio_model), fusion_dir=str(reference_fusion_dir), device="cpu")
    service = svc.SERService.load(settings)
    assert service.health()["asrReady"] is True
    a = service.analyze(wav_bytes(clip), "a.wav", language_hint="en")
    f = a["fusion"]
    assert f["enabled"] and f["ready"] and f["source"] == "asr", f
    assert "apple" in f["transcript"].lower()
    expected = predictor.predict(sf.read(io.BytesIO(wav_bytes(clip)), dtype="float32")[0], 16000, language="en")
    assert f["transcript"] == expected["transcript"]
    assert f["scores"] == pytest.approx(svc._codes_to_service(expected["fused_probs"]), abs=1e-6)
    t = service.transcribe(wav_bytes(clip), "a.wav", "en")  # the fusion pipeline's recogniser serves it
    assert t["text"] == expected["transcript"]


def test_demo_fills_an_empty_transcript_with_the_recognised_text(predictor, clip, tmp_path):
    from ser_helpers import demo
    path = tmp_path / "speech.wav"
    sf.write(path, clip, 16000)
    text = demo.recognise(predictor, str(path), "English")
    assert "apple" in text.lower()
    res = demo.analyze(predictor, str(path), "English", "")
    assert res.prediction["transcript"] == text
    assert demo.recognise(predictor, str(path), "Mandarin") is None  # tiny.en is English-only: type it
    summary = demo._fusion_summary(predictor.describe())
    assert "tiny.en" in summary["speech recogniser"] and "English" in summary["speech recogniser"]
