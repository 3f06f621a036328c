"""Stage 06: multimodal fusion features. Per utterance: the audio model of its language (emotion
probabilities), a transcript (Whisper, the corpus's ORACLE transcripts, or none; cached by audio content),
text sentiment probabilities (pretrained sequence classifiers) and a 4-class text-emotion head.

    res = build_fusion_features(train_manifest=..., val_manifest=..., test_manifest=..., output_dir=...,
                                audio_model_en=dir, audio_model_zh=dir, asr_backend="reference")
    feat = Featurizer.from_components(res.summary["components"])     # the same computation, one clip at a time
    row = feat.row(audio_16k, "en", transcript=None)                  # dict of every feature column
"""
from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .common import (LABELS, SAMPLE_RATE, SERError, add_split_overlap_flag, check_splits, read_manifest,
                     write_csv_atomic, write_json_atomic)
from .layout import RunLayout
from .metrics import entropy

FEATURE_CSV_COLUMNS = [
    "path", "label", "label_id", "language", "transcript",
    "audio_prob_ang", "audio_prob_hap", "audio_prob_neu", "audio_prob_sad", "audio_confidence", "audio_entropy",
    "text_negative", "text_neutral", "text_positive", "text_negative_score", "text_top_label_raw",
    "text_top_conf_raw", "text_length", "text_length_norm",
    "text4_prob_ang", "text4_prob_hap", "text4_prob_neu", "text4_prob_sad", "text4_confidence", "text4_entropy",
    "text4_ready", "lang_is_zh"]
METADATA_COLUMNS = ["speaker", "dialog_type", "source_dataset"]
ID_COLUMNS = ["path", "label", "label_id", "language", "transcript"]
STRING_FEATURES = {"text_top_label_raw"}
#: not used as model inputs (raw count: text_length_norm carries it scaled)
NON_MODEL_COLUMNS = {"text_length"}
LANGUAGES = ("en", "zh")
SPLITS = ("train", "val", "test")
LANGUAGE_ALIASES = {"en": "en", "eng": "en", "english": "en", "en-us": "en", "en_us": "en", "en-gb": "en",
                    "zh": "zh", "zho": "zh", "chi": "zh", "cmn": "zh", "chinese": "zh", "mandarin": "zh",
                    "zh-cn": "zh", "zh_cn": "zh", "zh-hans": "zh"}
TEXT_LENGTH_SCALE = 256.0


def normalize_language(value, default: str = "en", where: str = "") -> str:
    """'en'/'english'/'en-US' -> 'en', 'zh'/'mandarin'/'zh-CN' -> 'zh'; empty -> default; else SERError."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or not str(value).strip():
        return default
    code = LANGUAGE_ALIASES.get(str(value).strip().lower())
    if code is None:
        raise SERError(f"{where}unknown language {value!r}; expected one of {list(LANGUAGES)}")
    return code


def _reorder_to_labels(P: np.ndarray, model_labels: Sequence[str], source: str) -> np.ndarray:
    from .text import map_emotion_label
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
    from .asr import NoTranscriber, ReferenceTranscriber, RoutedTranscriber, get_transcriber
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


# ----------------------------------------------------------------------------- the featurizer
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
    batch_size: int = 8
    max_duration_sec: float = 15.0

    # -- construction
    @classmethod
    def from_components(cls, components: dict, audio_device: str | None = None, text_device: str | None = None,
                        whisper_device: str | None = None, asr_cache=None, transcriber=None,
                        load_audio: bool = True) -> "Featurizer":
        """Load every component named in `summary.json["components"]` (or `pipeline.json`). The ASR for NEW audio
        is `inference_transcriber(components["asr"])`: a pipeline trained on reference transcripts recognises
        English with the bundled Whisper tiny.en. `load_audio=False`: text components only."""
        from .inference import AudioClassifier
        from .text import Text4Head, TextClassifier
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
                   text4=text4, asr_cache=asr_cache, batch_size=int(comp.get("batch_size", 8)),
                   max_duration_sec=float(comp.get("max_duration_sec", 15.0)))

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
        P = np.zeros((len(audios), len(LABELS)))
        groups: dict[int, list[int]] = {}
        models = {}
        for i, lang in enumerate(langs):
            clf = self.audio_models.get(lang)
            if clf is None:
                raise SERError(f"no audio model for language {lang!r} (give --audio-model-{lang}); "
                               f"models are given for {sorted(self.audio_models)}")
            groups.setdefault(id(clf), []).append(i)
            models[id(clf)] = clf
        for key, idx in groups.items():
            clf = models[key]
            probs = clf.predict_proba([audios[i] for i in idx], batch_size=self.batch_size,
                                      max_duration_sec=self.max_duration_sec, progress=progress)
            P[idx] = _reorder_to_labels(np.asarray(probs), clf.labels, getattr(clf, "model_dir", "?"))
        cols = {f"audio_prob_{c}": P[:, j] for j, c in enumerate(LABELS)}
        cols["audio_confidence"] = P.max(axis=1) if len(P) else np.zeros(0)
        cols["audio_entropy"] = entropy(P) if len(P) else np.zeros(0)
        return cols

    def text4_proba(self, transcripts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(P [n, 4] in LABELS order, ready [n]) from the text4 head; empty text -> uniform, ready 0."""
        from .text import Text4Head
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
        from .text import SENTIMENTS, _safe_name
        n = len(transcripts)
        texts = ["" if t is None or (isinstance(t, float) and np.isnan(t)) else str(t).strip() for t in transcripts]
        langs = [self.language(x) for x in languages]
        cols: dict[str, list | np.ndarray] = {}
        any_model = any(m is not None for m in self.text_models.values())
        sent = np.full((n, 3), np.nan)
        top_label = [""] * n
        top_conf = np.full(n, np.nan)
        extra: dict[str, np.ndarray] = {}
        sent_ready = np.zeros(n, dtype=int)
        if any_model:
            if self.has_sentiment:
                sent[:] = 1.0 / 3.0
            top_conf[:] = 0.0
            by_model: dict[int, list[int]] = {}
            models = {}
            for i, lang in enumerate(langs):
                m = self.text_models.get(lang)
                if m is not None and texts[i]:
                    by_model.setdefault(id(m), []).append(i)
                    models[id(m)] = m
            for key, idx in by_model.items():
                m = models[key]
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
        for k, s in enumerate(SENTIMENTS):
            cols[f"text_{s}"] = sent[:, k]
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


