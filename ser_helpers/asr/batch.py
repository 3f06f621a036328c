"""Recognising many clips at once: cache hits first, then every miss in ONE batch (packed windows when the
transcriber has `transcribe_batch`), the recognised transcripts stored back in the cache.

Taught in notebook 06 (06_build_fusion_features.ipynb).
"""
from __future__ import annotations

from typing import Callable

from .cache import ASRCache
from .hashing import audio_sha256


def transcribe_many(audios, languages, transcriber, cache: ASRCache | None = None, references=None,
                    sources=None, progress: Callable | None = None, audio_hashes=None) -> list[str]:
    """Transcribe a list of clips: cache hits first, then every miss in ONE batch (`transcribe_batch`, packed,
    when the transcriber has it; else clip by clip). `progress` wraps the iterable (e.g. tqdm)."""
    n = len(audios)
    refs = list(references) if references is not None else [None] * n
    srcs = list(sources) if sources is not None else [""] * n
    if not getattr(transcriber, "cacheable", False):  # reference / none
        it = progress(range(n)) if progress is not None else range(n)
        return [transcriber.transcribe(audios[i], languages[i], reference=refs[i]) for i in it]
    out: list[str | None] = [None] * n
    hashes = list(audio_hashes) if audio_hashes is not None else [audio_sha256(a) for a in audios]
    if cache is not None:
        for i in range(n):
            out[i] = cache.lookup(hashes[i], transcriber.backend, transcriber.model_id, languages[i])
    miss = [i for i in range(n) if out[i] is None]
    if miss:
        if hasattr(transcriber, "transcribe_batch"):
            texts = transcriber.transcribe_batch([audios[i] for i in miss], [languages[i] for i in miss],
                                                 references=[refs[i] for i in miss], progress=progress)
        else:
            it = progress(miss) if progress is not None else miss
            texts = [transcriber.transcribe(audios[i], languages[i], reference=refs[i]) for i in it]
        for i, text in zip(miss, texts):
            out[i] = text
            recognised = getattr(transcriber, "recognises", lambda _l: True)(languages[i])
            if cache is not None and recognised:  # a reference fallback is not a recognised transcript
                cache.store(hashes[i], transcriber.backend, transcriber.model_id, languages[i], text,
                            source=srcs[i])
    return [str(t) for t in out]

