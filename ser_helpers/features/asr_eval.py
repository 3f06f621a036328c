"""What a real speech recogniser changes: the English rows of features built from reference (ORACLE) transcripts
recognised with Whisper (`build_asr_features`: WER, `{split}_features_asr.csv`). The fused model's score on both
is stage 09's (`selection.compare_recognised_transcripts`).

Taught in notebook 06 (06_build_fusion_features.ipynb).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Sequence

from ..common import SAMPLE_RATE, SERError, write_csv_atomic, write_json_atomic
from .columns import normalize_language, raw_metrics
from .featurizer import Featurizer


def build_asr_features(features_dir: str, splits: Sequence[str] = ("test",), languages: Sequence[str] = ("en",),
                       whisper_model: str = "tiny.en", *, whisper_device: str, whisper_compute_type: str,
                       whisper_cpu_threads: int, text_device: str, asr_cache_json: str | None = None,
                       max_rows: int = 0, whisper_num_workers: int = 1) -> dict:
    """Recognise the `languages` rows of `{split}_features.csv` (built from reference transcripts) with a real ASR
    and write `{split}_features_asr.csv`: those rows only, the same columns, the recognised transcript and the
    text features computed from it by the SAME text components (audio columns unchanged), plus
    `reference_transcript`. Records {wer, timings, ...} under `asr_eval` in summary.json and returns it.
    Mandarin rows are not recognised (tiny.en is English-only): they keep their reference transcripts elsewhere.
    The Whisper and text settings are FeaturesConfig's (notebook 06 passes them); `asr_cache_json` None:
    `<features_dir>/asr_cache.json`."""
    from ..asr import ASRCache, get_transcriber, wer
    out = Path(features_dir)
    summary_path = out / "summary.json"
    if not summary_path.exists():
        raise SERError(f"{summary_path}: not found; build the fusion features first")
    summary = json.loads(summary_path.read_text())
    base = ((summary.get("components") or {}).get("asr") or {}).get("backend")
    if base != "reference":
        return _record(summary_path, summary, {"skipped": f"the features already use ASR backend {base!r}, not "
                                                          f"reference transcripts: their WER needs no second pass"})
    t0 = time.perf_counter()
    transcriber = get_transcriber("whisper", whisper_model, device=whisper_device, compute_type=whisper_compute_type,
                                  cpu_threads=whisper_cpu_threads, num_workers=whisper_num_workers)
    if getattr(transcriber, "oracle", True) or transcriber.backend != "whisper":
        return _record(summary_path, summary, {
            "skipped": f"no speech recogniser for {whisper_model!r} (see the warning above): no ASR rows"})
    feat = Featurizer.from_components(summary["components"], text_device=text_device, transcriber=transcriber,
                                      load_audio=False)
    cache = ASRCache(Path(asr_cache_json) if asr_cache_json else out / "asr_cache.json")
    langs = [normalize_language(x) for x in languages]
    info: dict = {"asr": {"backend": transcriber.backend, "engine": getattr(transcriber, "engine", ""),
                          "model": whisper_model, "model_id": transcriber.model_id,
                          "compute_type": getattr(transcriber, "compute_type", whisper_compute_type),
                          "cpu_threads": int(getattr(transcriber, "cpu_threads", whisper_cpu_threads)),
                          "num_workers": int(getattr(transcriber, "num_workers", whisper_num_workers))},
                  "languages": langs, "splits": {}, "numbers": "spelled out before scoring (10:15 = ten fifteen)"}
    all_refs, all_hyps = [], []
    for split in splits:
        info["splits"][split], refs, hyps = recognise_split(out, split, langs, max_rows, feat, cache)
        all_refs += refs
        all_hyps += hyps
    cache.save()
    info["wer"] = wer(all_refs, all_hyps)["wer"] if all_refs else None
    info["packing"] = dict(getattr(transcriber, "stats", {}) or {})
    info["total_sec"] = round(time.perf_counter() - t0, 3)
    return _record(summary_path, summary, info)


def _record(summary_path: Path, summary: dict, info: dict) -> dict:
    """`info` as summary.json's `asr_eval` (written), returned."""
    summary["asr_eval"] = info
    write_json_atomic(summary_path, summary)
    return info


def recognise_split(out: Path, split: str, languages: list, max_rows: int, feat: Featurizer, cache):
    """The `languages` rows of one split recognised with `feat.transcriber` (through `cache`), their text features
    recomputed, written as `{split}_features_asr.csv`. Returns (the split's entry of asr_eval, references,
    recognised transcripts)."""
    import pandas as pd
    from tqdm.auto import tqdm

    from ..asr import transcribe_many, wer
    from ..audio import load_audio
    src = out / f"{split}_features.csv"
    if not src.exists():
        raise SERError(f"{src}: not found; build the fusion features first")
    df = pd.read_csv(src, keep_default_na=False)
    df = df[df["language"].isin(languages)].reset_index(drop=True)
    if max_rows and len(df) > max_rows:
        df = df.head(int(max_rows))
    t = time.perf_counter()
    audios = [load_audio(p, sample_rate=SAMPLE_RATE) for p in tqdm(df["path"], desc=f"load audio ({split})", leave=False)]
    t_load = time.perf_counter() - t
    t = time.perf_counter()
    misses0 = cache.misses
    hyps = transcribe_many(audios, df["language"].tolist(), feat.transcriber, cache=cache, sources=df["path"].tolist(),
                           progress=lambda it: tqdm(it, desc=f"ASR tiny.en ({split})", leave=False))
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
    entry = {"file": path.name, "rows": int(len(rows)), "wer": w["wer"], "errors": w["errors"],
             "ref_words": w["ref_words"], "exact": w["exact"],
             "wer_numbers_as_written": wer(refs, hyps, numbers="keep")["wer"],
             "recognised": int(recognised), "cache_hits": int(len(rows) - recognised),
             "load_audio_sec": round(t_load, 3), "asr_sec": round(t_asr, 3),
             "asr_sec_per_recognised_clip": round(t_asr / recognised, 4) if recognised else None,
             "audio_sec": round(sum(a.size for a in audios) / SAMPLE_RATE, 2),
             "text4_reference": raw_metrics(df).get("text4"),
             "text4_recognised": raw_metrics(rows).get("text4")}
    return entry, refs, hyps