# ----------------------------------------------------------------------------- the batch builder
@dataclass
class FeatureBuildResult:
    output_dir: Path
    paths: dict
    summary: dict
    frames: dict = field(repr=False, default_factory=dict)


def _read_split(path, name: str, default_language: str, max_samples: int, seed: int):
    df = read_manifest(path, labels=LABELS)
    where = f"{path}: "
    if "language" not in df.columns:
        df["language"] = default_language
    df["language"] = [normalize_language(v, default_language, f"{where}row {i + 2}, column 'language': ")
                      for i, v in enumerate(df["language"])]
    if "transcript" not in df.columns:
        df["transcript"] = ""
    df["transcript"] = df["transcript"].fillna("").astype(str)
    for col in METADATA_COLUMNS:
        if col not in df.columns:
            df[col] = ""
        df[col] = df[col].fillna("").astype(str)
    if max_samples and max_samples > 0 and len(df) > max_samples:
        df = df.sample(n=int(max_samples), random_state=seed).sort_index()
    return df.reset_index(drop=True)


def feature_columns_by_mode(df, text4_kind: str) -> dict[str, list[str]]:
    """Numeric, NaN-free feature columns of each mode (what the fusion stage uses as is)."""
    def usable(c):
        return (c in df.columns and c not in STRING_FEATURES and c not in NON_MODEL_COLUMNS
                and np.issubdtype(df[c].dtype, np.number) and not df[c].isna().any())
    ordered = [c for c in FEATURE_CSV_COLUMNS if c not in ID_COLUMNS] + \
              [c for c in df.columns if c not in FEATURE_CSV_COLUMNS and c not in METADATA_COLUMNS]
    audio = [c for c in ordered if c.startswith("audio_") and usable(c)]
    text = [c for c in ordered if c.startswith("text") and usable(c)
            and not (text4_kind == "none" and c.startswith("text4_"))]
    ctx = ["lang_is_zh"] if usable("lang_is_zh") else []
    return {"audio_only": audio + ctx, "text_only": text + ctx, "fusion": audio + text + ctx}


def _raw_metrics(df) -> dict:
    """Accuracy / macro-F1 of argmax(audio_prob_*) and argmax(text4_prob_*) against the labels."""
    from .metrics import classification_metrics
    out = {}
    y = df["label_id"].to_numpy()
    for name, prefix in (("audio", "audio_prob_"), ("text4", "text4_prob_")):
        cols = [f"{prefix}{c}" for c in LABELS]
        P = df[cols].to_numpy(dtype=np.float64)
        if len(P) == 0 or np.isnan(P).any():
            continue
        m = classification_metrics(y, P)
        out[name] = {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "ua": m["ua"], "n": m["n"]}
    return out


