"""ASR backends and the content-hash transcript cache (tiny random whisper checkpoint built here)."""
import json
import shutil
import warnings

import numpy as np
import pytest

from ser_helpers import asr
from ser_helpers.audio import load_audio, write_wav
from ser_helpers.common import SERError


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory):
    return asr.make_tiny_whisper_checkpoint(tmp_path_factory.mktemp("whisper") / "tiny.pt", seed=0)


def _tone(freq=220.0, dur=0.6, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * dur)) / 16000
    return (0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.normal(size=t.size)).astype(np.float32)


class Counting:
    """Wraps a transcriber and counts real transcriptions (cache misses reach it, hits do not)."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0
        self.backend, self.model_id, self.oracle = inner.backend, inner.model_id, inner.oracle
        self.cacheable = getattr(inner, "cacheable", False)

    def transcribe(self, audio, language, reference=None):
        self.calls += 1
        return self.inner.transcribe(audio, language, reference=reference)


def test_whisper_checkpoint_transcribes_numpy_deterministically(tiny_whisper):
    tr = asr.get_transcriber("whisper", str(tiny_whisper), device="cpu", cpu_threads=1)
    assert tr.model_id.startswith("file:tiny.pt:") and not tr.oracle and not tr.fp16
    audio = _tone()
    en1, en2 = tr.transcribe(audio, "en"), tr.transcribe(audio, "en")
    zh = tr.transcribe(audio, "zh")
    assert isinstance(en1, str) and en1.strip(), "tiny checkpoint should decode some (nonsense) text"
    assert en1 == en2  # temperature 0: deterministic
    assert isinstance(zh, str)


def test_compute_type_mapping_and_errors(tiny_whisper):
    with pytest.warns(UserWarning, match="int8"):
        tr = asr.get_transcriber("whisper", str(tiny_whisper), compute_type="int8")
    assert tr.fp16 is False
    with pytest.raises(SERError, match="compute-type"):
        asr.get_transcriber("whisper", str(tiny_whisper), compute_type="float64")
    with pytest.raises(SERError, match="not a known model name"):
        asr.get_transcriber("whisper", "/no/such/checkpoint.pt")
    with pytest.raises(SERError, match="unknown ASR backend"):
        asr.get_transcriber("kaldi")


def test_reference_and_none_backends():
    ref = asr.get_transcriber("reference")
    assert ref.oracle and ref.transcribe(_tone(), "en", reference="hello there") == "hello there"
    assert asr.get_transcriber("none").transcribe(_tone(), "zh", reference="ignored") == ""


def test_cache_hit_after_move_miss_after_change(tmp_path, tiny_whisper):
    tr = Counting(asr.get_transcriber("whisper", str(tiny_whisper), cpu_threads=1))
    wav = write_wav(tmp_path / "a.wav", _tone(200.0))
    cache_path = tmp_path / "cache.json"
    cache = asr.ASRCache(cache_path)
    text = cache.get_or_transcribe(load_audio(wav), "en", tr, source=str(wav))
    cache.save()
    assert (tr.calls, cache.hits, cache.misses) == (1, 0, 1)

    moved = tmp_path / "elsewhere" / "b.wav"
    moved.parent.mkdir()
    shutil.move(wav, moved)
    cache2 = asr.ASRCache(cache_path)
    assert cache2.get_or_transcribe(load_audio(moved), "en", tr) == text
    assert (tr.calls, cache2.hits, cache2.misses) == (1, 1, 0)

    # another language is another key
    cache2.get_or_transcribe(load_audio(moved), "zh", tr)
    assert tr.calls == 2

    write_wav(moved, _tone(330.0, seed=1))  # same path, new content
    cache2.get_or_transcribe(load_audio(moved), "en", tr)
    assert tr.calls == 3 and cache2.misses == 2
    cache2.save()
    data = json.loads(cache_path.read_text())
    assert data["version"] == asr.CACHE_VERSION and len(data["entries"]) == 3


def test_corrupt_cache_is_moved_aside_and_rebuilt(tmp_path):
    path = tmp_path / "asr_cache.json"
    path.write_text('{"entries": {"abc": ')  # truncated write
    with pytest.warns(UserWarning, match="unreadable"):
        cache = asr.ASRCache(path)
    assert cache.entries == {} and not path.exists()
    assert cache.corrupt_moved_to is not None and cache.corrupt_moved_to.exists()
    tr = Counting(asr.get_transcriber("none"))
    tr.cacheable = True  # exercise the cache with a trivial backend
    cache.get_or_transcribe(_tone(), "en", tr)
    cache.save()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(asr.ASRCache(path).entries) == 1
    path.write_text('["not", "a", "cache"]')
    with pytest.warns(UserWarning):
        assert asr.ASRCache(path).entries == {}


def test_retry_empty_cache_reruns_empty_entries(tmp_path):
    audio = _tone()
    cache = asr.ASRCache(tmp_path / "c.json")
    h = asr.audio_sha256(audio)
    cache.store(h, "whisper", "m", "en", "")
    cache.store(h, "whisper", "m", "zh", "ni hao")
    assert asr.ASRCache(None).key(h, "whisper", "m", "en") != asr.ASRCache(None).key(h, "whisper", "m", "zh")
    assert cache.lookup(h, "whisper", "m", "en") == ""
    cache.save()
    retry = asr.ASRCache(tmp_path / "c.json", retry_empty=True)
    assert retry.lookup(h, "whisper", "m", "en") is None
    assert retry.lookup(h, "whisper", "m", "zh") == "ni hao"
    assert (retry.hits, retry.misses) == (1, 1)


def test_audio_hash_depends_on_content_only():
    a = _tone(200.0)
    assert asr.audio_sha256(a) == asr.audio_sha256(a.copy().astype(np.float64))
    b = a.copy()
    b[100] += 1e-3
    assert asr.audio_sha256(a) != asr.audio_sha256(b)
