"""Decoding an upload with bounded memory: the header is checked first (`probing`), then the audio is decoded
block by block (downmix + streaming resample to 16 kHz), so an unknown length (a FLAC written to a pipe) is read
up to the limit and memory is bounded by the 16 kHz output; every decode reserves its bytes from one total budget
(`SER_DECODE_BUDGET_MB`, `DecodeBudget`). Loud float audio is scaled by its peak in float64.

Taught in notebook 05 (05_serve_ser_api.ipynb).
"""
from __future__ import annotations

import contextlib
import io
import math
import threading

import numpy as np

from ..common import SAMPLE_RATE
from .errors import RequestError
from .probing import Header, check_header, probe, undecodable
from .settings import AdmissionSettings
from .tickets import checkpoint

BLOCK_SAMPLES = 1 << 20          # samples (frames x channels) decoded per block


class DecodeBudget:
    """Bytes of decoding memory shared by all requests; a decode waits (within its deadline) for its share."""

    def __init__(self, total_bytes: int):
        self.total = int(total_bytes)
        self.used = 0
        self.peak = 0
        self._cond = threading.Condition()

    @contextlib.contextmanager
    def reserve(self, nbytes: int, name: str = "upload"):
        nbytes = int(nbytes)
        if nbytes > self.total:
            raise RequestError(413, f"{name}: decoding it needs about {nbytes / 1048576:.0f} MB, over the decode "
                                    f"budget of {self.total / 1048576:.0f} MB (SER_DECODE_BUDGET_MB)")
        with self._cond:
            while self.used + nbytes > self.total:
                checkpoint()
                self._cond.wait(timeout=0.1)
            self.used += nbytes
            self.peak = max(self.peak, self.used)
        try:
            yield
        finally:
            with self._cond:
                self.used -= nbytes
                self._cond.notify_all()


_budget = DecodeBudget(int(AdmissionSettings().decode_budget_mb * 1048576))


def set_decode_budget(total_mb: float) -> DecodeBudget:
    global _budget
    _budget = DecodeBudget(int(total_mb * 1048576))
    return _budget


def decode_budget() -> DecodeBudget:
    return _budget


def tame_peak(y: np.ndarray) -> np.ndarray:
    """Scale a clip whose peak is above 1 (loud float audio) down to peak 1, in float64; float32 out."""
    y = np.asarray(y)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak > 1.0 and math.isfinite(peak):
        y = np.asarray(y, dtype=np.float64) / peak
    return np.asarray(y, dtype=np.float32)


def decode_upload(data: bytes, name: str = "upload", max_duration_sec: float | None = 600.0,
                  min_duration_sec: float = 0.0, sample_rate: int = SAMPLE_RATE, silence_peak: float = 1e-4,
                  budget: DecodeBudget | None = None) -> np.ndarray:
    """Upload bytes -> mono float32 at `sample_rate`, refusing from the header what can be refused there and
    decoding block by block (memory bounded by the output); RequestError 400/413 naming `name` otherwise.

    For a 16 kHz file the samples equal `audio.decode_audio`'s; other rates go through the same soxr HQ
    resampler as a stream (same numbers as the one-shot call)."""
    import soundfile as sf
    if not data:
        raise RequestError(400, f"{name}: file is empty (0 bytes)")
    try:
        f = sf.SoundFile(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - LibsndfileError, RuntimeError, TypeError
        raise undecodable(name, exc) from None
    with f:
        h = probe(f)
        check_header(h, name, max_duration_sec)
        y, frames = _decode_blocks(f, h, name, max_duration_sec, sample_rate, budget or _budget)
    return _usable_clip(y, frames / float(h.samplerate), name, min_duration_sec, silence_peak)


def _decode_blocks(f, h: Header, name: str, max_duration_sec: float | None, sample_rate: int,
                   budget: DecodeBudget) -> tuple[np.ndarray, int]:
    """The mono samples at `sample_rate` and the number of frames read, decoded block by block within a reservation
    of `budget`; 413 past `max_duration_sec` (when the header did not give the length), 400 on NaN/Inf samples
    or a stream that breaks off."""
    import soxr
    from ..audio import read_block
    file_rate, ch = h.samplerate, h.channels
    max_frames = None if max_duration_sec is None else int(math.floor(max_duration_sec * file_rate)) + 1
    wide = h.subtype in ("FLOAT", "DOUBLE")   # float files can be arbitrarily loud: work in float64
    dtype = "float64" if wide else "float32"
    block = max(1024, BLOCK_SAMPLES // ch)
    need = _decode_bytes(h, max_frames, sample_rate, block, 8 if wide else 4)
    stream = (None if file_rate == sample_rate
              else soxr.ResampleStream(file_rate, sample_rate, 1, dtype=dtype, quality="HQ"))
    with budget.reserve(need, name):
        parts: list[np.ndarray] = []
        total = 0
        while True:
            checkpoint()
            try:
                chunk = read_block(f, block, dtype)
            except Exception as exc:  # noqa: BLE001 - a truncated or corrupt stream mid-way
                raise undecodable(name, exc) from None
            n = chunk.shape[0]
            last = n < block
            total += n
            if max_frames is not None and total > max_frames:
                raise RequestError(413, f"{name}: audio is over the limit of {max_duration_sec:g} s "
                                        f"(decoding stopped there; the header did not give its length)")
            if n and not np.isfinite(chunk).all():
                raise RequestError(400, f"{name}: audio contains NaN or infinite samples")
            mono = chunk[:, 0] if ch == 1 else chunk.mean(axis=1)
            if stream is not None:
                mono = stream.resample_chunk(np.ascontiguousarray(mono), last=last)
            if mono.size:
                parts.append(np.array(mono, copy=True))
            if last:
                break
        return (np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)), total


def _decode_bytes(h: Header, max_frames: int | None, sample_rate: int, block: int, sample_bytes: int) -> int:
    """The bytes one decode reserves: its output twice (the blocks and the joined clip) and three input blocks;
    the output of a header without a length is counted at the duration limit (600 s without one)."""
    expect = h.frames if h.frames is not None else max_frames
    if expect is None:
        expect = int(600 * h.samplerate)
    out_bytes = int(expect * sample_rate / h.samplerate + 1024) * sample_bytes
    return 2 * out_bytes + block * h.channels * sample_bytes * 3


def _usable_clip(y: np.ndarray, duration_sec: float, name: str, min_duration_sec: float,
                 silence_peak: float) -> np.ndarray:
    """The decoded clip with its peak tamed; 400 when it is empty, not finite, too short or silent."""
    if duration_sec == 0 or y.size == 0:
        raise RequestError(400, f"{name}: audio is empty (zero samples)")
    if not np.isfinite(y).all():
        raise RequestError(400, f"{name}: sample values are too large to process")
    if duration_sec < min_duration_sec:
        raise RequestError(400, f"{name}: audio is {duration_sec:.3f} s long, under the minimum of "
                                f"{min_duration_sec:g} s")
    y = tame_peak(y)
    if float(np.max(np.abs(y))) < silence_peak:
        raise RequestError(400, f"{name}: audio is silent (peak amplitude below {silence_peak:g})")
    return y
