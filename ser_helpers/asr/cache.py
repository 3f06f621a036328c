"""The transcript cache: one JSON file keyed by the audio CONTENT + backend + model + language, so a moved file
still hits and a changed file misses; a corrupt file is moved aside, writes are atomic.

Taught in notebook 06 (06_build_fusion_features.ipynb).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np

from ..common import write_json_atomic
from .hashing import audio_sha256

CACHE_VERSION = 1


class ASRCache:
    """Transcript cache in one JSON file, keyed by sha256(audio content) + backend + model + language.

    A corrupt file is renamed aside (`*.corrupt-<time>`) with a warning and the cache starts empty;
    `save()` writes atomically; `retry_empty=True` treats cached empty transcripts as misses.
    """

    def __init__(self, path: str | os.PathLike | None, retry_empty: bool = False, autosave_every: int = 50):
        self.path = Path(path) if path else None
        self.retry_empty = bool(retry_empty)
        self.autosave_every = int(autosave_every)
        self.entries: dict[str, dict] = {}
        self.hits = 0
        self.misses = 0
        self._dirty = 0
        self.corrupt_moved_to: Path | None = None
        if self.path is not None and self.path.exists():
            self._load()

    def _load(self) -> None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or not isinstance(data.get("entries"), dict):
                raise ValueError("not an ASR cache (no 'entries' object)")
            entries = {k: v for k, v in data["entries"].items() if isinstance(v, dict) and "text" in v}
        except (ValueError, UnicodeDecodeError, OSError) as exc:
            moved = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
            os.replace(self.path, moved)
            self.corrupt_moved_to = moved
            warnings.warn(f"{self.path}: ASR cache unreadable ({exc}); moved aside to {moved.name}, rebuilding",
                          stacklevel=3)
            entries = {}
        self.entries = entries

    @staticmethod
    def key(audio_hash: str, backend: str, model: str, language: str) -> str:
        return hashlib.sha256(f"{backend}|{model}|{language}|{audio_hash}".encode()).hexdigest()

    def lookup(self, audio_hash: str, backend: str, model: str, language: str) -> str | None:
        entry = self.entries.get(self.key(audio_hash, backend, model, language))
        if entry is None or (self.retry_empty and not str(entry.get("text", "")).strip()):
            self.misses += 1
            return None
        self.hits += 1
        return str(entry["text"])

    def store(self, audio_hash: str, backend: str, model: str, language: str, text: str,
              source: str = "") -> None:
        self.entries[self.key(audio_hash, backend, model, language)] = {
            "text": text, "backend": backend, "model": model, "language": language,
            "audio_sha256": audio_hash, "source": source}
        self._dirty += 1
        if self.path is not None and self.autosave_every and self._dirty >= self.autosave_every:
            self.save()

    def get_or_transcribe(self, audio: np.ndarray, language: str, transcriber, reference: str | None = None,
                          source: str = "", audio_hash: str | None = None) -> str:
        """Cached transcript of `audio`, transcribing (and storing) on a miss."""
        if not getattr(transcriber, "cacheable", False):  # reference / none: nothing worth caching
            return transcriber.transcribe(audio, language, reference=reference)
        audio_hash = audio_hash or audio_sha256(audio)
        backend, model = transcriber.backend, transcriber.model_id
        text = self.lookup(audio_hash, backend, model, language)
        if text is None:
            text = transcriber.transcribe(audio, language, reference=reference)
            self.store(audio_hash, backend, model, language, text, source=source)
        return text

    def save(self) -> Path | None:
        if self.path is None:
            return None
        write_json_atomic(self.path, {"version": CACHE_VERSION, "entries": self.entries})
        self._dirty = 0
        return self.path

    def stats(self) -> dict:
        return {"hits": self.hits, "misses": self.misses, "entries": len(self.entries),
                "path": str(self.path) if self.path else None,
                "corrupt_moved_to": str(self.corrupt_moved_to) if self.corrupt_moved_to else None}