def build_fusion_features(train_manifest: str, val_manifest: str, test_manifest: str, output_dir: str,
                          audio_model_en: str = "", audio_model_zh: str = "", text_model_en: str = "",
                          text_model_zh: str = "", sample_rate: int = SAMPLE_RATE, audio_device: str = "auto",
                          text_device: str = "auto", default_language: str = "en", skip_asr: bool = False,
                          whisper_model: str = "small", whisper_device: str = "cpu", whisper_compute_type: str = "",
                          whisper_cpu_threads: int = 8, asr_cache_json: str = "", retry_empty_cache: bool = False,
                          max_samples: int = 0, asr_backend: str = "whisper", text4_head: str = "tfidf",
                          seed: int = 42, batch_size: int = 8, max_duration_sec: float = 15.0,
                          oof_folds: int = 5, allow_split_overlap: bool = False) -> FeatureBuildResult:
    """Build `{train,val,test}_features.csv` + `summary.json` (+ ASR cache, text4 head) in `output_dir`."""
    import pandas as pd
    from tqdm.auto import tqdm

    from .asr import ASRCache, get_transcriber, transcribe_many
    from .audio import load_audio
    from .common import set_seed
    from .text import Text4Head, text4_out_of_fold

    t_start = time.perf_counter()
    set_seed(seed)
    timings: dict[str, float] = {}
    if int(sample_rate) != SAMPLE_RATE:
        raise SERError(f"--sample-rate {sample_rate}: the audio models and Whisper take {SAMPLE_RATE} Hz audio")
    default_language = normalize_language(default_language, "en", "--default-language: ")
    backend = "none" if skip_asr else (asr_backend or "whisper").lower()
    text4_head = (text4_head or "tfidf").strip()
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)

    # manifests
    t = time.perf_counter()
    manifests = {"train": train_manifest, "val": val_manifest, "test": test_manifest}
    frames = {s: _read_split(p, s, default_language, max_samples, seed) for s, p in manifests.items()}
    split_check = check_splits(frames, allow_split_overlap, {s: str(p) for s, p in manifests.items()})
    present = sorted({lang for df in frames.values() for lang in df["language"]})
    audio_models = {"en": audio_model_en or None, "zh": audio_model_zh or None}
    for lang in present:
        if not audio_models[lang]:
            raise SERError(f"manifests have {lang!r} rows but no --audio-model-{lang} was given "
                           f"(one model may serve both languages: pass it to both flags)")
    for lang, src in audio_models.items():
        if src and Path(src).expanduser().exists():
            audio_models[lang] = str(Path(src).expanduser().resolve())
    text_models = {"en": text_model_en or None, "zh": text_model_zh or None}
    for lang, src in text_models.items():
        if src and Path(src).expanduser().exists():
            text_models[lang] = str(Path(src).expanduser().resolve())
    if text4_head not in ("tfidf", "none"):
        p4 = Path(text4_head).expanduser()
        if not p4.is_dir():
            raise SERError(f"--text4-head {text4_head!r}: expected tfidf, none or a 4-class text model directory")
        text4_head = str(p4.resolve())
    text4_kind = text4_head if text4_head in ("tfidf", "none") else "hf"
    timings["read_manifests_sec"] = time.perf_counter() - t

    # components (what the fusion predictor reloads)
    t = time.perf_counter()
    transcriber = get_transcriber(backend, whisper_model, device=whisper_device, compute_type=whisper_compute_type,
                                  cpu_threads=whisper_cpu_threads)
    if backend == "whisper" and transcriber.backend != "whisper":  # tiny.en without its wheel: warned once
        backend = transcriber.backend
    asr_model = (str(Path(whisper_model).expanduser().resolve()) if backend == "whisper"
                 and Path(whisper_model).expanduser().exists() else whisper_model) if backend == "whisper" \
        else transcriber.model_id
    asr_info = {"backend": backend, "model": asr_model, "model_id": transcriber.model_id,
                "engine": getattr(transcriber, "engine", "openai-whisper" if backend == "whisper" else ""),
                "oracle": bool(transcriber.oracle), "device": whisper_device,
                "compute_type": whisper_compute_type, "cpu_threads": int(whisper_cpu_threads)}
    if backend == "whisper" and getattr(transcriber, "english_only", False):
        asr_info["languages"] = ["en"]  # other languages: their reference (ORACLE) transcripts
    if backend == "reference":  # new audio at inference: the bundled Whisper tiny.en recognises English
        asr_info["inference"] = {"backend": "whisper", "model": "tiny.en", "languages": ["en"],
                                 "compute_type": whisper_compute_type, "cpu_threads": int(whisper_cpu_threads)}
    components = {
        "audio_models": {lang: audio_models[lang] for lang in LANGUAGES},
        "default_language": default_language,
        "asr": asr_info,
        "text_models": text_models,
        "text4_head": None if text4_kind == "none" else (text4_head if text4_kind == "hf" else None),
        "text4_kind": text4_kind,
        "audio_device": audio_device, "text_device": text_device,
        "batch_size": int(batch_size), "max_duration_sec": float(max_duration_sec), "sample_rate": SAMPLE_RATE,
    }
    feat = Featurizer.from_components(components, transcriber=transcriber)  # text4 head: fitted below
    timings["load_models_sec"] = time.perf_counter() - t

    # audio
    t = time.perf_counter()
    audios = {}
    for split, df in frames.items():
        clips = []
        for i, path in enumerate(tqdm(df["path"], desc=f"load audio ({split})", leave=False)):
            try:
                clips.append(load_audio(path, target_sr=SAMPLE_RATE, max_duration_sec=None))
            except SERError as exc:  # name the manifest row too
                raise type(exc)(f"{manifests[split]}: row {i + 2} (column 'path'): {exc}") from exc
        audios[split] = clips
    timings["load_audio_sec"] = time.perf_counter() - t
    t = time.perf_counter()
    audio_cols = {s: feat.audio_columns(audios[s], frames[s]["language"].tolist(), progress=True) for s in SPLITS}
    timings["audio_model_sec"] = time.perf_counter() - t

    # ASR
    t = time.perf_counter()
    cache_path = Path(asr_cache_json) if asr_cache_json else out / "asr_cache.json"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cache = ASRCache(cache_path if backend == "whisper" else None, retry_empty=retry_empty_cache)
    for w in caught:
        warnings.warn(str(w.message), stacklevel=2)
    feat.asr_cache = cache
    transcripts = {}
    for split, df in frames.items():
        transcripts[split] = transcribe_many(
            audios[split], df["language"].tolist(), transcriber, cache=cache if backend == "whisper" else None,
            references=df["transcript"].tolist(), sources=df["path"].tolist(),
            progress=lambda it, split=split: tqdm(it, desc=f"ASR {backend} ({split})", leave=False))
    if backend == "whisper":
        cache.save()
    elif not cache_path.exists():  # keep the run layout: an (empty) cache; reference/none are never cached
        ASRCache(cache_path).save()
    timings["asr_sec"] = time.perf_counter() - t

    # text4 head (trained on TRAIN transcripts; train rows scored out-of-fold)
    t = time.perf_counter()
    train_df = frames["train"]
    oof = None
    text4_info: dict = {"kind": text4_kind}
    if text4_kind == "tfidf":
        tr_texts = transcripts["train"]
        if any(str(x).strip() for x in tr_texts):
            head = Text4Head(seed=seed).fit(tr_texts, train_df["label"].tolist())
            head_dir = out / "text4_head"
            head.save(head_dir)
            components["text4_head"] = str(head_dir.resolve())
            feat.text4 = head
            spk = [s or f"row{i}" for i, s in enumerate(train_df["speaker"])]
            oof = text4_out_of_fold(tr_texts, train_df["label"].tolist(), spk, n_splits=oof_folds, seed=seed)
            text4_info.update({"n_train": head.n_train, "oof": {"n_splits": oof_folds,
                                                                "grouped_by": ["speaker", "sentence"]}})
        else:
            warnings.warn("no non-empty train transcripts: the text4 head is not trained (text4_ready = 0)",
                          stacklevel=2)
            components["text4_kind"] = text4_kind = "none"
            components["text4_head"] = None
    elif text4_kind == "hf":
        text4_info["note"] = "fine-tuned text model: train rows are in-sample scores"
    timings["text4_fit_sec"] = time.perf_counter() - t

    t = time.perf_counter()
    results = {}
    for split, df in frames.items():
        tcols = feat.text_columns(transcripts[split], df["language"].tolist())
        if split == "train" and oof is not None:
            tcols.update(Featurizer.text4_columns(oof[0], oof[1]))
        rows = pd.DataFrame({"path": df["path"], "label": df["label"],
                             "label_id": [LABELS.index(x) for x in df["label"]], "language": df["language"],
                             "transcript": transcripts[split]})
        for k, v in {**audio_cols[split], **tcols}.items():
            rows[k] = v
        for c in METADATA_COLUMNS:
            rows[c] = df[c].values
        extras = [c for c in rows.columns if c not in FEATURE_CSV_COLUMNS and c not in METADATA_COLUMNS]
        results[split] = rows[FEATURE_CSV_COLUMNS + METADATA_COLUMNS + extras]
    timings["text_sec"] = time.perf_counter() - t

    # write
    paths = {}
    for split, rows in results.items():
        paths[split] = write_csv_atomic(out / f"{split}_features.csv", rows)
    timings["total_sec"] = time.perf_counter() - t_start
    summary = {
        "split_check": split_check,
        "rows": {s: {lang: int((results[s]["language"] == lang).sum()) for lang in LANGUAGES} for s in SPLITS},
        "rows_total": {s: int(len(results[s])) for s in SPLITS},
        "feature_columns": feature_columns_by_mode(results["train"], text4_kind),
        "components": components,
        "transcripts_oracle": bool(transcriber.oracle),
        # languages whose transcripts are the reference ones although a recogniser ran (tiny.en: Mandarin)
        "transcripts_oracle_languages": sorted(lang for lang in present if transcriber.oracle or (
            backend == "whisper" and not getattr(transcriber, "recognises", lambda _l: True)(lang))),
        "asr_cache": cache.stats() if backend == "whisper" else {"hits": 0, "misses": 0, "entries": 0,
                                                                  "path": None, "note": f"not used ({backend})"},
        "timings": {k: round(v, 4) for k, v in timings.items()},
        "audio_confidence": {f"{s}_mean": float(results[s]["audio_confidence"].mean()) for s in SPLITS},
        "text4": text4_info,
        "raw_metrics": {s: _raw_metrics(results[s]) for s in SPLITS},
        "manifests": {s: str(Path(p).resolve()) for s, p in manifests.items()},
        "max_samples": int(max_samples), "seed": int(seed),
        "columns": list(results["train"].columns),
    }
    write_json_atomic(out / "summary.json", summary)
    paths["summary"] = out / "summary.json"
    return FeatureBuildResult(out, paths, summary, results)


