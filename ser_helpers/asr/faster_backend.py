"""faster-whisper (CTranslate2) on numpy audio: the bundled Whisper `tiny.en`, a local CTranslate2 model dir or a
model size, recognising one clip (`transcribe`, `transcribe_detailed` with segments) or many clips packed into
shared windows (`transcribe_batch`, see `packing`).

Taught in notebook 06 (06_build_fusion_features.ipynb); `transcribe_detailed` and `detect_language` serve
`POST /asr/transcribe` in notebook 05 (05_serve_ser_api.ipynb).
"""
from __future__ import annotations

import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np

from ..common import SERError
from .hashing import file_sha256
from .packing import (PACK_GAP_SEC, PACK_WINDOW_SEC, _join_words, better_share, join_clips, pack_clips,
                      share_looks_wrong, split_words)

COMPUTE_TYPES = ("default", "auto", "float16", "bfloat16", "float32", "int8", "int8_float16", "int8_float32",
                 "int8_bfloat16", "int16")


def _resolve_compute_type(compute_type: str, device: str) -> str:
    """`--whisper-compute-type` checked; empty/default/auto -> int8 on cpu, float16 on cuda."""
    compute_type = (compute_type or "").strip().lower()
    if compute_type and compute_type not in COMPUTE_TYPES:
        raise SERError(f"--whisper-compute-type {compute_type!r}: expected one of {', '.join(COMPUTE_TYPES)}")
    if not compute_type or compute_type in ("default", "auto"):
        return "float16" if device == "cuda" else "int8"
    return compute_type


def _locate_model(name: str, compute_type: str) -> tuple[str, str, bool]:
    """(what WhisperModel loads, the model id the cache keys on, English-only?) for `--whisper-model`: the bundled
    tiny.en, a CTranslate2 dir (identified by its model.bin's content) or a model size."""
    from ..weights import bundled_whisper_dir, is_bundled_name, weights_sha256
    path = Path(name).expanduser()
    if is_bundled_name(name):
        bundled = bundled_whisper_dir(required=True)
        return str(bundled), f"faster-whisper:tiny.en@{weights_sha256(bundled)[:16]}:{compute_type}", True
    if path.is_dir():
        if not (path / "model.bin").is_file():
            raise SERError(f"--whisper-model {name}: a directory without model.bin is not a "
                           f"CTranslate2 Whisper model (convert it with ct2-transformers-converter)")
        cfg = path / "config.json"
        english_only = path.name.endswith(".en") or (cfg.is_file() and not json.loads(cfg.read_text()).get("lang_ids"))
        return (str(path.resolve()), f"faster-whisper:dir:{path.name}@{file_sha256(path / 'model.bin')[:16]}:"
                                     f"{compute_type}", english_only)
    from faster_whisper.utils import available_models
    if name not in available_models():
        raise SERError(f"whisper model {name!r}: not a known model name (tiny.en = the bundled "
                       f"weights, or a size: {', '.join(available_models())}) nor an existing CTranslate2 "
                       f"model dir or checkpoint file")
    return name, f"faster-whisper:{name}:{compute_type}", name.endswith(".en")


