"""build_fusion_features: the three feature tables of stage 06 and their summary.json, in named steps.

    res = build_fusion_features(train_manifest, val_manifest, test_manifest, output_dir,
                                config=FeaturesConfig(audio_model_en=dir, audio_model_zh=dir, asr_backend="reference"))

Taught in notebook 06 (06_build_fusion_features.ipynb).
"""
from __future__ import annotations

import contextlib
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..common import (LABELS, SAMPLE_RATE, SERError, check_splits, read_manifest, write_csv_atomic,
                      write_json_atomic)
from .columns import (FEATURE_CSV_COLUMNS, LANGUAGES, METADATA_COLUMNS, SPLITS, feature_columns_by_mode,
                      normalize_language, raw_metrics)
from .config import FeaturesConfig
from .featurizer import Featurizer


@dataclass
class FeatureBuildResult:
    output_dir: Path
    paths: dict
    summary: dict
    frames: dict = field(repr=False, default_factory=dict)


class StepTimings(dict):
    """Seconds per step, in the order the steps ran: `with timings.step("asr_sec"): ...`."""

    @contextlib.contextmanager
    def step(self, name: str):
        t = time.perf_counter()
        yield
        self[name] = time.perf_counter() - t


def build_fusion_features(train_manifest, val_manifest, test_manifest, output_dir,
                          config: FeaturesConfig | None = None, **settings) -> FeatureBuildResult:
    """Build `{train,val,test}_features.csv` + `summary.json` (+ ASR cache, text4 head) in `output_dir`.

    The settings are a `FeaturesConfig` (`config=`), or its fields as keyword arguments (`asr_backend="reference"`),
    which also override a given config's. The steps: `read_splits`, `model_sources`, `load_transcriber`,
    `components_of`, `load_clips`, the audio columns, `transcribe_splits`, `fit_text4`, `assemble_tables`,
    `summarize`."""
    from ..common import set_seed
    cfg = (replace(config, **settings) if config is not None else FeaturesConfig(**settings)).normalized()
    t_start = time.perf_counter()
    set_seed(cfg.seed)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifests = {"train": train_manifest, "val": val_manifest, "test": test_manifest}
    timings = StepTimings()
    with timings.step("read_manifests_sec"):
        frames = {s: read_split(p, cfg) for s, p in manifests.items()}
        split_check = check_splits(frames, cfg.allow_split_overlap, {s: str(p) for s, p in manifests.items()})
        sources = model_sources(frames, cfg)
    with timings.step("load_models_sec"):
        transcriber, asr_info = load_transcriber(cfg)
        components = components_of(cfg, sources, asr_info)
        feat = Featurizer.from_components(components, transcriber=transcriber)  # text4 head: fitted below
    with timings.step("load_audio_sec"):
        audios = {s: load_clips(df, manifests[s], s) for s, df in frames.items()}
    with timings.step("audio_model_sec"):
        audio_cols = {s: feat.audio_columns(audios[s], frames[s]["language"].tolist(), progress=True) for s in SPLITS}
    with timings.step("asr_sec"):
        transcripts, cache = transcribe_splits(frames, audios, transcriber, asr_info["backend"], cfg, out)
        feat.asr_cache = cache
    with timings.step("text4_fit_sec"):
        oof, text4_info = fit_text4(frames["train"], transcripts["train"], components, feat, cfg, out)
    with timings.step("text_sec"):
        tables = assemble_tables(frames, transcripts, audio_cols, feat, oof)
    paths = {s: write_csv_atomic(out / f"{s}_features.csv", tables[s]) for s in SPLITS}
    timings["total_sec"] = time.perf_counter() - t_start
    summary = summarize(cfg, manifests, split_check, tables, components, transcriber, cache, text4_info, timings)
    paths["summary"] = write_json_atomic(out / "summary.json", summary)
    return FeatureBuildResult(out, paths, summary, tables)


# ----------------------------------------------------------------------------- the steps
def read_split(path, cfg: FeaturesConfig):
    """One manifest with the columns the builder reads: language (canonical code), transcript, metadata;
    `max_samples` rows of it when set."""
    df = read_manifest(path, labels=LABELS)
    where = f"{path}: "
    if "language" not in df.columns:
        df["language"] = cfg.default_language
    df["language"] = [normalize_language(v, cfg.default_language, f"{where}row {i + 2}, column 'language': ")
                      for i, v in enumerate(df["language"])]
    if "transcript" not in df.columns:
        df["transcript"] = ""
    df["transcript"] = df["transcript"].fillna("").astype(str)
    for col in METADATA_COLUMNS:
        if col not in df.columns:
            df[col] = ""
        df[col] = df[col].fillna("").astype(str)
    if cfg.max_samples and cfg.max_samples > 0 and len(df) > cfg.max_samples:
        df = df.sample(n=int(cfg.max_samples), random_state=cfg.seed).sort_index()
    return df.reset_index(drop=True)