def build_asr_features(features_dir: str, splits: Sequence[str] = ("test",), languages: Sequence[str] = ("en",),
                       whisper_model: str = "tiny.en", whisper_device: str = "cpu", whisper_compute_type: str = "",
                       whisper_cpu_threads: int = 8, asr_cache_json: str = "", text_device: str = "auto",
                       max_rows: int = 0) -> dict:
    """Recognise the `languages` rows of `{split}_features.csv` (built from reference transcripts) with a real ASR
    and write `{split}_features_asr.csv`: those rows only, the same columns, the recognised transcript and the
    text features computed from it by the SAME text components (audio columns unchanged), plus
    `reference_transcript`. Records {wer, timings, ...} under `asr_eval` in summary.json and returns it.
    Mandarin rows are not recognised (tiny.en is English-only): they keep their reference transcripts elsewhere."""
    import pandas as pd
    from tqdm.auto import tqdm

    from .asr import ASRCache, get_transcriber, transcribe_many, wer
    from .audio import load_audio
    out = Path(features_dir)
    summary_path = out / "summary.json"
    if not summary_path.exists():
        raise SERError(f"{summary_path}: not found; build the fusion features first")
    summary = json.loads(summary_path.read_text())
    base = ((summary.get("components") or {}).get("asr") or {}).get("backend")
    if base != "reference":
        info = {"skipped": f"the features already use ASR backend {base!r}, not reference transcripts: "
                           f"their WER needs no second pass"}
        summary["asr_eval"] = info
        write_json_atomic(summary_path, summary)
        return info
    t0 = time.perf_counter()
    transcriber = get_transcriber("whisper", whisper_model, device=whisper_device, compute_type=whisper_compute_type,
                                  cpu_threads=whisper_cpu_threads)
    if getattr(transcriber, "oracle", True) or transcriber.backend != "whisper":
        info = {"skipped": f"no speech recogniser for {whisper_model!r} (see the warning above): no ASR rows"}
        summary["asr_eval"] = info
        write_json_atomic(summary_path, summary)
        return info
    feat = Featurizer.from_components(summary["components"], text_device=text_device, transcriber=transcriber,
                                      load_audio=False)
    cache = ASRCache(Path(asr_cache_json) if asr_cache_json else out / "asr_cache.json")
    langs = [normalize_language(x) for x in languages]
    info: dict = {"asr": {"backend": transcriber.backend, "engine": getattr(transcriber, "engine", ""),
                          "model": whisper_model, "model_id": transcriber.model_id,
                          "compute_type": getattr(transcriber, "compute_type", whisper_compute_type),
                          "cpu_threads": int(getattr(transcriber, "cpu_threads", whisper_cpu_threads))},
                  "languages": langs, "splits": {}, "numbers": "spelled out before scoring (10:15 = ten fifteen)"}
    all_refs, all_hyps = [], []
    for split in splits:
        src = out / f"{split}_features.csv"
        if not src.exists():
            raise SERError(f"{src}: not found; build the fusion features first")
        df = pd.read_csv(src, keep_default_na=False)
        df = df[df["language"].isin(langs)].reset_index(drop=True)
        if max_rows and len(df) > max_rows:
            df = df.head(int(max_rows))
        t = time.perf_counter()
        audios = [load_audio(p, target_sr=SAMPLE_RATE) for p in tqdm(df["path"], desc=f"load audio ({split})",
                                                                    leave=False)]
        t_load = time.perf_counter() - t
        t = time.perf_counter()
        misses0 = cache.misses
        hyps = transcribe_many(audios, df["language"].tolist(), transcriber, cache=cache, sources=df["path"].tolist(),
                               progress=lambda it, split=split: tqdm(it, desc=f"ASR tiny.en ({split})", leave=False))
        t_asr = time.perf_counter() - t
        refs = df["transcript"].astype(str).tolist()
        rows = df.copy()
        rows["transcript"] = hyps
        for k, v in feat.text_columns(hyps, rows["language"].tolist()).items():
            rows[k] = v
        rows["reference_transcript"] = refs
        path = write_csv_atomic(out / f"{split}_features_asr.csv", rows)
        w = wer(refs, hyps)
        recognised = cache.misses - misses0
        info["splits"][split] = {"file": path.name, "rows": int(len(rows)), "wer": w["wer"], "errors": w["errors"],
                                 "ref_words": w["ref_words"], "exact": w["exact"],
                                 "wer_numbers_as_written": wer(refs, hyps, numbers="keep")["wer"],
                                 "recognised": int(recognised), "cache_hits": int(len(rows) - recognised),
                                 "load_audio_sec": round(t_load, 3), "asr_sec": round(t_asr, 3),
                                 "asr_sec_per_recognised_clip": round(t_asr / recognised, 4) if recognised else None,
                                 "audio_sec": round(sum(a.size for a in audios) / SAMPLE_RATE, 2),
                                 "text4_reference": _raw_metrics(df).get("text4"),
                                 "text4_recognised": _raw_metrics(rows).get("text4")}
        all_refs += refs
        all_hyps += hyps
    cache.save()
    info["wer"] = wer(all_refs, all_hyps)["wer"] if all_refs else None
    info["packing"] = dict(getattr(transcriber, "stats", {}) or {})
    info["total_sec"] = round(time.perf_counter() - t0, 3)
    summary["asr_eval"] = info
    write_json_atomic(summary_path, summary)
    return info


