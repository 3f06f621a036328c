"""Hostile input and load against the real service (issue 12): a uvicorn subprocess on loopback, over HTTP.

Every case asserts the status, that the message names the problem, that /health answers afterwards and
that the server left no file in its temp dir (TMPDIR points at a fresh folder). Cases: oversize and chunked
bodies, slow bodies, lying and truncated headers, implausible sample rates, 8/16/24/32-bit and float
samples, 1-65 channels, wav/flac/ogg/mp3, FLAC without a length (written to a pipe), 0 samples, NaN/Inf,
silence, loud float audio, 10 minutes, overlap that multiplies work, path-like and huge filenames,
duplicate/missing/non-UTF-8 form fields, unknown languages, out-of-range text features, a full queue,
a deadline, a client that hangs up, and a server killed mid-request then restarted.
Speed targets (655 kHz FLAC refused in < 100 ms, /health p95 under load) live in bench/bench_soak.py.
"""
from __future__ import annotations

import io
import json
import math
import re
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from ser_helpers import service as svc
from ser_helpers.service import admission
from ser_helpers.service.client import chunked_upload, raw_request
from ser_helpers.audio import AudioError
from test_service import fusion_dir, make_model, models, speechlike, without_latency  # noqa: F401 (fixtures)

MB = 1024 * 1024


