"""Speech recognition for the text branch: openai-whisper, the corpus's own (ORACLE) transcripts, or none,
plus a transcript cache keyed by the audio CONTENT (so a moved file still hits and a changed file misses).

    tr = get_transcriber("whisper", "small", device="cpu")      # or a local checkpoint path
    cache = ASRCache("outputs/cpu/features/asr_cache.json")
    text = cache.get_or_transcribe(audio_16k, "en", tr)
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import warnings
from pathlib import Path
from typing import Callable

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


def get_transcriber(backend: str = "whisper", model: str = "small", device: str = "cpu", compute_type: str = "",
                    cpu_threads: int = 8, download_root: str | None = None):
    """`whisper` | `reference` (ORACLE manifest transcripts) | `none` -> an object with `.transcribe(audio, language,
    reference=None) -> str`, `.backend`, `.model_id`, `.oracle`."""
    backend = (backend or "none").lower()
    if backend == "whisper":
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
                    sources=None, progress: Callable | None = None) -> list[str]:
    """Transcribe a list of clips (cache first); `progress` wraps the iterable (e.g. tqdm)."""
    refs = references if references is not None else [None] * len(audios)
    srcs = sources if sources is not None else [""] * len(audios)
    it = range(len(audios))
    if progress is not None:
        it = progress(it)
    out = []
    for i in it:
        if cache is None:
            out.append(transcriber.transcribe(audios[i], languages[i], reference=refs[i]))
        else:
            out.append(cache.get_or_transcribe(audios[i], languages[i], transcriber, reference=refs[i],
                                               source=srcs[i]))
    return out