def compare_recognised_transcripts(fusion_dir: str, features_dir: str, split: str = "test",
                                   output_json: str = "", missing_ok: bool = False) -> dict | None:
    """What a real recogniser costs the fused model: its macro-F1 (and accuracy, UA) on the SAME rows of
    `{split}_features.csv` (reference transcripts) and `{split}_features_asr.csv` (recognised transcripts).
    Written to `output_json` (default `{fusion_dir}/../asr_vs_reference.json`) for the report."""
    import pandas as pd

    from .asr import wer
    from .fusion import load_fusion_model
    from .metrics import classification_metrics
    features_dir, fusion_dir = Path(features_dir), Path(fusion_dir)
    asr_path, ref_path = features_dir / f"{split}_features_asr.csv", features_dir / f"{split}_features.csv"
    for p in (asr_path, ref_path):
        if not p.exists():
            if missing_ok:
                return None
            raise SERError(f"{p}: not found (notebook 06 writes it; build_asr_features for the recognised rows)")
    asr_df = pd.read_csv(asr_path, keep_default_na=False)
    ref_df = pd.read_csv(ref_path, keep_default_na=False)
    ref_df = ref_df.set_index("path").loc[asr_df["path"]].reset_index()  # the same rows, same order
    model = load_fusion_model(fusion_dir)
    out = {"fusion_dir": str(fusion_dir), "split": split, "rows": int(len(asr_df)),
           "languages": sorted(set(asr_df["language"])), "mode": model.mode}
    y = asr_df["label_id"].to_numpy()
    for name, df in (("reference", ref_df), ("recognised", asr_df)):
        P = model.predict_proba(df, df["language"].tolist())
        m = classification_metrics(y, P)
        out[name] = {"macro_f1": m["macro_f1"], "accuracy": m["accuracy"], "ua": m["ua"]}
        if name == "recognised" and "reference_transcript" in df.columns:
            out["wer"] = wer(df["reference_transcript"].astype(str).tolist(), df["transcript"].astype(str).tolist())["wer"]
    out["macro_f1_cost"] = out["reference"]["macro_f1"] - out["recognised"]["macro_f1"]
    path = Path(output_json) if output_json else fusion_dir.parent / "asr_vs_reference.json"
    write_json_atomic(path, out)
    out["path"] = str(path)
    return out


