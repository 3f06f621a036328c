"""The transcribers that recognise nothing themselves: `none` (--skip-asr), `reference` (the corpus's own ORACLE
transcripts) and `RoutedTranscriber`, which sends the languages a recogniser cannot hear to the reference path.

Taught in notebook 06 (06_build_fusion_features.ipynb); `RoutedTranscriber` also serves the fusion pipeline's
`/asr/transcribe` in notebook 05 (05_serve_ser_api.ipynb).
"""
from __future__ import annotations

import numpy as np


class NoTranscriber:
    """`--skip-asr`: every transcript is empty."""
    backend = "none"
    model_id = ""
    oracle = False

    def transcribe(self, audio: np.ndarray, language: str, reference: str | None = None) -> str:
        return ""


class ReferenceTranscriber:
    """The transcript the corpus ships (manifest column `transcript`): ORACLE text, not recognised speech."""
    backend = "reference"
    model_id = "manifest:transcript"
    oracle = True

    def transcribe(self, audio: np.ndarray, language: str, reference: str | None = None) -> str:
        return "" if reference is None else str(reference)


class RoutedTranscriber:
    """Inference on new audio for a pipeline trained on reference (ORACLE) transcripts: `asr` recognises the
    languages it can (English with tiny.en), the other languages keep the reference path (a given reference
    transcript, else "")."""
    oracle = False
    cacheable = True

    def __init__(self, asr, fallback=None):
        self.asr = asr
        self.fallback = fallback or ReferenceTranscriber()
        self.backend, self.model_id, self.engine = asr.backend, asr.model_id, getattr(asr, "engine", "")

    def recognises(self, language: str) -> bool:
        return getattr(self.asr, "recognises", lambda _l: True)(language)

    def transcribe(self, audio, language, reference=None) -> str:
        if self.recognises(language):
            return self.asr.transcribe(audio, language)
        return self.fallback.transcribe(audio, language, reference=reference)

    def transcribe_detailed(self, audio, language, reference=None) -> dict:
        if self.recognises(language) and hasattr(self.asr, "transcribe_detailed"):
            return self.asr.transcribe_detailed(audio, language)
        return {"text": self.transcribe(audio, language, reference), "segments": [], "language": language}

    def transcribe_batch(self, audios, languages, references=None, progress=None) -> list[str]:
        if hasattr(self.asr, "transcribe_batch"):
            return self.asr.transcribe_batch(audios, languages, references=references, progress=progress)
        refs = references if references is not None else [None] * len(audios)
        return [self.transcribe(a, lang, r) for a, lang, r in zip(audios, languages, refs)]

    def detect_language(self, audio):
        return getattr(self.asr, "detect_language", lambda _a: None)(audio)

    def __getattr__(self, name):  # model_name, compute_type, stats ... of the recogniser
        if name == "asr":
            raise AttributeError(name)
        return getattr(self.asr, name)