# ----------------------------------------------------------------------------- helpers
def enc(x: np.ndarray, sr: int = 16000, fmt: str = "WAV", subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def pipe_flac(data: bytes) -> bytes:
    """A FLAC as an encoder writing to a pipe leaves it: STREAMINFO total samples 0 (unknown) and no MD5."""
    d = bytearray(data)
    assert d[:4] == b"fLaC"
    si = 8
    v = int.from_bytes(d[si + 10:si + 18], "big") & ~((1 << 36) - 1)
    d[si + 10:si + 18] = v.to_bytes(8, "big")
    d[si + 18:si + 34] = bytes(16)
    return bytes(d)


def flac_claiming(seconds: float, sr: int, real_sec: float = 0.5) -> bytes:
    """A small FLAC whose header claims `seconds` at `sr` (a lying header; the 655 kHz / 599 s case)."""
    d = bytearray(enc(np.full(int(real_sec * sr), 0.1, np.float32), sr, "FLAC"))
    si = 8
    v = int.from_bytes(d[si + 10:si + 18], "big") & ~((1 << 36) - 1)
    d[si + 10:si + 18] = (v | int(seconds * sr)).to_bytes(8, "big")
    return bytes(d)


def post(url: str, files=None, data=None, timeout: float = 120, **kw) -> httpx.Response:
    return httpx.post(f"{url}/ser/analyze", files=files, data=data, timeout=timeout, **kw)


def upload(url: str, data: bytes, filename: str = "clip.wav", **form) -> httpx.Response:
    return post(url, files={"file": (filename, data, "audio/wav")}, data={k: str(v) for k, v in form.items()})


def assert_clean(server, tmpdir: Path) -> None:
    """/health answers and no request left anything in the server's temp dir (beyond what start-up made,
    e.g. torch's own cache folder)."""
    r = httpx.get(server.url + "/health", timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "ok"
    at_start = getattr(server, "tmp_at_start", set())
    assert sorted({p.name for p in tmpdir.iterdir()} - at_start) == []


def started(proc, tmpdir: Path):
    proc.tmp_at_start = {p.name for p in tmpdir.iterdir()}
    return proc


def assert_refused(r: httpx.Response, status: int, *words: str) -> str:
    assert r.status_code == status, (r.status_code, r.text[:500])
    detail = r.json()["detail"]
    text = detail if isinstance(detail, str) else json.dumps(detail)
    for w in words:
        assert w in text, (w, text)
    assert len(text) < 600, f"message echoes too much ({len(text)} chars)"
    return text


# ----------------------------------------------------------------------------- servers
def _env(model_dir: Path, tmpdir: Path, **extra) -> dict:
    return {"SER_ENGINE": "hf_wav2vec2", "SER_HF_MODEL_DIR": str(model_dir), "SER_HF_DEVICE": "cpu",
            "TMPDIR": str(tmpdir), "SER_WORKERS": "1", "SER_MAX_QUEUE": "2", "SER_BODY_TIMEOUT_SEC": "3",
            "SER_TORCH_THREADS": "1", **{k: str(v) for k, v in extra.items()}}


@pytest.fixture(scope="module")
def server_tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("server_tmpdir")


@pytest.fixture(scope="module")
def server(models, server_tmp):
    """Default limits (25 MB, 600 s); one worker and a queue of 2 so that a burst fills it."""
    with svc.ServerProcess(_env(models["a"], server_tmp)) as proc:
        yield started(proc, server_tmp)


@pytest.fixture
def hostile(server, server_tmp):
    """The server; after the case: /health answers and its temp dir is empty."""
    yield server
    assert_clean(server, server_tmp)


def good_clip(seconds: float = 2.0, seed: int = 1) -> np.ndarray:
    return speechlike(seconds, seed=seed)


# ----------------------------------------------------------------------------- bodies and transport
def test_chunked_500mb_upload_refused_after_reading_at_most_26mb(hostile):
    status, body, sent = chunked_upload(hostile.host, hostile.port, 500, boundary="xXhostileXx")
    assert status == 413, (status, body[:300])
    detail = json.loads(body)["detail"]
    assert "upload limit of 25 MB" in detail
    read_mb = float(re.search(r"refused after reading ([\d.]+) MB", detail).group(1))
    assert read_mb <= 26.0
    assert sent < 60 * MB  # the client could not push the 500 MB (socket buffers aside)


def test_content_length_over_limit_refused_before_reading(hostile):
    head = (f"POST /ser/analyze HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            f"Content-Length: {500 * MB}\r\n\r\n").encode()
    status, body, sent = raw_request(hostile.host, hostile.port, head, [b"\0" * 65536] * 10)
    assert status == 413 and "over the upload limit" in json.loads(body)["detail"]


@pytest.mark.slow  # waits out the body timeout (3 s)
def test_slow_body_gets_408(hostile):
    head = (f"POST /ser/analyze HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            f"Content-Length: 100000\r\n\r\n").encode()
    t0 = time.perf_counter()
    status, body, _ = raw_request(hostile.host, hostile.port, head, [b"--b\r\n"], timeout=20)
    assert status == 408 and "did not arrive within 3 s" in json.loads(body)["detail"]
    assert time.perf_counter() - t0 < 15


def test_malformed_multipart_is_400(hostile):
    r = post(hostile.url, content=b"--nope\r\ngarbage", headers={"content-type": "multipart/form-data; boundary=zz"})
    assert r.status_code in (400, 422), r.text
    assert "detail" in r.json()


def test_json_body_instead_of_a_form_is_422(hostile):
    r = post(hostile.url, json={"file": "clip.wav"})
    assert_refused(r, 422, "file")


def test_too_many_form_fields_is_400(hostile):
    fields = [(f"f{i}", "x") for i in range(1200)]
    r = post(hostile.url, files={"file": ("a.wav", enc(good_clip()), "audio/wav")}, data=dict(fields))
    assert_refused(r, 400, "fields")


# ----------------------------------------------------------------------------- headers and sample rates
def test_655khz_flac_claiming_599s_refused_from_header(hostile):
    r = upload(hostile.url, flac_claiming(599, 655350), "hostile.flac")
    assert_refused(r, 400, "sample rate 655350 Hz", "4000-192000")


@pytest.mark.parametrize("sr", [8, 3999, 192001, 100_000_000])
def test_implausible_sample_rates_refused(hostile, sr):
    r = upload(hostile.url, enc(np.full(200, 0.1, np.float32), sr), f"sr{sr}.wav")
    assert_refused(r, 400, f"sample rate {sr} Hz")


@pytest.mark.parametrize("sr", [4000, 192000])
def test_edge_sample_rates_accepted(hostile, sr):
    x = good_clip(1.5)
    y = np.interp(np.arange(int(1.5 * sr)) * 16000 / sr, np.arange(x.size), x).astype(np.float32)
    r = upload(hostile.url, enc(y, sr))
    assert r.status_code == 200, r.text
    assert r.json()["meta"]["durationMs"] == 1500


def test_flac_claiming_10_hours_at_16k_refused_from_header(hostile):
    r = upload(hostile.url, flac_claiming(36000, 16000), "long.flac")
    assert_refused(r, 413, "36000.0 s long", "over the limit of 600 s")


def test_wav_data_size_lie_is_clamped_to_the_bytes_present(hostile):
    w = enc(good_clip(2.0))
    i = w.index(b"data")
    lie = w[:i + 4] + struct.pack("<I", 0x7FFFFFF0) + w[i + 8:]
    r = upload(hostile.url, lie)
    assert r.status_code == 200, r.text
    assert r.json()["meta"]["durationMs"] == 2000


def test_pipe_flac_without_length_decodes_like_the_normal_file(hostile):
    x = good_clip(3.0, seed=4)
    normal = upload(hostile.url, enc(x, fmt="FLAC"), "a.flac")
    piped = upload(hostile.url, pipe_flac(enc(x, fmt="FLAC")), "piped.flac")
    assert normal.status_code == 200 and piped.status_code == 200, piped.text
    assert without_latency(piped.json()) == without_latency(normal.json())


def test_pipe_flac_over_the_duration_limit_stops_reading(hostile):
    x = np.tile(good_clip(2.0), 301)  # 602 s, header says nothing about its length
    r = upload(hostile.url, pipe_flac(enc(x, fmt="FLAC")), "piped_long.flac")
    assert_refused(r, 413, "over the limit of 600 s", "did not give its length")


@pytest.mark.parametrize("fmt,subtype", [("WAV", "PCM_16"), ("FLAC", "PCM_16"), ("OGG", "VORBIS"),
                                         ("MP3", "MPEG_LAYER_III")])
def test_truncated_files(hostile, fmt, subtype):
    data = enc(good_clip(3.0), fmt=fmt, subtype=subtype)
    r = upload(hostile.url, data[: len(data) // 3], f"cut.{fmt.lower()}")
    if fmt in ("WAV", "MP3"):  # frames up to the cut decode: a shorter clip, answered
        assert r.status_code == 200, r.text
        assert 0 < r.json()["meta"]["durationMs"] < 3000
    else:  # the decoder loses sync (flac) or finds no complete page (ogg)
        text = assert_refused(r, 400, "cut.")
        assert "cannot decode audio" in text or "empty (zero samples)" in text


def test_header_only_wav_is_empty(hostile):
    r = upload(hostile.url, enc(good_clip())[:44])
    assert_refused(r, 400, "empty (zero samples)")


# ----------------------------------------------------------------------------- sample formats and channels
@pytest.mark.parametrize("fmt,subtype", [("WAV", "PCM_U8"), ("WAV", "PCM_24"), ("WAV", "PCM_32"), ("WAV", "FLOAT"),
                                         ("WAV", "DOUBLE"), ("FLAC", "PCM_24"), ("OGG", "VORBIS"),
                                         ("MP3", "MPEG_LAYER_III")])
def test_formats_and_bit_depths_answer(hostile, fmt, subtype):
    x = good_clip(2.5, seed=5)
    ref = upload(hostile.url, enc(x)).json()["overall"]["scores"]
    r = upload(hostile.url, enc(x, fmt=fmt, subtype=subtype), f"clip.{fmt.lower()}")
    assert r.status_code == 200, r.text
    got = r.json()["overall"]["scores"]
    assert max(abs(got[c] - ref[c]) for c in ref) < 0.05  # the same speech in another container


@pytest.mark.parametrize("channels", [1, 2, 8, 64])
def test_channel_counts_downmix(hostile, channels):
    x = good_clip(1.5, seed=6)
    r = upload(hostile.url, enc(np.tile(x[:, None], (1, channels))), f"ch{channels}.wav")
    assert r.status_code == 200, r.text
    assert r.json()["meta"]["durationMs"] == 1500


def test_65_channels_refused(hostile):
    r = upload(hostile.url, enc(np.tile(good_clip(0.5)[:, None], (1, 65))))
    assert_refused(r, 400, "65 channels", "at most 64")


def test_invalid_mp3_refused(hostile):
    r = upload(hostile.url, b"\xff\xfb\x90\x00" + b"\x00" * 4000, "fake.mp3")
    assert_refused(r, 400, "cannot decode audio")
    r = upload(hostile.url, b"ID3\x03\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 20, "fake2.mp3")
    assert_refused(r, 400, "cannot decode audio")


def test_zero_samples(hostile):
    assert_refused(upload(hostile.url, enc(np.zeros(0, np.float32))), 400, "empty")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_samples(hostile, bad):
    x = good_clip(1.0)
    x[123] = bad
    assert_refused(upload(hostile.url, enc(x, subtype="FLOAT")), 400, "NaN or infinite")


def test_silence(hostile):
    assert_refused(upload(hostile.url, enc(np.zeros(32000, np.float32), subtype="FLOAT")), 400, "silent")


@pytest.mark.parametrize("scale", [1e30, 1e300])
def test_loud_float_audio_is_normalised(hostile, scale):
    x = good_clip(2.0, seed=7).astype(np.float64)
    quiet = upload(hostile.url, enc(x / np.abs(x).max(), subtype="DOUBLE")).json()["overall"]["scores"]
    r = upload(hostile.url, enc(x * scale, subtype="DOUBLE"))
    assert r.status_code == 200, r.text
    loud = r.json()["overall"]["scores"]
    assert max(abs(loud[c] - quiet[c]) for c in quiet) < 1e-4  # the model hears the speech, not silence


@pytest.mark.slow  # decodes ten minutes of audio (2.4 s)
def test_ten_minutes_accepted_and_ten_minutes_plus_one_second_refused(hostile):
    over = enc(np.tile(good_clip(1.0, seed=8), 601), sr=16000)
    assert_refused(upload(hostile.url, over), 413, "601.0 s long", "over the limit of 600 s")
    x8k = np.tile(good_clip(2.0, seed=8)[::2], 300)  # 600 s at 8 kHz (9.6 MB)
    r = upload(hostile.url, enc(x8k, sr=8000), segment_ms=60000)
    assert r.status_code == 200, r.text
    assert r.json()["meta"]["durationMs"] == 600000 and len(r.json()["segments"]) == 10


# ----------------------------------------------------------------------------- bounded work
def test_short_segments_stay_short(hostile):
    """segment_ms under the 500 ms tail rule must not merge every window into one over the whole clip."""
    r = upload(hostile.url, enc(good_clip(5.0)), segment_ms=250, overlap_ms=0)
    assert r.status_code == 200, r.text
    assert len(r.json()["segments"]) == 20 and r.json()["segments"][0]["endMs"] == 250


def test_overlap_cannot_multiply_work(hostile):
    x = enc(np.tile(good_clip(2.0), 30))  # 60 s
    r = upload(hostile.url, x, segment_ms=30000, overlap_ms=29750)
    assert_refused(r, 400, "segment_ms=30000 with overlap_ms=29750", "2x the clip")
    ok = upload(hostile.url, x, segment_ms=30000, overlap_ms=15000)
    assert ok.status_code == 200 and len(ok.json()["segments"]) == 3


def test_full_queue_answers_503_with_retry_after(hostile):
    heavy = enc(np.tile(good_clip(2.0), 30))  # 60 s in 240 half-overlapping 500 ms segments: ~a second of work
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: upload(hostile.url, heavy, segment_ms=500, overlap_ms=250), range(8)))
    codes = sorted(r.status_code for r in results)
    assert set(codes) <= {200, 503}, codes
    busy = [r for r in results if r.status_code == 503]
    assert busy and codes.count(200) >= 3  # 1 worker + 2 queued always get through
    for r in busy:
        assert int(r.headers["retry-after"]) >= 1 and "busy" in r.json()["detail"]


def test_client_that_hangs_up_has_its_work_dropped(hostile):
    heavy = enc(np.tile(good_clip(2.0), 120))  # 240 s, 1920 segments of 250 ms: the heaviest allowed request
    t0 = time.perf_counter()
    full = upload(hostile.url, heavy, segment_ms=250, overlap_ms=125)
    full_sec = time.perf_counter() - t0
    assert full.status_code == 200 and len(full.json()["segments"]) > 1800
    before = httpx.get(hostile.url + "/health", timeout=10).json()["admission"]
    t0 = time.perf_counter()
    with pytest.raises(httpx.TimeoutException):
        upload_timeout = httpx.post(f"{hostile.url}/ser/analyze", files={"file": ("a.wav", heavy, "audio/wav")},
                                    data={"segment_ms": "250", "overlap_ms": "125"}, timeout=min(1.0, full_sec / 4))
        del upload_timeout
    while True:  # the server notices the hang-up and stops between inference chunks
        adm = httpx.get(hostile.url + "/health", timeout=10).json()["admission"]
        if adm["running"] == 0 and adm["inFlight"] == 0:
            break
        assert time.perf_counter() - t0 < full_sec + 30
        time.sleep(0.05)
    dropped_after = time.perf_counter() - t0
    assert adm["dropped"] == before["dropped"] + 1
    assert dropped_after < 0.8 * full_sec + 1.0, (dropped_after, full_sec)


# ----------------------------------------------------------------------------- form fields and echoes
@pytest.mark.parametrize("filename", ["../../etc/passwd", "/etc/shadow", "C:\\Windows\\win.ini", "a\x00b.wav",
                                      "ünïcode 語音.wav"])
def test_path_like_filenames_are_only_names(hostile, filename, server_tmp):
    r = upload(hostile.url, enc(good_clip()), filename)
    assert r.status_code == 200, r.text
    bad = upload(hostile.url, b"not audio at all" * 10, filename)
    assert_refused(bad, 400, "cannot decode audio")
    assert not Path("/etc/passwd.wav").exists()


def test_huge_filename_and_form_value_are_clipped_in_errors(hostile):
    r = upload(hostile.url, b"nope" * 100, "x" * 900 + ".wav")  # longer names: the multipart parser refuses
    text = assert_refused(r, 400, "cannot decode audio", "characters)")
    assert text.count("x") < 200
    r = upload(hostile.url, enc(good_clip()), segment_ms="9" * 500_000)
    text = assert_refused(r, 400, "segment_ms=", "500000 characters")
    r = upload(hostile.url, enc(good_clip()), language_hint="é" * 400_000)
    assert_refused(r, 400, "language_hint=")


def test_duplicate_form_fields_refused(hostile):
    r = post(hostile.url, files=[("file", ("a.wav", enc(good_clip()), "audio/wav")),
                                 ("file", ("b.wav", enc(good_clip(seed=2)), "audio/wav"))])
    assert_refused(r, 400, "'file' was sent 2 times")
    r = post(hostile.url, files={"file": ("a.wav", enc(good_clip()), "audio/wav")},
             data={"segment_ms": ["4000", "500"]})
    assert_refused(r, 400, "'segment_ms' was sent 2 times")


def test_missing_file_field(hostile):
    assert_refused(post(hostile.url, data={"segment_ms": "8000"}), 422, "file")
    assert_refused(post(hostile.url, files={"audio": ("a.wav", enc(good_clip()), "audio/wav")}), 422, "file")


def test_file_field_sent_as_text(hostile):
    r = post(hostile.url, data={"file": "clip.wav"})
    assert r.status_code in (400, 422), r.text
    assert "file" in r.text


def test_non_utf8_form_field(hostile):
    boundary = "bb"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
            f"Content-Type: audio/wav\r\n\r\n").encode() + enc(good_clip()) + \
        (f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"language_hint\"\r\n\r\n").encode() + \
        b"\xff\xfe\xc3(" + f"\r\n--{boundary}--\r\n".encode()
    r = post(hostile.url, content=body, headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert_refused(r, 400, "language_hint=", "not supported")


@pytest.mark.parametrize("hint", ["fr", "klingon", "en;DROP TABLE", "zh-TW-x"])
def test_unknown_language(hostile, hint):
    assert_refused(upload(hostile.url, enc(good_clip()), language_hint=hint), 400, "language_hint=", "not supported")


@pytest.mark.parametrize("field,value,words", [
    ("text4_entropy", "1e308", ("text4_entropy", "ln 4")),
    ("text4_entropy", "1.5", ("text4_entropy", "ln 4")),
    ("text4_entropy", "-0.1", ("text4_entropy", "ln 4")),
    ("text4_prob_ang", "1e308", ("text4_prob_ang", "[0, 1]")),
    ("text_negative_score", "2", ("text_negative_score", "[-1, 1]")),
    ("text_length_norm", "inf", ("text_length_norm", "finite")),
    ("text4_confidence", "nan", ("text4_confidence", "finite")),
    ("text4_ready", "2", ("text4_ready", "0/1")),
])
def test_text_features_out_of_range(hostile, field, value, words):
    assert_refused(upload(hostile.url, enc(good_clip()), **{field: value}), 400, *words)


def test_warmup_does_no_work_for_strangers(hostile):
    before = httpx.get(hostile.url + "/health", timeout=10).json()["admission"]["served"]
    w = httpx.get(hostile.url + "/warmup", timeout=10)
    assert w.status_code == 200 and w.json()["ranAt"] == "startup"
    assert httpx.get(hostile.url + "/health", timeout=10).json()["admission"]["served"] == before
    h = httpx.get(hostile.url + "/health", timeout=10).json()
    assert not any(isinstance(v, str) and v.startswith("/") for v in h.values())  # names, not server paths


# ----------------------------------------------------------------------------- deadline (own server)
@pytest.mark.slow  # starts its own server with a short deadline (5 s)
def test_request_deadline_answers_503(models, tmp_path):
    with svc.ServerProcess(_env(models["a"], tmp_path, SER_REQUEST_TIMEOUT_SEC="0.3", SER_WARMUP="0")) as proc:
        started(proc, tmp_path)
        heavy = enc(np.tile(good_clip(2.0), 120))
        r = upload(proc.url, heavy, segment_ms=250, overlap_ms=125)
        assert_refused(r, 503, "deadline of 0.3 s")
        assert int(r.headers["retry-after"]) >= 1
        w = httpx.get(proc.url + "/warmup", timeout=10).json()
        assert w["status"] == "not_run"
        assert_clean(proc, tmp_path)


# ----------------------------------------------------------------------------- fusion (own server)
@pytest.fixture(scope="module")
def fusion_server(models, fusion_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fusion_tmpdir")
    with svc.ServerProcess(_env(models["a"], tmp, SER_FUSION_DIR=str(fusion_dir))) as proc:
        started(proc, tmp)
        proc.tmpdir = tmp
        yield proc


@pytest.mark.parametrize("posted", [
    {"text4_prob_ang": "1e-300", "text4_prob_hap": "0", "text4_prob_neu": "0", "text4_prob_sad": "0"},
    {"text4_entropy": "1.3862943611198906", "text4_confidence": "0", "text_length_norm": "1"},
    {"text_negative": "1", "text_neutral": "0", "text_positive": "0", "text_negative_score": "-1"},
])
def test_fusion_extreme_text_features_never_500(fusion_server, posted):
    r = upload(fusion_server.url, enc(good_clip()), **posted)
    assert r.status_code in (200, 400), r.text
    if r.status_code == 200:
        f = r.json()["fusion"]
        assert f["enabled"] is True and (f["ready"] is False or all(math.isfinite(v) for v in f["scores"].values()))
    assert_clean(fusion_server, fusion_server.tmpdir)


def test_fusion_entropy_1e308_is_a_400_before_any_work(fusion_server):
    assert_refused(upload(fusion_server.url, enc(good_clip()), text4_entropy="1e308"), 400, "text4_entropy")
    assert_clean(fusion_server, fusion_server.tmpdir)


def test_asr_transcribe_refuses_hostile_audio(fusion_server):
    r = httpx.post(fusion_server.url + "/asr/transcribe",
                   files={"file": ("x.flac", flac_claiming(599, 655350), "audio/flac")}, timeout=60)
    assert_refused(r, 400, "sample rate 655350 Hz")
    r = httpx.post(fusion_server.url + "/asr/transcribe", files={"file": ("x.wav", enc(good_clip()), "audio/wav")},
                   data={"language": ["en", "zh"]}, timeout=60)
    assert_refused(r, 400, "'language' was sent 2 times")
    assert_clean(fusion_server, fusion_server.tmpdir)


# ----------------------------------------------------------------------------- non-finite answers (unit level)
def test_non_finite_model_output_is_422_and_fusion_not_ready(models):
    class NaNClassifier:
        labels = ["ang", "hap", "neu", "sad"]

        def predict_proba(self, clips, batch_size=8, max_duration_sec=None):
            return np.full((len(clips), 4), np.nan)

    class NaNFusion:
        components = {"asr": {"backend": "none"}}

        def predict(self, audio, sr, language=None, transcript=None):
            return {"label": "ang", "confidence": float("nan"), "fused_probs": {c: float("nan") for c in
                                                                                NaNClassifier.labels},
                    "temperature": 1.0, "audio_probs": None, "text_probs": None}

    model = svc.LoadedModel(name="nan", model_dir="nan", classifier=NaNClassifier())
    service = svc.SERService(svc.ServiceSettings(model_dir="x"), models={"en": model, "zh": model}, device="cpu")
    with pytest.raises(svc.RequestError, match="non-finite") as info:
        service.analyze(enc(good_clip()))
    assert info.value.status == 422
    service.fusion = NaNFusion()
    fused = service._fusion(np.zeros(16000, np.float32), "en", None, NaNClassifier.labels, np.full(4, 0.25), {})
    assert fused == {"enabled": True, "ready": False, "error": "the fusion model gave non-finite scores for this input"}


def test_echo_clips_long_values():
    assert admission.echo("short") == "'short'"
    long = admission.echo("y" * 10_000)
    assert len(long) < 120 and "10000 characters" in long


# ----------------------------------------------------------------------------- fault: killed mid-request
@pytest.mark.slow  # kills and restarts a server (11 s)
def test_killed_mid_request_then_restarted_answers_identically(models, tmp_path):
    data = enc(np.tile(good_clip(2.0, seed=9), 60))  # 120 s
    form = {"segment_ms": "500", "overlap_ms": "250"}
    env = _env(models["a"], tmp_path)
    with svc.ServerProcess(env) as first:
        reference = upload(first.url, data, **form)
        assert reference.status_code == 200
        box = {}
        worker = threading.Thread(target=lambda: box.setdefault("r", _try(upload, first.url, data, **form)))
        worker.start()
        for _ in range(200):  # wait until the request is being processed, then kill the server
            if httpx.get(first.url + "/health", timeout=10).json()["admission"]["running"]:
                break
            time.sleep(0.01)
        first.proc.kill()
        worker.join(60)
        assert isinstance(box.get("r"), Exception) or box["r"].status_code == 200
    with svc.ServerProcess(env) as second:
        started(second, tmp_path)
        again = upload(second.url, data, **form)
        assert again.status_code == 200
        assert without_latency(again.json()) == without_latency(reference.json())
        assert_clean(second, tmp_path)


def _try(fn, *args, **kw):
    try:
        return fn(*args, **kw)
    except Exception as exc:  # noqa: BLE001 - the server was killed under it
        return exc


# ----------------------------------------------------------------------------- the CLI side (ser predict/evaluate read files)
def test_cli_loader_reads_pipe_flac_and_tames_loud_float(tmp_path):
    from ser_helpers.audio import audio_duration, load_audio
    x = good_clip(2.5, seed=11)
    normal, piped, loud = tmp_path / "a.flac", tmp_path / "piped.flac", tmp_path / "loud.wav"
    normal.write_bytes(enc(x, fmt="FLAC"))
    piped.write_bytes(pipe_flac(enc(x, fmt="FLAC")))
    np.testing.assert_array_equal(load_audio(piped), load_audio(normal))
    assert audio_duration(piped) == pytest.approx(2.5)
    loud.write_bytes(enc(x.astype(np.float64) * 1e30, subtype="DOUBLE"))
    y = load_audio(loud)
    assert np.isfinite(y).all() and np.abs(y).max() == pytest.approx(1.0)
    with pytest.raises(AudioError, match="over the limit of 1 s"):
        load_audio(piped, max_duration_sec=1.0)


def test_inference_chunks_keep_the_batches_and_bound_long_segments():
    calls = []

    def fake_predict(clips):
        calls.append([len(c) for c in clips])
        return np.stack([np.full(4, len(c), float) for c in clips])

    clips = [np.zeros(8 * 16000)] * 40 + [np.zeros(3 * 16000)]
    out = admission.predict_in_chunks(fake_predict, clips)
    assert out[:, 0].tolist() == [len(c) for c in clips]
    assert [len(c) for c in calls] == [32, 9] and calls[0][0] == 3 * 16000  # the classifier's own length order
    calls.clear()
    admission.predict_in_chunks(fake_predict, [np.zeros(60 * 16000)] * 5)
    assert [len(c) for c in calls] == [2, 2, 1]  # 60 s segments: at most 120 s of audio per call