def _resolved(src: str) -> str | None:
    """An existing local path made absolute; a hub id as given; '' -> None."""
    if src and Path(src).expanduser().exists():
        return str(Path(src).expanduser().resolve())
    return src or None


def model_sources(frames: dict, cfg: FeaturesConfig) -> dict:
    """The audio and text models per language and the text4 head, checked: every language of the manifests needs
    an audio model; text4_head is tfidf, none or a 4-class text model dir (kind `hf`)."""
    present = sorted({lang for df in frames.values() for lang in df["language"]})
    audio_models = {"en": cfg.audio_model_en or None, "zh": cfg.audio_model_zh or None}
    for lang in present:
        if not audio_models[lang]:
            raise SERError(f"manifests have {lang!r} rows but no --audio-model-{lang} was given "
                           f"(one model may serve both languages: pass it to both flags)")
    text4_head, text4_kind = None, cfg.text4_head
    if cfg.text4_head not in ("tfidf", "none"):
        p4 = Path(cfg.text4_head).expanduser()
        if not p4.is_dir():
            raise SERError(f"--text4-head {cfg.text4_head!r}: expected tfidf, none or a 4-class text model directory")
        text4_head, text4_kind = str(p4.resolve()), "hf"
    return {"audio_models": {lang: _resolved(src) for lang, src in audio_models.items()},
            "text_models": {"en": _resolved(cfg.text_model_en), "zh": _resolved(cfg.text_model_zh)},
            "text4_head": text4_head, "text4_kind": text4_kind}


def load_transcriber(cfg: FeaturesConfig) -> tuple[object, dict]:
    """The recogniser of this build and its `components["asr"]` entry: what recognised the transcripts and, for
    reference (ORACLE) transcripts, what recognises new audio at inference (the bundled Whisper tiny.en)."""
    from ..asr import get_transcriber
    backend = cfg.transcript_source
    transcriber = get_transcriber(backend, cfg.whisper_model, device=cfg.whisper_device,
                                  compute_type=cfg.whisper_compute_type, cpu_threads=cfg.whisper_cpu_threads,
                                  num_workers=cfg.whisper_num_workers)
    if backend == "whisper" and transcriber.backend != "whisper":  # tiny.en without its wheel: warned once
        backend = transcriber.backend
    if backend == "whisper":
        local = Path(cfg.whisper_model).expanduser()
        asr_model = str(local.resolve()) if local.exists() else cfg.whisper_model
    else:
        asr_model = transcriber.model_id
    asr_info = {"backend": backend, "model": asr_model, "model_id": transcriber.model_id,
                "engine": getattr(transcriber, "engine", "openai-whisper" if backend == "whisper" else ""),
                "oracle": bool(transcriber.oracle), "device": cfg.whisper_device,
                "compute_type": cfg.whisper_compute_type, "cpu_threads": int(cfg.whisper_cpu_threads),
                "num_workers": int(cfg.whisper_num_workers)}
    if backend == "whisper" and getattr(transcriber, "english_only", False):
        asr_info["languages"] = ["en"]  # other languages: their reference (ORACLE) transcripts
    if backend == "reference":  # new audio at inference: the bundled Whisper tiny.en recognises English
        asr_info["inference"] = {"backend": "whisper", "model": "tiny.en", "languages": ["en"],
                                 "compute_type": cfg.whisper_compute_type, "cpu_threads": int(cfg.whisper_cpu_threads)}
    return transcriber, asr_info


def components_of(cfg: FeaturesConfig, sources: dict, asr_info: dict) -> dict:
    """`summary.json["components"]`: everything the fusion predictor reloads to compute the same features."""
    return {
        "audio_models": {lang: sources["audio_models"][lang] for lang in LANGUAGES},
        "default_language": cfg.default_language,
        "asr": asr_info,
        "text_models": sources["text_models"],
        "text4_head": sources["text4_head"],
        "text4_kind": sources["text4_kind"],
        "audio_device": cfg.audio_device, "text_device": cfg.text_device,
        "batch_size": int(cfg.batch_size), "max_duration_sec": float(cfg.max_duration_sec), "sample_rate": SAMPLE_RATE,
    }


def load_clips(df, manifest, split: str) -> list:
    """The split's clips at 16 kHz, whole (an unreadable file names its manifest row)."""
    from tqdm.auto import tqdm

    from ..audio import load_audio
    clips = []
    for i, path in enumerate(tqdm(df["path"], desc=f"load audio ({split})", leave=False)):
        try:
            clips.append(load_audio(path, sample_rate=SAMPLE_RATE, max_duration_sec=None))
        except SERError as exc:  # name the manifest row too
            raise type(exc)(f"{manifest}: row {i + 2} (column 'path'): {exc}") from exc
    return clips


