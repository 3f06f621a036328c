"""espeak-ng through ctypes: speak one utterance and write its 16 kHz wav (noise, gain, silence added).

Determinism: espeak-ng keeps state between calls, so each utterance is rendered in a fresh forked
process (`forked.run_forked`) after `espeak_ng_SetRandSeed`. Taught in notebook 00
(`00_make_demo_corpus.ipynb`).
"""
from __future__ import annotations

import ctypes
import io
from pathlib import Path

import numpy as np
import soundfile as sf

from ..audio import resample
from ..common import SAMPLE_RATE, SERError
from .settings import ESPEAK_SR, MAX_CLIP_SEC


_ESPEAK: dict = {}
_SYNTH_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
_CHUNKS: list = []


def _espeak_callback(wav, n, _events):
    if n > 0:
        _CHUNKS.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
    return 0


_CALLBACK = _SYNTH_CB(_espeak_callback)


def _espeak():
    """Load and initialise libespeak-ng once per process (children inherit it through fork)."""
    if "lib" in _ESPEAK:
        return _ESPEAK["lib"]
    try:
        import espeakng_loader
    except ImportError as exc:  # pragma: no cover
        raise SERError("the corpus generator needs the package espeakng-loader (pip install espeakng-loader)") from exc
    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                 ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
    sr = lib.espeak_Initialize(2, 0, espeakng_loader.get_data_path().encode(), 0)  # 2 = synchronous
    if sr != ESPEAK_SR:
        raise SERError(f"espeak-ng initialisation failed or gave sample rate {sr} (expected {ESPEAK_SR})")
    lib.espeak_SetSynthCallback(_CALLBACK)
    # load a voice once here: a forked child that sets its own voice then starts from loaded tables (4 ms less
    # per utterance). Measured on the whole default corpus: byte-identical wavs (synthesising here would not be)
    lib.espeak_SetVoiceByName(b"en-us")
    _ESPEAK["lib"] = lib
    return lib


def espeak_synth(text: str, voice: str, rate: int, pitch: int, pitch_range: int, volume: int = 60) -> np.ndarray:
    """Speak `text` with an espeak-ng voice; int16 samples at 22050 Hz. Call it in a fresh process for identical bytes."""
    lib = _espeak()
    _CHUNKS.clear()
    lib.espeak_ng_SetRandSeed(12345)
    if lib.espeak_SetVoiceByName(voice.encode()) != 0:
        raise SERError(f"espeak-ng has no voice {voice!r}")
    # espeakRATE=1, espeakVOLUME=2, espeakPITCH=3, espeakRANGE=4
    for param, value in ((1, rate), (2, volume), (3, pitch), (4, pitch_range)):
        lib.espeak_SetParameter(param, int(value), 0)
    data = text.encode("utf-8") + b"\0"
    err = lib.espeak_Synth(data, len(data), 0, 0, 0, 1, None, None)  # 1 = espeakCHARS_UTF8
    lib.espeak_Synchronize()
    if err != 0:
        raise SERError(f"espeak-ng failed ({err}) on {text!r}")
    return np.concatenate(_CHUNKS) if _CHUNKS else np.zeros(0, np.int16)


def _render(job: dict) -> tuple[str, float]:
    """Render one utterance (runs in its own forked process) and write its 16 kHz wav; returns (rel path, seconds).
    Everything it uses is imported at module level, in the parent: a child that imported soundfile itself paid
    ~20 ms per clip for it (default corpus: 70.7 s -> 52.6 s from this alone)."""
    raw = espeak_synth(job["text"], job["voice"], job["rate"], job["pitch"], job["range"])
    if raw.size == 0:
        raise SERError(f"espeak-ng produced no audio for {job['rel']} ({job['text']!r})")
    speech = resample(raw.astype(np.float32) / 32768.0, ESPEAK_SR, SAMPLE_RATE)
    speech = speech[: int(MAX_CLIP_SEC * SAMPLE_RATE)]
    rng = np.random.default_rng(job["noise_seed"])
    speech = speech * (0.55 * 10 ** (job["gain_db"] / 20.0))
    lead = np.zeros(int(job["lead"] * SAMPLE_RATE), np.float32)
    trail = np.zeros(int(job["trail"] * SAMPLE_RATE), np.float32)
    clip = np.concatenate([lead, speech, trail])
    rms = float(np.sqrt(np.mean(speech ** 2)) + 1e-9)
    noise = rng.standard_normal(clip.size).astype(np.float32)
    # mildly coloured (low-passed) background noise
    noise = np.convolve(noise, np.array([0.5, 0.3, 0.2], np.float32), mode="same")
    noise *= rms / (float(np.sqrt(np.mean(noise ** 2))) + 1e-9) * 10 ** (-job["snr_db"] / 20.0)
    clip = np.tanh(clip + noise).astype(np.float32)  # soft limiter: no hard clipping
    path = Path(job["root"]) / job["rel"]
    buf = io.BytesIO()
    sf.write(buf, clip, SAMPLE_RATE, subtype="PCM_16", format="WAV")
    path.write_bytes(buf.getvalue())
    return job["rel"], clip.size / SAMPLE_RATE