def register_cli(subparsers) -> None:
    p = subparsers.add_parser("build-fusion-features",
                              help="audio-model probabilities + ASR transcripts + text features per utterance")
    p.add_argument("--train-manifest", required=True)
    p.add_argument("--val-manifest", required=True)
    p.add_argument("--test-manifest", required=True)
    p.add_argument("--output-dir", required=True)
    p.add_argument("--audio-model-en", default="")
    p.add_argument("--audio-model-zh", default="")
    p.add_argument("--text-model-en", default="")
    p.add_argument("--text-model-zh", default="")
    p.add_argument("--sample-rate", type=int, default=16000)
    p.add_argument("--audio-device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--text-device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--default-language", choices=["en", "zh"], default="en")
    p.add_argument("--skip-asr", action="store_true")
    p.add_argument("--whisper-model", default="small",
                   help="tiny.en (the bundled weights), a model size, a CTranslate2 dir (faster-whisper) or a .pt "
                        "checkpoint file (openai-whisper)")
    p.add_argument("--whisper-device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--whisper-compute-type", default="",
                   help="faster-whisper's: int8 | float32 | float16 | int8_float16 ...; default int8 on cpu, float16 "
                        "on CUDA (openai-whisper: float16 = fp16 on CUDA, int8 runs as float32)")
    p.add_argument("--whisper-cpu-threads", type=int, default=8)
    p.add_argument("--asr-cache-json", default="", help="default: <output-dir>/asr_cache.json")
    p.add_argument("--retry-empty-cache", action="store_true")
    p.add_argument("--max-samples", type=int, default=0, help="rows per split (0 = all)")
    p.add_argument("--asr-backend", choices=["whisper", "reference"], default="whisper",
                   help="reference = the manifest's transcript column (ORACLE transcripts)")
    p.add_argument("--text4-head", default="tfidf", help="tfidf | none | a 4-class text-emotion model dir")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-duration-sec", type=float, default=15.0)
    add_split_overlap_flag(p)

    def run(args):
        kw = {k: v for k, v in vars(args).items() if k not in ("func", "command")}
        res = build_fusion_features(**kw)
        s = res.summary
        print(json.dumps({"output_dir": str(res.output_dir), "rows": s["rows"], "asr": s["components"]["asr"],
                          "asr_cache": {k: s["asr_cache"].get(k) for k in ("hits", "misses")},
                          "raw_metrics": s["raw_metrics"], "timings": s["timings"]}, indent=2))
        return 0

    p.set_defaults(func=run)


