"""The one audio loader: soundfile to read, downmix to mono, soxr to resample to 16 kHz, float32 out.

Every stage (manifests, training, evaluation, service, demo) reads audio through `load_audio`
or `decode_audio`, so every bad file gets the same clear `AudioError` naming the file and problem;
training and evaluation check a whole manifest first with `check_audio_files`.
Taught in notebook 03 (03_train_wav2vec2.ipynb: 16 kHz in, the padding-invariance check loads its clips with
`load_audio`) and notebook 05 (05_serve_ser_api.ipynb: an upload is decoded, downmixed and resampled to 16 kHz).
torchaudio is not used: it has no CPU wheel on the reference machine and its I/O needs the FFmpeg libraries.
"""
from __future__ import annotations

import io
import os
import re
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from .common import SAMPLE_RATE, SERError

#: peak amplitude below which a clip counts as silent (about -80 dBFS)
SILENCE_PEAK = 1e-4
DEFAULT_MAX_DURATION_SEC = 600.0


class AudioError(SERError, ValueError):
    """A file or buffer that cannot be used as speech audio; the message names it and says why."""


def to_mono_float32(data: np.ndarray) -> np.ndarray:
    """Downmix (frames, channels) or (frames,) to mono float32; ints are scaled to [-1, 1]."""
    data = np.asarray(data)
    if np.issubdtype(data.dtype, np.integer):
        info = np.iinfo(data.dtype)
        if info.min == 0:  # unsigned (8-bit wav): centre first
            data = (data.astype(np.float32) - (info.max + 1) / 2) / ((info.max + 1) / 2)
        else:
            data = data.astype(np.float32) / float(-info.min)
    data = data.astype(np.float32, copy=False)
    if data.ndim == 2:
        # soundfile gives (frames, channels); gradio/numpy users may give (channels, frames)
        if data.shape[0] < data.shape[1] and data.shape[0] <= 8:
            data = data.T
        data = data.mean(axis=1)
    elif data.ndim != 1:
        raise AudioError(f"audio array has {data.ndim} dimensions; expected 1 (mono) or 2 (frames x channels)")
    return np.ascontiguousarray(data, dtype=np.float32)


