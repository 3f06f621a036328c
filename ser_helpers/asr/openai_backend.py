"""openai-whisper on numpy audio (a `.pt` checkpoint file, or a model size without faster-whisper), and the tiny
random-init checkpoint the tests, the bench and the dry run decode with.

Taught in notebook 06 (06_build_fusion_features.ipynb).
"""
from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path

import numpy as np

from ..common import SERError
from .faster_backend import COMPUTE_TYPES
from .hashing import file_sha256


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
        from ..common import resolve_device
        self.model_name = str(model)
        self.device = resolve_device(device or "cpu")
        compute_type = (compute_type or "").strip().lower()
        self.fp16 = self._fp16_for(compute_type)
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

    def _fp16_for(self, compute_type: str) -> bool:
        """faster-whisper's `--whisper-compute-type` mapped onto openai-whisper's one switch (fp16 on CUDA)."""
        if compute_type and compute_type not in COMPUTE_TYPES:
            raise SERError(f"--whisper-compute-type {compute_type!r}: expected one of {', '.join(COMPUTE_TYPES[2:])}")
        if compute_type.startswith("int"):
            warnings.warn(f"openai-whisper has no {compute_type} mode; --whisper-compute-type {compute_type} "
                          f"runs in float32", stacklevel=3)
        half = compute_type in ("", "default", "auto", "float16", "bfloat16")
        if compute_type in ("float16", "bfloat16") and not self.device.startswith("cuda"):
            warnings.warn(f"{compute_type} needs CUDA; whisper runs in float32 on cpu", stacklevel=3)
        return self.device.startswith("cuda") and half

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


def make_tiny_whisper_checkpoint(path: str | os.PathLike, seed: int = 0, n_state: int = 64, n_layer: int = 1,
                                 n_head: int = 2, n_text_ctx: int = 32) -> Path:
    """A random-init multilingual whisper checkpoint (tests, bench): real code path, nonsense text."""
    from dataclasses import asdict

    import torch
    from whisper.model import ModelDimensions, Whisper

    from ..common import atomic_path
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