# ----------------------------------------------------------------------------- notebook helpers
def train_sentiment_model_from_manifest(train_manifest: str, output_dir: str, val_manifest: str = "",
                                        seed: int = 42, epochs: int = 8) -> Path:
    """The smoke profile's tiny local 3-class sentiment model, trained on the train manifest's transcripts
    (ang/sad -> negative, neu -> neutral, hap -> positive). Returns its directory (a --text-model-en value)."""
    from .text import make_tiny_text_model
    tr = read_manifest(train_manifest, labels=LABELS)
    if "transcript" not in tr.columns:
        raise SERError(f"{train_manifest}: no 'transcript' column to train a sentiment model on")
    va = read_manifest(val_manifest, labels=LABELS) if val_manifest else None
    vt = va["transcript"].fillna("").tolist() if va is not None and "transcript" in va.columns else []
    vl = va["label"].tolist() if vt else []
    return make_tiny_text_model(output_dir, tr["transcript"].fillna("").tolist(), tr["label"].tolist(),
                                val_texts=vt, val_labels=vl, seed=seed, epochs=epochs)


def describe_asr(summary: dict) -> str:
    """One plain sentence on where the transcripts come from (ORACLE when backend=reference)."""
    asr = summary["components"]["asr"]
    if asr["backend"] == "reference":
        live = asr.get("inference") or {}
        return ("Transcripts are ORACLE: the corpus's own reference transcripts (manifest column `transcript`), "
                "not speech recognition. Text scores here are an upper bound of what ASR text would give."
                + (f" New audio (demo, service) is recognised with Whisper `{live.get('model')}` for "
                   f"{', '.join(live.get('languages') or [])}; Mandarin keeps reference transcripts."
                   if live else ""))
    if asr["backend"] == "none":
        return "ASR was skipped: every transcript is empty, so text features are uninformative (text4_ready = 0)."
    c = summary.get("asr_cache", {})
    only = asr.get("languages")
    return (f"Transcripts are recognised by Whisper ({asr['model']}, {asr.get('engine') or 'whisper'}, "
            f"{asr.get('device', 'cpu')}); cache hits {c.get('hits', 0)}, misses {c.get('misses', 0)}."
            + (f" Only {', '.join(only)} is recognised: Mandarin rows keep their reference (ORACLE) transcripts."
               if only else ""))


def describe_asr_eval(info: dict | None) -> str:
    """One paragraph on the real-ASR evaluation of notebook 06 (WER, time)."""
    if not info:
        return "Real ASR evaluation skipped (asr_eval_model = \"\"): the text branch is only ever seen with ORACLE text."
    if info.get("skipped"):
        return f"Real ASR evaluation skipped: {info['skipped']}."
    asr = info.get("asr") or {}
    parts = []
    for split, m in (info.get("splits") or {}).items():
        per = m.get("asr_sec_per_recognised_clip")
        parts.append(f"{split}: {m['rows']} English rows, WER {m['wer']:.3f} ({m['errors']} errors / {m['ref_words']} "
                     f"words; {m['exact']} rows exact), {m['recognised']} recognised in {m['asr_sec']:.1f} s"
                     + (f" ({per:.2f} s per clip)" if per else "") + f", {m['cache_hits']} from the cache")
    return (f"Recognised with {asr.get('engine')} `{asr.get('model')}` ({asr.get('compute_type')}, "
            f"{asr.get('cpu_threads')} threads): " + "; ".join(parts) + f". Overall WER {info.get('wer', float('nan')):.3f}.")


def asr_eval_table(info: dict | None):
    """Per split: rows, WER, time, and the text4 head's macro-F1 on reference vs recognised transcripts."""
    import pandas as pd
    rows = []
    for split, m in ((info or {}).get("splits") or {}).items():
        rows.append({"split": split, "rows": m["rows"], "WER": round(m["wer"], 4),
                     "WER (digits kept)": round(m["wer_numbers_as_written"], 4),
                     "asr_sec": m["asr_sec"], "sec_per_clip": m.get("asr_sec_per_recognised_clip"),
                     "text4 macro-F1 (reference)": round((m.get("text4_reference") or {}).get("macro_f1", float("nan")), 4),
                     "text4 macro-F1 (recognised)": round((m.get("text4_recognised") or {}).get("macro_f1", float("nan")), 4)})
    return pd.DataFrame(rows)


def recognised_examples(features_dir: str | Path, n: int = 8, seed: int = 0, split: str = "test"):
    """A few rows of `{split}_features_asr.csv`: label, reference and recognised transcript (None when absent)."""
    import pandas as pd
    path = Path(features_dir) / f"{split}_features_asr.csv"
    if not path.exists():
        return None
    df = pd.read_csv(path, keep_default_na=False)
    k = min(n, len(df))
    sample = df.sample(n=k, random_state=seed) if k else df
    return sample[["label", "reference_transcript", "transcript"]].rename(
        columns={"reference_transcript": "reference", "transcript": "recognised"}).reset_index(drop=True)


def describe_asr_cost(cmp: dict | None) -> str:
    """One sentence: the fused model's macro-F1 with reference vs recognised transcripts on the same rows."""
    if not cmp:
        return "No recognised test rows (notebook 06 ran without asr_eval_model): nothing to compare."
    return (f"fusion_best on the same {cmp['rows']} {'/'.join(cmp['languages'])} {cmp['split']} rows: macro-F1 "
            f"{cmp['reference']['macro_f1']:.3f} with reference (ORACLE) transcripts, "
            f"{cmp['recognised']['macro_f1']:.3f} with recognised ones (WER {cmp.get('wer', float('nan')):.3f}): "
            f"a real recogniser costs {cmp['macro_f1_cost']:+.3f} macro-F1.")


