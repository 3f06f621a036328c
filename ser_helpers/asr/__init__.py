"""Speech recognition for the text branch, taught in notebook 06 (06_build_fusion_features.ipynb); the service's
`POST /asr/transcribe` (notebook 05, 05_serve_ser_api.ipynb) uses the same recognisers.

faster-whisper (CTranslate2; the bundled Whisper `tiny.en` weights by default), openai-whisper (`.pt` checkpoint
files), the corpus's own (ORACLE) transcripts, or none; a transcript cache keyed by the audio CONTENT (a moved file
still hits, a changed file misses); PACKED batch recognition; and a word error rate.

    tr = get_transcriber("whisper", "tiny.en")                    # bundled weights; or a size, a CT2 dir, a .pt file
    cache = ASRCache("outputs/cpu/features/asr_cache.json")
    texts = transcribe_many(audios, ["en"] * len(audios), tr, cache=cache)   # cache misses are packed
    wer(references, texts)["wer"]

One module per job; this package re-exports their names, so `from ser_helpers.asr import X` and `ser.asr.X` work
as before the split:

* `factory`         get_transcriber, bundled_transcriber, which engine serves a `--whisper-model`
* `faster_backend`  FasterWhisperTranscriber (faster-whisper / CTranslate2; one clip, or many packed)
* `openai_backend`  WhisperTranscriber (openai-whisper checkpoints), the tiny random checkpoint of tests and bench
* `reference`       the none / reference (ORACLE) transcribers and RoutedTranscriber
* `packing`         laying clips into shared 30 s windows and splitting the words back
* `cache`           ASRCache, the content-keyed transcript cache
* `batch`           transcribe_many: cache hits first, the misses in one batch
* `hashing`         content keys (audio_sha256, file_sha256)
* `error_rate`      normalize_for_wer, wer

To replace a function in tests, patch the module that defines it (`ser_helpers.asr.factory.faster_whisper_available`).
"""
from __future__ import annotations

from ser_helpers.asr.batch import transcribe_many
from ser_helpers.asr.cache import CACHE_VERSION, ASRCache
from ser_helpers.asr.error_rate import edit_distance, normalize_for_wer, number_words, wer
from ser_helpers.asr.factory import (BACKENDS, bundled_transcriber, faster_whisper_available, get_transcriber,
                                     resolve_whisper_engine)
from ser_helpers.asr.faster_backend import COMPUTE_TYPES, FasterWhisperTranscriber
from ser_helpers.asr.hashing import audio_sha256, file_sha256
from ser_helpers.asr.openai_backend import WhisperTranscriber, make_tiny_whisper_checkpoint
from ser_helpers.asr.packing import (MAX_WORDS_PER_SEC, PACK_GAP_SEC, PACK_WINDOW_SEC, SILENCE_RMS, _join_words,
                                     join_clips, pack_clips, share_looks_wrong, split_words)
from ser_helpers.asr.reference import NoTranscriber, ReferenceTranscriber, RoutedTranscriber

__all__ = ["get_transcriber", "bundled_transcriber", "faster_whisper_available", "resolve_whisper_engine", "BACKENDS",
           "FasterWhisperTranscriber", "WhisperTranscriber", "NoTranscriber", "ReferenceTranscriber",
           "RoutedTranscriber", "make_tiny_whisper_checkpoint", "ASRCache", "CACHE_VERSION", "transcribe_many",
           "audio_sha256", "file_sha256", "pack_clips", "join_clips", "split_words", "share_looks_wrong",
           "normalize_for_wer", "number_words", "edit_distance", "wer", "COMPUTE_TYPES", "PACK_WINDOW_SEC",
           "PACK_GAP_SEC", "SILENCE_RMS", "MAX_WORDS_PER_SEC"]
