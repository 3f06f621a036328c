"""Featurizer: the components of stage 06 (audio model per language, ASR, text models, text4 head) loaded once,
and the feature columns of a batch of clips or of one clip (`row`). The batch builder and the fusion predictor
(service, demo) compute features through it, so training rows and live rows are the same computation.

Taught in notebook 06 (06_build_fusion_features.ipynb).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..common import LABELS, MAX_DURATION_SEC, SCORING_BATCH_SIZE, SERError
from ..metrics import entropy
from .columns import FEATURE_CSV_COLUMNS, TEXT_LENGTH_SCALE, normalize_language


def _reorder_to_labels(P: np.ndarray, model_labels: Sequence[str], source: str) -> np.ndarray:
    from ..text import map_emotion_label
    codes = [map_emotion_label(lab) or str(lab) for lab in model_labels]
    missing = [c for c in LABELS if c not in codes]
    if missing:
        raise SERError(f"audio model {source}: its labels {list(model_labels)} lack {missing} "
                       f"(expected the codes {LABELS})")
    return np.stack([P[:, codes.index(c)] for c in LABELS], axis=1).astype(np.float64)


def inference_asr_spec(asr: dict) -> dict | None:
    """What recognises NEW audio for a pipeline whose features used `asr` (components["asr"]): its own Whisper;
    for reference (ORACLE) transcripts `asr["inference"]`, else the bundled Whisper tiny.en for English (when
    installed); None for `none` (--skip-asr: the text branch was trained on empty transcripts)."""
    backend = str(asr.get("backend") or "none").lower()
    if backend == "whisper":
        return {k: asr.get(k) for k in ("backend", "model", "device", "compute_type", "cpu_threads")}
    if backend == "reference":
        if isinstance(asr.get("inference"), dict):
            return dict(asr["inference"])
        return {"backend": "whisper", "model": "tiny.en", "languages": ["en"]}
    return None


def inference_transcriber(asr: dict, whisper_device: str | None = None):
    """The transcriber for new audio (see `inference_asr_spec`); languages it cannot recognise (Mandarin with an
    English-only model) keep the reference path: a given transcript, else ""."""
    from ..asr import NoTranscriber, ReferenceTranscriber, RoutedTranscriber, get_transcriber
    spec = inference_asr_spec(asr)
    if spec is None:
        return NoTranscriber() if str(asr.get("backend") or "none").lower() in ("none", "skip") else \
            ReferenceTranscriber()
    tr = get_transcriber("whisper", spec.get("model") or "tiny.en",
                         device=whisper_device or spec.get("device") or "cpu",
                         compute_type=spec.get("compute_type") or "", cpu_threads=int(spec.get("cpu_threads") or 8))
    if getattr(tr, "oracle", False):  # the bundled weights are missing: reference transcripts, as before
        return tr
    return RoutedTranscriber(tr, ReferenceTranscriber())


def _rows_by_model(models: dict, langs: Sequence[str], keep=None) -> list[tuple[object, list[int]]]:
    """(model, row indices) for each distinct model of `models` (language -> model; one model may serve several
    languages), in order of first use; rows without a model, or for which `keep(i)` is false, are left out."""
    groups: dict[int, tuple[object, list[int]]] = {}
    for i, lang in enumerate(langs):
        m = models.get(lang)
        if m is not None and (keep is None or keep(i)):
            groups.setdefault(id(m), (m, []))[1].append(i)
    return list(groups.values())


@dataclass
class Featurizer:
    """Loaded components (audio models per language, ASR, text models per language, text4 head) and the
    per-utterance feature computation. The batch builder and the fusion predictor both use it."""
    components: dict
    audio_models: dict = field(default_factory=dict)   # lang -> AudioClassifier
    transcriber: object = None
    text_models: dict = field(default_factory=dict)    # lang -> TextClassifier | None
    text4: object = None                               # Text4Head | TextClassifier (4-class) | None
    asr_cache: object = None
    batch_size: int = SCORING_BATCH_SIZE
    max_duration_sec: float = MAX_DURATION_SEC

    # -- construction
    @classmethod
    def from_components(cls, components: dict, audio_device: str | None = None, text_device: str | None = None,
                        whisper_device: str | None = None, asr_cache=None, transcriber=None,
                        load_audio: bool = True) -> "Featurizer":
        """Load every component named in `summary.json["components"]` (or `pipeline.json`). The ASR for NEW audio
        is `inference_transcriber(components["asr"])`: a pipeline trained on reference transcripts recognises
        English with the bundled Whisper tiny.en. `load_audio=False`: text components only."""
        from ..inference import AudioClassifier
        from ..text import Text4Head, TextClassifier
        comp = json.loads(json.dumps(components))  # a private copy
        audio_device = audio_device or comp.get("audio_device", "auto")
        text_device = text_device or comp.get("text_device", "auto")
        loaded: dict[str, object] = {}
        audio_models = {}
        for lang, src in (comp.get("audio_models") or {}).items():
            if src and load_audio:
                if src not in loaded:
                    loaded[src] = AudioClassifier.load(src, device=audio_device)
                audio_models[lang] = loaded[src]
        if not audio_models and load_audio:
            raise SERError("components name no audio model (audio_models.en / audio_models.zh)")
        transcriber = transcriber or inference_transcriber(comp.get("asr") or {}, whisper_device)
        text_models, by_src = {}, {}
        for lang, src in (comp.get("text_models") or {}).items():
            if src:
                if src not in by_src:
                    by_src[src] = TextClassifier.load(src, device=text_device)
                text_models[lang] = by_src[src]
        text4 = None
        kind = comp.get("text4_kind") or ("tfidf" if comp.get("text4_head") else "none")
        if comp.get("text4_head") and kind != "none":
            head_path = comp["text4_head"]
            if kind == "tfidf":
                text4 = Text4Head.load(head_path)
            else:
                text4 = by_src.get(head_path) or TextClassifier.load(head_path, device=text_device)
                if not text4.is_emotion4:
                    raise SERError(f"text4 model {head_path}: labels {text4.raw_labels} are not the 4 emotion codes")
        return cls(components=comp, audio_models=audio_models, transcriber=transcriber, text_models=text_models,
                   text4=text4, asr_cache=asr_cache, batch_size=int(comp.get("batch_size", SCORING_BATCH_SIZE)),
                   max_duration_sec=float(comp.get("max_duration_sec", MAX_DURATION_SEC)))

    @property
    def default_language(self) -> str:
        return self.components.get("default_language", "en")

    @property
    def has_sentiment(self) -> bool:
        return any(m is not None and m.is_sentiment for m in self.text_models.values())

    # -- the branches
    def language(self, value) -> str:
        return normalize_language(value, self.default_language)

    def transcribe(self, audio: np.ndarray, language=None, reference: str | None = None) -> str:
        """Transcript of one clip with the configured backend (cache first when one is attached)."""
        lang = self.language(language)
        if self.asr_cache is not None:
            return self.asr_cache.get_or_transcribe(audio, lang, self.transcriber, reference=reference)
        return self.transcriber.transcribe(audio, lang, reference=reference)

    def audio_columns(self, audios: Sequence[np.ndarray], languages: Sequence[str],
                      progress: bool = False) -> dict[str, np.ndarray]:
        """audio_prob_<code>, audio_confidence, audio_entropy: each clip scored by its language's model."""
        langs = [self.language(x) for x in languages]
        for lang in dict.fromkeys(langs):
            if self.audio_models.get(lang) is None:
                raise SERError(f"no audio model for language {lang!r} (give --audio-model-{lang}); "
                               f"models are given for {sorted(self.audio_models)}")
        P = np.zeros((len(audios), len(LABELS)))
        for clf, idx in _rows_by_model(self.audio_models, langs):
            probs = clf.predict_proba([audios[i] for i in idx], batch_size=self.batch_size,
                                      max_duration_sec=self.max_duration_sec, progress=progress)
            P[idx] = _reorder_to_labels(np.asarray(probs), clf.labels, getattr(clf, "model_dir", "?"))
        cols = {f"audio_prob_{c}": P[:, j] for j, c in enumerate(LABELS)}
        cols["audio_confidence"] = P.max(axis=1) if len(P) else np.zeros(0)
        cols["audio_entropy"] = entropy(P) if len(P) else np.zeros(0)
        return cols

    def text4_proba(self, transcripts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(P [n, 4] in LABELS order, ready [n]) from the text4 head; empty text -> uniform, ready 0."""
        from ..text import Text4Head
        n = len(transcripts)
        P = np.full((n, len(LABELS)), 1.0 / len(LABELS))
        ready = np.array([1 if str(t).strip() else 0 for t in transcripts], dtype=int)
        if self.text4 is None:
            return P, np.zeros(n, dtype=int)
        idx = np.where(ready == 1)[0]
        if len(idx):
            texts = [str(transcripts[i]) for i in idx]
            if isinstance(self.text4, Text4Head):
                P[idx] = self.text4.predict_proba(texts)
            else:
                P[idx] = self.text4.emotion4_proba(self.text4.predict_proba(texts))
        return P, ready

    def text_columns(self, transcripts: Sequence[str], languages: Sequence[str]) -> dict[str, list]:
        """Text sentiment (per-language model), raw top label, lengths, text4_* and lang_is_zh."""
        from ..text import SENTIMENTS
        texts = ["" if t is None or (isinstance(t, float) and np.isnan(t)) else str(t).strip() for t in transcripts]
        langs = [self.language(x) for x in languages]
        sent, sent_ready, top_label, top_conf, extra = self._text_model_scores(texts, langs)
        cols: dict[str, list | np.ndarray] = {f"text_{s}": sent[:, k] for k, s in enumerate(SENTIMENTS)}
        cols["text_negative_score"] = sent[:, 0] - sent[:, 2]
        cols["text_top_label_raw"] = top_label
        cols["text_top_conf_raw"] = top_conf
        lengths = np.array([len(t) for t in texts], dtype=int)
        cols["text_length"] = lengths
        cols["text_length_norm"] = np.minimum(1.0, lengths / TEXT_LENGTH_SCALE)
        P4, ready = self.text4_proba(texts)  # no head: uniform, not ready
        cols.update(self.text4_columns(P4, ready))
        cols["lang_is_zh"] = np.array([1.0 if lang == "zh" else 0.0 for lang in langs])
        if self.has_sentiment:
            cols["text_sentiment_ready"] = sent_ready
        cols.update(extra)
        return cols

    def _text_model_scores(self, texts: list[str], langs: list[str]):
        """What the per-language text models say of the non-empty texts: (sentiment [n, 3], sentiment ready [n],
        top raw label [n], its probability [n], {text_<label>: [n]} for labels that are not sentiments). No text
        model at all: NaN sentiment and confidence; a text without a model: uniform sentiment (when any model is a
        sentiment model), confidence 0."""
        from ..text import _safe_name
        n = len(texts)
        sent = np.full((n, 3), np.nan)
        sent_ready = np.zeros(n, dtype=int)
        top_label = [""] * n
        top_conf = np.full(n, np.nan)
        extra: dict[str, np.ndarray] = {}
        if not any(m is not None for m in self.text_models.values()):
            return sent, sent_ready, top_label, top_conf, extra
        if self.has_sentiment:
            sent[:] = 1.0 / 3.0
        top_conf[:] = 0.0
        for m, idx in _rows_by_model(self.text_models, langs, keep=lambda i: bool(texts[i])):
            P = m.predict_proba([texts[i] for i in idx])
            for r, i in enumerate(idx):
                j = int(P[r].argmax())
                top_label[i] = m.raw_labels[j]
                top_conf[i] = float(P[r, j])
            if m.is_sentiment:
                sent[idx] = m.sentiment_proba(P)
                sent_ready[idx] = 1
            for j, lab in enumerate(m.raw_labels):
                if m.is_sentiment and m.sentiment_map[j]:
                    continue
                name = f"text_{_safe_name(lab)}"
                if name in FEATURE_CSV_COLUMNS:
                    name = f"text_raw_{_safe_name(lab)}"
                extra.setdefault(name, np.zeros(n))[idx] = P[:, j]
        return sent, sent_ready, top_label, top_conf, extra

    @staticmethod
    def text4_columns(P4: np.ndarray, ready: np.ndarray) -> dict:
        cols = {f"text4_prob_{c}": P4[:, j] for j, c in enumerate(LABELS)}
        cols["text4_confidence"] = P4.max(axis=1) if len(P4) else np.zeros(0)
        cols["text4_entropy"] = entropy(P4) if len(P4) else np.zeros(0)
        cols["text4_ready"] = ready
        return cols

    def row(self, audio_16k: np.ndarray, language=None, transcript: str | None = None) -> dict:
        """Every feature column for one 16 kHz clip (plus `language` and `transcript`); the transcript is
        recognised with the configured ASR when not given."""
        lang = self.language(language)
        audio_16k = np.asarray(audio_16k, dtype=np.float32)
        if transcript is None:
            transcript = self.transcribe(audio_16k, lang)
        out = {"language": lang, "transcript": transcript}
        for cols in (self.audio_columns([audio_16k], [lang]), self.text_columns([transcript], [lang])):
            for k, v in cols.items():
                val = v[0]
                out[k] = val.item() if isinstance(val, np.generic) else val
        return out