def transcribe_splits(frames: dict, audios: dict, transcriber, backend: str, cfg: FeaturesConfig, out: Path):
    """The transcripts of every split, and the ASR cache (only Whisper's are cached; by audio content). Reference
    and none runs still leave an (empty) asr_cache.json, as the run layout names it."""
    from tqdm.auto import tqdm

    from ..asr import ASRCache, transcribe_many
    cache_path = Path(cfg.asr_cache_json) if cfg.asr_cache_json else out / "asr_cache.json"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cache = ASRCache(cache_path if backend == "whisper" else None, retry_empty=cfg.retry_empty_cache)
    for w in caught:  # re-raised where build_fusion_features was called
        warnings.warn(str(w.message), stacklevel=3)
    transcripts = {}
    for split, df in frames.items():
        transcripts[split] = transcribe_many(
            audios[split], df["language"].tolist(), transcriber, cache=cache if backend == "whisper" else None,
            references=df["transcript"].tolist(), sources=df["path"].tolist(),
            progress=lambda it, split=split: tqdm(it, desc=f"ASR {backend} ({split})", leave=False))
    if backend == "whisper":
        cache.save()
    elif not cache_path.exists():
        ASRCache(cache_path).save()
    return transcripts, cache


def fit_text4(train, texts: list, components: dict, feat: Featurizer, cfg: FeaturesConfig, out: Path):
    """The TF-IDF text4 head, trained on the TRAIN transcripts and saved to `out/text4_head`; train rows get
    out-of-fold scores (folds hold out speakers and sentences). Records the head in `components` and `feat`
    (no non-empty transcript: no head, text4_kind none). Returns (out-of-fold (P, ready) or None, summary["text4"])."""
    from ..text import Text4Head, text4_out_of_fold
    kind = components["text4_kind"]
    info: dict = {"kind": kind}
    if kind == "hf":
        info["note"] = "fine-tuned text model: train rows are in-sample scores"
    if kind != "tfidf":
        return None, info
    if not any(str(x).strip() for x in texts):
        warnings.warn("no non-empty train transcripts: the text4 head is not trained (text4_ready = 0)",
                      stacklevel=3)
        components["text4_kind"], components["text4_head"] = "none", None
        return None, info
    labels = train["label"].tolist()
    feat.text4 = Text4Head(seed=cfg.seed).fit(texts, labels)
    feat.text4.save(out / "text4_head")
    components["text4_head"] = str((out / "text4_head").resolve())
    speakers = [s or f"row{i}" for i, s in enumerate(train["speaker"])]
    oof = text4_out_of_fold(texts, labels, speakers, n_splits=cfg.oof_folds, seed=cfg.seed)
    info.update({"n_train": feat.text4.n_train,
                 "oof": {"n_splits": cfg.oof_folds, "grouped_by": ["speaker", "sentence"]}})
    return oof, info


def assemble_tables(frames: dict, transcripts: dict, audio_cols: dict, feat: Featurizer, oof) -> dict:
    """Per split, the feature table: FEATURE_CSV_COLUMNS, then METADATA_COLUMNS, then any extra text columns;
    train rows take the out-of-fold text4 scores."""
    import pandas as pd
    tables = {}
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
        tables[split] = rows[FEATURE_CSV_COLUMNS + METADATA_COLUMNS + extras]
    return tables


def summarize(cfg: FeaturesConfig, manifests: dict, split_check, tables: dict, components: dict, transcriber,
              cache, text4_info: dict, timings: dict) -> dict:
    """summary.json: rows per split and language, the feature columns of each fusion mode, the components,
    where the transcripts come from, the ASR cache, timings, and the raw per-modality metrics."""
    backend = components["asr"]["backend"]
    present = sorted({lang for df in tables.values() for lang in df["language"]})
    recognises = getattr(transcriber, "recognises", lambda _lang: True)
    return {
        "split_check": split_check,
        "rows": {s: {lang: int((tables[s]["language"] == lang).sum()) for lang in LANGUAGES} for s in SPLITS},
        "rows_total": {s: int(len(tables[s])) for s in SPLITS},
        "feature_columns": feature_columns_by_mode(tables["train"], components["text4_kind"]),
        "components": components,
        "transcripts_oracle": bool(transcriber.oracle),
        # languages whose transcripts are the reference ones although a recogniser ran (tiny.en: Mandarin)
        "transcripts_oracle_languages": [lang for lang in present if transcriber.oracle
                                         or (backend == "whisper" and not recognises(lang))],
        "asr_cache": cache.stats() if backend == "whisper" else {"hits": 0, "misses": 0, "entries": 0,
                                                                  "path": None, "note": f"not used ({backend})"},
        "timings": {k: round(v, 4) for k, v in timings.items()},
        "audio_confidence": {f"{s}_mean": float(tables[s]["audio_confidence"].mean()) for s in SPLITS},
        "text4": text4_info,
        "raw_metrics": {s: raw_metrics(tables[s]) for s in SPLITS},
        "manifests": {s: str(Path(p).resolve()) for s, p in manifests.items()},
        "max_samples": int(cfg.max_samples), "seed": int(cfg.seed),
        "columns": list(tables["train"].columns),
    }