def resample(data: np.ndarray, sample_rate: int, target_sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Audio at `sample_rate` -> float32 at `target_sample_rate` (soxr, high quality)."""
    if int(sample_rate) == int(target_sample_rate):
        return data.astype(np.float32, copy=False)
    return soxr.resample(data, int(sample_rate), int(target_sample_rate), quality="HQ").astype(np.float32)


def validate(data: np.ndarray, sample_rate: int, name: str, max_duration_sec: float | None = DEFAULT_MAX_DURATION_SEC,
             min_duration_sec: float = 0.0, allow_silent: bool = False) -> np.ndarray:
    """Check a decoded mono clip; raise AudioError naming `name` and the problem."""
    if data.size == 0:
        raise AudioError(f"{name}: audio is empty (zero samples)")
    if not np.all(np.isfinite(data)):
        raise AudioError(f"{name}: audio contains NaN or infinite samples")
    dur = data.size / float(sample_rate)
    if max_duration_sec is not None and dur > max_duration_sec:
        raise AudioError(f"{name}: audio is {dur:.1f} s long, over the limit of {max_duration_sec:g} s")
    if dur < min_duration_sec:
        raise AudioError(f"{name}: audio is {dur:.3f} s long, under the minimum of {min_duration_sec:g} s")
    if not allow_silent and float(np.max(np.abs(data))) < SILENCE_PEAK:
        raise AudioError(f"{name}: audio is silent (peak amplitude below {SILENCE_PEAK:g})")
    return data


def prepare_array(data: np.ndarray, sample_rate: int, name: str = "<array>", target_sample_rate: int = SAMPLE_RATE,
                  max_duration_sec: float | None = DEFAULT_MAX_DURATION_SEC, min_duration_sec: float = 0.0,
                  allow_silent: bool = False) -> np.ndarray:
    """Mono + float32 + validate + resample an in-memory clip at `sample_rate` (e.g. a Gradio microphone
    recording) to `target_sample_rate`."""
    if sample_rate is None or int(sample_rate) <= 0:
        raise AudioError(f"{name}: invalid sample rate {sample_rate!r}")
    mono = to_mono_float32(data)
    if np.all(np.isfinite(mono)):
        mono = tame_peak(mono)
    validate(mono, int(sample_rate), name, max_duration_sec, min_duration_sec, allow_silent)
    return resample(mono, int(sample_rate), target_sample_rate)


#: libsndfile reports SF_COUNT_MAX frames when the header has no length (a FLAC or wav written to a pipe)
UNKNOWN_FRAMES = 1 << 62
#: an unknown length is read in blocks up to this many seconds when no duration limit is given
UNKNOWN_LENGTH_CAP_SEC = 3600.0


def read_block(f: "sf.SoundFile", frames: int, dtype: str = "float32") -> np.ndarray:
    """Up to `frames` frames (frames x channels) from an open SoundFile, straight from libsndfile: unlike
    `SoundFile.read` it never seeks, so it also reads a stream whose header has no length."""
    out = np.empty((int(frames), f.channels), dtype=dtype)
    ctype = {"float32": "float", "float64": "double"}[dtype]
    n = getattr(sf._snd, f"sf_readf_{ctype}")(f._file, sf._ffi.cast(f"{ctype} *", out.ctypes.data), int(frames))
    err = sf._snd.sf_error(f._file)
    if err:
        raise RuntimeError(sf._ffi.string(sf._snd.sf_error_number(err)).decode("utf-8", "replace"))
    return out[:n]


def _read(src, name: str, max_duration_sec: float | None = None):
    """soundfile read as float32; a stream whose header has no length is read block by block up to the limit."""
    try:
        with sf.SoundFile(src) as f:
            if 0 <= f.frames < UNKNOWN_FRAMES:
                data = f.read(dtype="float32", always_2d=False)
            else:
                cap = int((max_duration_sec or UNKNOWN_LENGTH_CAP_SEC) * f.samplerate) + 1
                block, parts, total = max(1024, (1 << 20) // max(1, f.channels)), [], 0
                while True:
                    chunk = read_block(f, block)
                    total += chunk.shape[0]
                    if total > cap:
                        raise AudioError(f"{name}: audio is over the limit of {cap / f.samplerate:.0f} s "
                                         f"(its header gives no length; reading stopped there)")
                    parts.append(chunk)
                    if chunk.shape[0] < block:
                        break
                data = np.concatenate(parts)
                data = data[:, 0] if data.shape[1] == 1 else data
            sr = f.samplerate
    except AudioError:
        raise
    except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError / TypeError
        msg = str(exc).strip() or exc.__class__.__name__
        msg = re.sub(r"<_io\.BytesIO object at 0x[0-9a-f]+>", "the upload", msg)
        msg = re.sub(r"^Error opening (the upload|[^:]*): ", "", msg)
        raise AudioError(f"{name}: cannot decode audio ({msg})") from exc
    return data, sr


def tame_peak(data: np.ndarray) -> np.ndarray:
    """Loud float audio (peak above 1, e.g. samples x 1e30) scaled to peak 1 in float64, so later float32
    arithmetic (the feature extractor's variance) cannot overflow; other clips are returned unchanged."""
    peak = float(np.max(np.abs(data))) if data.size else 0.0
    if peak > 1.0 and np.isfinite(peak):
        return (np.asarray(data, dtype=np.float64) / peak).astype(np.float32)
    return data


def load_audio(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE,
               max_duration_sec: float | None = DEFAULT_MAX_DURATION_SEC, min_duration_sec: float = 0.0,
               allow_silent: bool = False) -> np.ndarray:
    """Read any file soundfile reads (wav incl. 8/24-bit and extra RIFF chunks, flac, ogg) as mono float32 at
    `sample_rate`."""
    path = Path(path)
    name = str(path)
    if not path.exists():
        raise AudioError(f"{name}: file not found")
    if path.is_dir():
        raise AudioError(f"{name}: is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{name}: file is empty (0 bytes)")
    if max_duration_sec is not None:
        try:
            info = sf.info(str(path))
            if info.samplerate > 0 and info.frames < UNKNOWN_FRAMES and info.frames / info.samplerate > max_duration_sec:
                raise AudioError(f"{name}: audio is {info.frames / info.samplerate:.1f} s long, "
                                 f"over the limit of {max_duration_sec:g} s")
        except AudioError:
            raise
        except Exception:  # undecodable: _read reports it
            pass
    data, file_rate = _read(str(path), name, max_duration_sec)
    mono = tame_peak(to_mono_float32(data))
    validate(mono, file_rate, name, max_duration_sec, min_duration_sec, allow_silent)
    return resample(mono, file_rate, sample_rate)


def decode_audio(data: bytes, name: str = "<upload>", sample_rate: int = SAMPLE_RATE,
                 max_duration_sec: float | None = DEFAULT_MAX_DURATION_SEC, min_duration_sec: float = 0.0,
                 allow_silent: bool = False) -> np.ndarray:
    """Like load_audio, for bytes in memory (HTTP uploads): mono float32 at `sample_rate`. Never touches the
    filesystem."""
    if not data:
        raise AudioError(f"{name}: file is empty (0 bytes)")
    if max_duration_sec is not None:
        try:
            info = sf.info(io.BytesIO(data))
            if info.samplerate > 0 and info.frames < UNKNOWN_FRAMES and info.frames / info.samplerate > max_duration_sec:
                raise AudioError(f"{name}: audio is {info.frames / info.samplerate:.1f} s long, "
                                 f"over the limit of {max_duration_sec:g} s")
        except AudioError:
            raise
        except Exception:
            pass
    arr, file_rate = _read(io.BytesIO(data), name, max_duration_sec)
    mono = tame_peak(to_mono_float32(arr))
    validate(mono, file_rate, name, max_duration_sec, min_duration_sec, allow_silent)
    return resample(mono, file_rate, sample_rate)


def check_audio_files(paths, manifest_name: str = "manifest", sample_rate: int = SAMPLE_RATE,
                      progress: bool = False, limit: int = 10) -> list[float]:
    """Decode every file of a manifest's `path` column with `load_audio` before any model is loaded; one AudioError
    lists the bad rows (`<manifest_name> row N: <file>: <problem>`, the first `limit` of them). Returns each clip's
    duration in seconds, as decoded at `sample_rate` (training groups batches by it).

    It decodes, and does not only read headers, because a header cannot show what `load_audio` refuses later in
    training or evaluation (silent or NaN samples, a payload that does not decode): a header check would pass a file
    that then stops a long run halfway. The price is one extra read of each file (milliseconds for a short wav).
    Used by `ser train-wav2vec2` / `adapt-wav2vec2-head` (acoustic) and `ser evaluate-wav2vec2` (evaluate)."""
    from tqdm.auto import tqdm
    problems, durations = [], []
    for i, path in enumerate(tqdm(list(paths), desc="check audio", disable=not progress, leave=False)):
        row = f"{manifest_name} row {i + 2}"
        if not isinstance(path, str) or not path:
            problems.append(f"{row}: empty 'path'")
            continue
        try:
            durations.append(len(load_audio(path, sample_rate=sample_rate, max_duration_sec=None)) / sample_rate)
        except AudioError as exc:
            problems.append(f"{row}: {exc}")
    if problems:
        more = f" (and {len(problems) - limit} more)" if len(problems) > limit else ""
        raise AudioError(f"{len(problems)} bad audio file(s) in {manifest_name}:\n  " + "\n  ".join(problems[:limit])
                         + more)
    return durations


def audio_duration(path: str | os.PathLike) -> float:
    """Duration in seconds from the header (fast); AudioError if unreadable."""
    try:
        info = sf.info(str(path))
    except Exception as exc:
        raise AudioError(f"{path}: cannot decode audio ({str(exc).strip()})") from exc
    if info.samplerate <= 0:
        raise AudioError(f"{path}: invalid sample rate {info.samplerate}")
    if info.frames >= UNKNOWN_FRAMES:  # a stream written to a pipe: count by decoding
        return len(_read(str(path), str(path))[0]) / float(info.samplerate)
    return info.frames / float(info.samplerate)


def write_wav(path: str | os.PathLike, data: np.ndarray, sample_rate: int = SAMPLE_RATE,
              subtype: str = "PCM_16") -> Path:
    """Write a wav atomically (temp file + rename)."""
    from .common import atomic_path
    with atomic_path(path, suffix=".wav") as tmp:
        sf.write(str(tmp), np.asarray(data), sample_rate, subtype=subtype, format="WAV")
    return Path(path)
