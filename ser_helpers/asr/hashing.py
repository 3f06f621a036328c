"""Content keys for the ASR stage: the sha256 of a decoded clip (the transcript cache's key, so a moved file still
hits and a changed file misses) and of a file (a checkpoint's identity in a model id).

Taught in notebook 06 (06_build_fusion_features.ipynb).
"""
from __future__ import annotations

import hashlib
import os

import numpy as np


def audio_sha256(audio: np.ndarray) -> str:
    """sha256 of a decoded clip's float32 samples: the same sound gives the same key wherever the file lives."""
    arr = np.ascontiguousarray(np.asarray(audio, dtype=np.float32))
    return hashlib.sha256(arr.tobytes()).hexdigest()


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()