def transcript_table(df, n: int = 12, seed: int = 0):
    """A few rows: language, label, transcript and the argmax of each modality."""
    from .common import display_name
    k = min(n, len(df))
    sample = df.sample(n=k, random_state=seed) if k else df
    out = sample[["language", "label", "transcript"]].copy()
    out["label"] = [display_name(x) for x in out["label"]]
    for name, prefix in (("audio_pred", "audio_prob_"), ("text4_pred", "text4_prob_")):
        P = sample[[f"{prefix}{c}" for c in LABELS]].to_numpy(dtype=float)
        out[name] = [display_name(LABELS[i]) for i in P.argmax(axis=1)] if len(P) else []
    return out.reset_index(drop=True)


def modality_table(summary: dict):
    """Accuracy and macro-F1 of the raw features (argmax of audio_prob_*, of text4_prob_*) per split."""
    import pandas as pd
    rows = []
    for split, mods in summary.get("raw_metrics", {}).items():
        for mod, m in mods.items():
            rows.append({"split": split, "modality": mod, "n": m["n"], "accuracy": round(m["accuracy"], 4),
                         "macro_f1": round(m["macro_f1"], 4), "ua": round(m["ua"], 4)})
    return pd.DataFrame(rows)


def correlation_plot(df, columns: Sequence[str], path=None, title: str = "Feature correlation (train)"):
    """Pearson correlation heatmap of the feature columns (+ one-hot labels); PNG at `path`."""
    import matplotlib.pyplot as plt

    from .plots import save_figure
    data = df[list(columns)].astype(float).copy()
    for c in LABELS:
        data[f"is_{c}"] = (df["label"] == c).astype(float)
    data = data.loc[:, data.std() > 0]
    corr = data.corr().to_numpy()
    names = list(data.columns)
    fig, ax = plt.subplots(figsize=(0.38 * len(names) + 2, 0.38 * len(names) + 1.5))
    im = ax.imshow(corr, cmap="coolwarm", vmin=-1, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_title(title)
    fig.colorbar(im, ax=ax, shrink=0.7)
    fig.tight_layout()
    return save_figure(fig, path)


def choose_audio_model(run_dir: str | Path, name: str, kind: str = "auto") -> tuple[str, "pd.DataFrame"]:
    """Pick the audio branch for the fusion features among every trained candidate, all loadable by AudioClassifier:
    the fine-tuned wav2vec2 (`RunLayout.audio_best_model(name)`), the classical MFCC+prosody baseline
    (`RunLayout.baseline_model(name)`), and any other audio model trained on the same data as
    `audio_best_model(f"{name}_<suffix>")` (e.g. `multilingual_whisper`: the pretrained Whisper encoder
    of notebook 03), listed as `<suffix>`.

    kind: "wav2vec2", "baseline", a listed `<suffix>` (e.g. "whisper"), or "auto" = the candidate with the highest
    VALIDATION macro-F1 (test is never read). Returns (model path, a table of the candidates' val macro-F1)."""
    import pandas as pd
    run = RunLayout(run_dir)
    audio_root = run.audio_models
    candidates = {"wav2vec2": run.audio_best_model(name), "baseline": run.baseline_model(name)}
    reports = {"wav2vec2": run.audio_model(name) / "train_report.json",
               "baseline": run.baseline_model(name) / "train_report.json"}
    if audio_root.is_dir():
        for d in sorted(audio_root.glob(f"{name}_*")):
            suffix = d.name[len(name) + 1:]
            if suffix and suffix not in candidates and run.audio_best_model(d.name).is_dir():
                candidates[suffix] = run.audio_best_model(d.name)
                reports[suffix] = run.audio_model(d.name) / "train_report.json"

    def val_f1(which: str):
        path = reports[which]
        if not path.exists():
            return None
        rep = json.loads(path.read_text())
        val = rep.get("val") if which == "baseline" else rep.get("best_val_metrics")
        return float(val["macro_f1"]) if isinstance(val, dict) and "macro_f1" in val else None

    table = pd.DataFrame([{"audio model": k, "path": str(v), "exists": v.exists(), "val_macro_f1": val_f1(k)}
                          for k, v in candidates.items()])
    if kind != "auto" and kind not in candidates:
        raise SERError(f"audio_model_kind must be auto or one of {list(candidates)}, got {kind!r}")
    if kind == "auto":
        usable = table[table.exists & table.val_macro_f1.notna()]
        if usable.empty:
            usable = table[table.exists]  # no val score to compare: the one that exists (wav2vec2 first)
        if usable.empty:
            raise SERError(f"no trained audio model {name!r} in {run.audio_models} or {run.baseline_model(name)} "
                           "(run notebook 03, or 04 for the baseline)")
        kind = str(usable.sort_values("val_macro_f1", ascending=False, kind="stable", na_position="last")
                   .iloc[0]["audio model"])
    path = candidates[kind]
    if not path.exists():
        raise SERError(f"{path}: audio model ({kind}) not found; run notebook 03 (wav2vec2) or 04 (baseline) first")
    table["chosen"] = table["audio model"] == kind
    return str(path), table