class FasterWhisperTranscriber:
    """faster-whisper (CTranslate2) on numpy audio: deterministic (temperature 0, beam search, no conditioning on
    previous text, no VAD). `model`: `tiny.en` (the bundled weights of `ser_helpers.weights`), a local
    CTranslate2 model dir, or a model size (from the local Hugging Face cache; offline it must already be there).
    `compute_type` / `cpu_threads` / `num_workers` are faster-whisper's own (`default`: int8 on cpu, float16 on
    cuda); with `num_workers` > 1, `transcribe_batch` decodes that many windows at once, from as many threads
    (each worker with `cpu_threads` threads: on 2 cores, 2 workers x 1 thread decode 2.0x faster than 1 x 2, the
    same text: tiny.en's small matrices keep a second thread of one worker mostly idle).
    English-only models (`*.en`) recognise English only: other languages get their reference transcript when
    one is given (ORACLE), else "".
    """
    backend = "whisper"
    engine = "faster-whisper"
    oracle = False
    cacheable = True

    def __init__(self, model: str = "tiny.en", device: str = "cpu", compute_type: str = "",
                 cpu_threads: int = 8, download_root: str | None = None, beam_size: int = 5,
                 pack: bool = True, window_sec: float = PACK_WINDOW_SEC, gap_sec: float = PACK_GAP_SEC,
                 num_workers: int = 1):
        from ..common import resolve_device
        self.model_name = str(model)
        self.device = "cuda" if resolve_device(device or "cpu").startswith("cuda") else "cpu"
        self.compute_type = _resolve_compute_type(compute_type, self.device)
        self.cpu_threads = max(0, min(int(cpu_threads or 0), os.cpu_count() or 1))
        self.num_workers = int(num_workers or 1)
        if self.num_workers < 1:
            raise SERError(f"--whisper-num-workers {num_workers!r}: expected a positive integer")
        self.download_root = download_root
        self.beam_size = int(beam_size)
        self.pack, self.window_sec, self.gap_sec = bool(pack), float(window_sec), float(gap_sec)
        self.model_path, self.model_id, self.english_only = _locate_model(self.model_name, self.compute_type)
        self._model = None
        self.stats = {"windows": 0, "clips_packed": 0, "clips_alone": 0, "retried": 0}
        self._stats_lock = threading.Lock()  # windows may be decoded from several threads

    def _count(self, key: str, n: int = 1) -> None:
        with self._stats_lock:
            self.stats[key] += n

    @property
    def model(self):
        if self._model is None:
            from faster_whisper import WhisperModel
            try:
                self._model = WhisperModel(self.model_path, device=self.device, compute_type=self.compute_type,
                                           cpu_threads=self.cpu_threads, num_workers=self.num_workers,
                                           download_root=self.download_root,
                                           local_files_only=bool(os.environ.get("HF_HUB_OFFLINE")))
            except Exception as exc:  # noqa: BLE001 - offline download, broken dir, unsupported compute type
                raise SERError(f"whisper model {self.model_name!r} cannot be loaded with faster-whisper ({exc}); "
                               f"offline, use tiny.en (the bundled weights), a local CTranslate2 dir, or "
                               f"--asr-backend reference") from exc
        return self._model

    def recognises(self, language: str) -> bool:
        return not self.english_only or (language or "en") == "en"

    def _options(self, words: bool) -> dict:
        return dict(task="transcribe", beam_size=self.beam_size, temperature=0.0,
                    condition_on_previous_text=False, word_timestamps=words, vad_filter=False)

    def _decode(self, audio: np.ndarray, language: str, words: bool = False):
        lang = None if self.english_only else (language or None)
        segments, _ = self.model.transcribe(np.ascontiguousarray(audio, dtype=np.float32), language=lang,
                                            **self._options(words))
        return list(segments)

    def transcribe_detailed(self, audio: np.ndarray, language: str, reference: str | None = None) -> dict:
        """{"text", "segments": [{start, end, text}], "language"} for one clip."""
        if not self.recognises(language):
            return {"text": "" if reference is None else str(reference), "segments": [], "language": language}
        segs = self._decode(audio, language)
        return {"text": " ".join(" ".join(s.text for s in segs).split()), "language": language,
                "segments": [{"start": float(s.start), "end": float(s.end), "text": s.text.strip()} for s in segs]}

    def transcribe(self, audio: np.ndarray, language: str, reference: str | None = None) -> str:
        self._count("clips_alone")
        return self.transcribe_detailed(audio, language, reference=reference)["text"]

    def transcribe_batch(self, audios, languages, references=None, progress: Callable | None = None) -> list[str]:
        """Many clips: the clips of each language packed into <= window_sec windows, one decode per window
        (`num_workers` at a time), words split back to their clips by word timestamps; suspicious shares are decoded
        alone. The text does not depend on `num_workers`: each window is decoded on its own."""
        n = len(audios)
        refs = list(references) if references is not None else [None] * n
        out: list[str | None] = [None] * n
        todo = []
        for i in range(n):
            if self.recognises(languages[i]):
                todo.append(i)
            else:
                out[i] = "" if refs[i] is None else str(refs[i])
        if not self.pack:
            it = progress(todo) if progress is not None else todo
            for i in it:
                out[i] = self.transcribe(audios[i], languages[i])
            return out
        windows = self._windows(audios, languages, todo)

        def decode(window) -> list[str]:
            lang, clips = window
            if len(clips) == 1:
                return [self.transcribe(audios[clips[0]], lang)]
            return self._decode_window([audios[i] for i in clips], lang)

        self.model  # loaded once, before any worker thread asks for it
        with ThreadPoolExecutor(max_workers=min(self.num_workers, max(1, len(windows)))) as pool:
            decoded = _Sized(pool.map(decode, windows), len(windows))  # in window order
            for (_lang, clips), texts in zip(windows, progress(decoded) if progress is not None else decoded):
                for i, text in zip(clips, texts):
                    out[i] = text
        return out

    def _windows(self, audios, languages, todo) -> list[tuple[str, list[int]]]:
        """The windows the clips `todo` are packed into: (language, clip indices), each language on its own."""
        windows = []
        for lang in sorted({languages[i] for i in todo}):
            idx = [i for i in todo if languages[i] == lang]
            durations = [np.asarray(audios[i]).size / 16000 for i in idx]
            windows += [(lang, [idx[k] for k in g]) for g in pack_clips(durations, self.window_sec, self.gap_sec)]
        return windows

    def _decode_window(self, clips, language: str) -> list[str]:
        """One decode of the clips joined into a window; each clip's words (a suspect share decoded alone)."""
        wave, spans = join_clips(clips, self.gap_sec)
        segs = self._decode(wave, language, words=True)
        words = [(w.start, w.end, w.word) for s in segs for w in (s.words or [])]
        self._count("windows")
        self._count("clips_packed", len(clips))
        texts = []
        for clip, share, span in zip(clips, split_words(words, spans), spans):
            text = _join_words(share)
            if share_looks_wrong(text, clip, span):
                self._count("retried")
                text = better_share(text, self.transcribe(clip, language), clip, span)
            texts.append(text)
        return texts

    def detect_language(self, audio: np.ndarray) -> str | None:
        """'en' or 'zh' (the two the models know) from Whisper's language detection; None for English-only."""
        if self.english_only:
            return None
        *_, all_probs = self.model.detect_language(np.ascontiguousarray(audio, dtype=np.float32))
        probs = dict(all_probs)
        return "zh" if probs.get("zh", 0.0) > probs.get("en", 0.0) else "en"


class _Sized:
    """An iterator with a length (so a progress bar knows its total)."""

    def __init__(self, iterator, n: int):
        self._iterator, self._n = iterator, n

    def __iter__(self):
        return iter(self._iterator)

    def __len__(self) -> int:
        return self._n
