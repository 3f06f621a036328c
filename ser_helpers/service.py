"""The SER HTTP service: `POST /ser/analyze`, `GET /health`, `GET /warmup`, `POST /asr/transcribe`.

It keeps the contract of the user's existing service (docs: ../shared/CLI_CONTRACT.md, issue 4), so a
client written for that service talks to this one unchanged. Deploy it with

    SER_ENGINE=hf_wav2vec2 SER_HF_MODEL_DIR=outputs/cpu/models/audio/multilingual/best_model \\
    SER_HF_DEVICE=auto uvicorn ser_helpers.service:app --host 127.0.0.1 --port 8001

or `ser serve --model-dir ...` (binds 127.0.0.1:8001), behind a reverse proxy that authenticates clients
and terminates TLS: the service itself has no authentication, so never bind it to a public address.
Admission control (`ser_helpers.admission`) bounds every request: body size counted as it arrives, the
header checked before decoding, a bounded queue (503 + Retry-After), a deadline, and work dropped when the
client goes; `/warmup` runs at start-up (GET returns that result; POST reruns it, queued like an analysis).

Models load once, at start-up (FastAPI lifespan); a bad setting or model dir stops start-up with a message
naming it. Inference runs in a worker thread (never on the event loop) and each model is used under its own
lock, so `/health` answers while an analysis runs and concurrent requests get the answers sequential ones get.
Nothing from a request is used as a server-side path: uploads are decoded from bytes in memory.
"""
from __future__ import annotations

import atexit
import contextlib
import io
import logging
import math
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from . import admission
from .admission import RequestError, echo
from .common import LABELS, SAMPLE_RATE, SERVICE_CODES, SERError, resolve_device
from .metrics import entropy

logger = logging.getLogger("ser_helpers.service")

ENGINES = ("hf_wav2vec2",)
ROUTINGS = ("single", "language")
DEVICES = ("auto", "cpu", "cuda")
LANGUAGES = ("en", "zh")
#: language_hint spellings accepted on requests (lower-cased) -> route language; "" / auto / none = no hint
LANGUAGE_ALIASES = {
    "en": "en", "eng": "en", "english": "en", "en-us": "en", "en-gb": "en", "en_us": "en",
    "zh": "zh", "zho": "zh", "cmn": "zh", "chinese": "zh", "mandarin": "zh", "zh-cn": "zh", "zh_cn": "zh",
    "zh-hans": "zh",
}
NO_HINT = {"", "auto", "none", "null"}

#: the 12 optional text-feature form fields of the user's service (CLI_CONTRACT.md), in order
TEXT_FEATURE_FIELDS = (
    "text_negative", "text_neutral", "text_positive", "text_negative_score", "text_length_norm",
    "text4_prob_ang", "text4_prob_hap", "text4_prob_neu", "text4_prob_sad", "text4_confidence",
    "text4_entropy", "text4_ready",
)
_UNIT_INTERVAL_FIELDS = {"text_negative", "text_neutral", "text_positive", "text_length_norm", "text4_prob_ang", "text4_prob_hap", "text4_prob_neu",
                         "text4_prob_sad", "text4_confidence"}

DEFAULT_SEGMENT_MS = 8000
DEFAULT_OVERLAP_MS = 0
MIN_SEGMENT_MS = 250          # shorter segments say little and wav2vec2 needs >= 25 ms anyway
MAX_SEGMENT_MS = 60000
MAX_SEGMENTS = 2000           # bounds the work one request can ask for
MIN_TAIL_MS = 500             # a trailing piece shorter than this joins the previous segment
MIN_AUDIO_SEC = 0.1
BATCH_SIZE = 8
MULTIPART_OVERHEAD_BYTES = admission.MULTIPART_OVERHEAD_BYTES
MAX_ENTROPY4 = math.log(len(LABELS))   # the largest entropy of a 4-class distribution
SWITCH_INTERVAL_S = 0.0005    # GIL hand-off interval in the server process (default 0.005)   # form fields + boundaries allowed on top of the upload limit


def _codes_to_service(probs: Mapping[str, float] | np.ndarray, labels=None) -> dict[str, float]:
    """Probabilities keyed by model codes (or an array in `labels` order) -> keyed by ANGRY HAPPY NEUTRAL SAD."""
    if not isinstance(probs, Mapping):
        probs = dict(zip(labels, np.asarray(probs, dtype=float).tolist()))
    out = {SERVICE_CODES[c]: 0.0 for c in LABELS}
    for code, p in probs.items():
        if code not in SERVICE_CODES:
            raise SERError(f"model label {code!r} has no service code (expected one of {sorted(SERVICE_CODES)})")
        out[SERVICE_CODES[code]] = float(p)
    return out


def _top(scores: Mapping[str, float]) -> tuple[str, float]:
    code = max(scores, key=lambda k: scores[k])
    return code, float(scores[code])


# ----------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class ServiceSettings:
    """Everything the service reads from the environment (names of the user's service kept)."""
    engine: str = "hf_wav2vec2"            # SER_ENGINE
    model_dir: str = ""                    # SER_HF_MODEL_DIR
    device: str = "auto"                   # SER_HF_DEVICE
    routing: str = "single"                # SER_HF_ROUTING
    model_dir_en: str = ""                 # SER_HF_MODEL_DIR_EN
    model_dir_zh: str = ""                 # SER_HF_MODEL_DIR_ZH
    default_language: str = "en"          # SER_HF_DEFAULT_LANGUAGE
    max_upload_mb: float = 25.0            # SER_MAX_UPLOAD_MB
    max_duration_sec: float = 600.0        # SER_MAX_DURATION_SEC
    fusion_dir: str = ""                   # SER_FUSION_DIR (a fusion_best dir; optional)
    torch_threads: int = 0                 # SER_TORCH_THREADS (0 = auto: all cores but one, on CPU)

    ENV = {"engine": "SER_ENGINE", "model_dir": "SER_HF_MODEL_DIR", "device": "SER_HF_DEVICE",
           "routing": "SER_HF_ROUTING", "model_dir_en": "SER_HF_MODEL_DIR_EN", "model_dir_zh": "SER_HF_MODEL_DIR_ZH",
           "default_language": "SER_HF_DEFAULT_LANGUAGE", "max_upload_mb": "SER_MAX_UPLOAD_MB",
           "max_duration_sec": "SER_MAX_DURATION_SEC", "fusion_dir": "SER_FUSION_DIR",
           "torch_threads": "SER_TORCH_THREADS"}

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides) -> "ServiceSettings":
        """Read the SER_* variables (unset or empty -> default); keyword overrides (not None) win."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name, var in cls.ENV.items():
            raw = env.get(var)
            if raw is None or str(raw).strip() == "":
                continue
            raw = str(raw).strip()
            if name in ("max_upload_mb", "max_duration_sec"):
                try:
                    values[name] = float(raw)
                except ValueError:
                    raise SERError(f"{var}={raw!r} is not a number") from None
            elif name == "torch_threads":
                try:
                    values[name] = int(raw)
                except ValueError:
                    raise SERError(f"{var}={raw!r} is not an integer") from None
            else:
                values[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - set(cls.ENV)
        if unknown:
            raise SERError(f"unknown service setting(s) {sorted(unknown)}")
        return cls(**values).validated()

    def validated(self) -> "ServiceSettings":
        """Check every value; SERError naming the variable and the allowed values otherwise."""
        if self.engine not in ENGINES:
            raise SERError(f"SER_ENGINE={self.engine!r} is not supported; supported engines: {', '.join(ENGINES)}")
        if self.routing not in ROUTINGS:
            raise SERError(f"SER_HF_ROUTING={self.routing!r} is not valid; choose one of {', '.join(ROUTINGS)}")
        if self.device not in DEVICES and not str(self.device).startswith("cuda:"):
            raise SERError(f"SER_HF_DEVICE={self.device!r} is not valid; choose one of {', '.join(DEVICES)}")
        if self.default_language not in LANGUAGES:
            raise SERError(f"SER_HF_DEFAULT_LANGUAGE={self.default_language!r} is not valid; "
                           f"choose one of {', '.join(LANGUAGES)}")
        for name in ("max_upload_mb", "max_duration_sec"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise SERError(f"{self.ENV[name]}={value!r} must be a positive number")
        if not isinstance(self.torch_threads, int) or self.torch_threads < 0:
            raise SERError(f"SER_TORCH_THREADS={self.torch_threads!r} must be an integer >= 0 (0 = auto)")
        if self.routing == "single" and not self.model_dir:
            raise SERError("SER_HF_MODEL_DIR is not set: point it at a trained best_model dir "
                           "(e.g. outputs/cpu/models/audio/multilingual/best_model)")
        if self.routing == "language":
            for lang in LANGUAGES:
                if not (getattr(self, f"model_dir_{lang}") or self.model_dir):
                    raise SERError(f"SER_HF_ROUTING=language needs SER_HF_MODEL_DIR_{lang.upper()} "
                                   f"(or SER_HF_MODEL_DIR as the fallback) for {lang!r} requests")
        return self

    def model_dirs(self) -> dict[str, str]:
        """Route language -> model dir (single routing: both languages use SER_HF_MODEL_DIR)."""
        if self.routing == "single":
            return {lang: self.model_dir for lang in LANGUAGES}
        return {lang: getattr(self, f"model_dir_{lang}") or self.model_dir for lang in LANGUAGES}

    def to_env(self) -> dict[str, str]:
        """The SER_* environment that reproduces these settings (for a subprocess)."""
        return {var: str(getattr(self, name)) for name, var in self.ENV.items()}


# ----------------------------------------------------------------------------- models
def _check_model_dir(model_dir: str, var: str) -> Path:
    path = Path(model_dir).expanduser()
    if not path.exists():
        raise SERError(f"{var}={model_dir}: model dir not found")
    if not path.is_dir():
        raise SERError(f"{var}={model_dir}: is not a directory")
    if not (path / "config.json").is_file():
        raise SERError(f"{var}={model_dir}: not a model dir (no config.json); expected a best_model/ dir "
                       f"written by `ser train-wav2vec2`")
    return path.resolve()


@dataclass
class LoadedModel:
    """One audio classifier and the lock that serialises its use."""
    name: str
    model_dir: str
    classifier: Any
    lock: threading.Lock = field(default_factory=threading.Lock)

    def predict(self, clips: list[np.ndarray]) -> np.ndarray:
        with self.lock:  # segments are already bounded by segment_ms: no further cut
            probs = self.classifier.predict_proba(clips, batch_size=BATCH_SIZE, max_duration_sec=None)
        return np.asarray(probs, dtype=float)


def load_classifier(model_dir: str | Path, device: str):
    """The project's one audio-classifier loader (also what `ser evaluate-wav2vec2` uses)."""
    from .inference import AudioClassifier
    return AudioClassifier.load(str(model_dir), device=device)


def segment_bounds(n_samples: int, segment_ms: int, overlap_ms: int, sr: int = SAMPLE_RATE) -> list[tuple[int, int]]:
    """Cut [0, n) into windows of segment_ms with overlap_ms overlap; a tail under MIN_TAIL_MS joins the last one."""
    seg = max(1, int(round(segment_ms * sr / 1000)))
    step = max(1, seg - int(round(overlap_ms * sr / 1000)))
    min_tail = int(MIN_TAIL_MS * sr / 1000)
    bounds: list[tuple[int, int]] = []
    start = 0
    while True:
        end = min(start + seg, n_samples)
        # only the trailing piece may join the previous window (segments shorter than MIN_TAIL_MS must not
        # all merge into one window over the whole clip)
        if bounds and end == n_samples and end - start < min(min_tail, seg):
            bounds[-1] = (bounds[-1][0], end)
        else:
            bounds.append((start, end))
        if end >= n_samples:
            break
        start += step
    return bounds


def count_segments(n_samples: int, segment_ms: int, overlap_ms: int, sr: int = SAMPLE_RATE) -> int:
    seg = max(1, int(round(segment_ms * sr / 1000)))
    step = max(1, seg - int(round(overlap_ms * sr / 1000)))
    return 1 + max(0, math.ceil((n_samples - seg) / step))


def _torch_threads() -> int:
    import torch
    return int(torch.get_num_threads())


def _model_name(model_dir: str) -> str:
    """What /health shows for a model dir: its folder name (parent/best_model for a best_model dir), no path."""
    path = Path(model_dir)
    return f"{path.parent.name}/{path.name}" if path.name == "best_model" else path.name


def parse_int_field(name: str, raw, default: int) -> int:
    if raw is None or str(raw).strip() == "":
        return default
    try:
        value = float(str(raw).strip())
    except ValueError:
        raise RequestError(400, f"{name}={echo(raw)} is not an integer number of milliseconds") from None
    if not math.isfinite(value) or value != int(value):
        raise RequestError(400, f"{name}={echo(raw)} is not an integer number of milliseconds")
    return int(value)


def parse_segmentation(segment_ms, overlap_ms) -> tuple[int, int]:
    """Validate segment_ms / overlap_ms form values (400 unless 0 <= overlap < segment, segment in range)."""
    seg = parse_int_field("segment_ms", segment_ms, DEFAULT_SEGMENT_MS)
    ovl = parse_int_field("overlap_ms", overlap_ms, DEFAULT_OVERLAP_MS)
    if not MIN_SEGMENT_MS <= seg <= MAX_SEGMENT_MS:
        raise RequestError(400, f"segment_ms={seg} is out of range; use {MIN_SEGMENT_MS}..{MAX_SEGMENT_MS}")
    if not 0 <= ovl < seg:
        raise RequestError(400, f"overlap_ms={ovl} is invalid; it must satisfy 0 <= overlap_ms < segment_ms ({seg})")
    return seg, ovl


def parse_language_hint(raw) -> str | None:
    """'en'/'zh' (and common spellings) -> route language; empty/auto/none -> None; anything else -> 400."""
    if raw is None:
        return None
    hint = str(raw).strip().lower()
    if hint in NO_HINT:
        return None
    if hint in LANGUAGE_ALIASES:
        return LANGUAGE_ALIASES[hint]
    raise RequestError(400, f"language_hint={echo(raw)} is not supported; use en, zh or leave it empty")


def parse_text_features(form: Mapping[str, Any]) -> dict[str, float]:
    """The posted text-feature fields, parsed and normalised (floats; text4_ready 0/1; probability triples
    and the text4 distribution rescaled to sum to 1). Fields not posted are left out; bad values -> 400."""
    feats: dict[str, float] = {}
    for name in TEXT_FEATURE_FIELDS:
        raw = form.get(name)
        if raw is None or str(raw).strip() == "":
            continue
        text = str(raw).strip()
        if name == "text4_ready":
            lowered = text.lower()
            if lowered in ("1", "1.0", "true", "yes"):
                feats[name] = 1.0
            elif lowered in ("0", "0.0", "false", "no"):
                feats[name] = 0.0
            else:
                raise RequestError(400, f"{name}={echo(raw)} must be 0/1 (or true/false)")
            continue
        try:
            value = float(text)
        except ValueError:
            raise RequestError(400, f"{name}={echo(raw)} is not a number") from None
        if not math.isfinite(value):
            raise RequestError(400, f"{name}={echo(raw)} must be finite")
        if name in _UNIT_INTERVAL_FIELDS and not -1e-6 <= value <= 1 + 1e-6:
            raise RequestError(400, f"{name}={echo(raw)} must lie in [0, 1]")
        if name == "text_negative_score" and not -1 - 1e-6 <= value <= 1 + 1e-6:
            raise RequestError(400, f"{name}={echo(raw)} must lie in [-1, 1] (negative minus positive)")
        if name == "text4_entropy" and not 0 <= value <= MAX_ENTROPY4 + 1e-6:
            raise RequestError(400, f"{name}={echo(raw)} must lie in [0, ln 4 = {MAX_ENTROPY4:.4f}] "
                                    f"(the entropy of 4 classes)")
        if name == "text4_entropy":
            value = min(value, MAX_ENTROPY4)
        feats[name] = float(min(max(value, 0.0), 1.0)) if name in _UNIT_INTERVAL_FIELDS else value
    for group in (("text_negative", "text_neutral", "text_positive"),
                  ("text4_prob_ang", "text4_prob_hap", "text4_prob_neu", "text4_prob_sad")):
        if all(g in feats for g in group):
            total = sum(feats[g] for g in group)
            if total <= 0:
                raise RequestError(400, f"{', '.join(group)} sum to 0; they must be probabilities")
            for g in group:
                feats[g] = feats[g] / total
    return feats


# ----------------------------------------------------------------------------- the service core
class SERService:
    """Loaded models + the request logic; the FastAPI routes are thin wrappers around it."""

    def __init__(self, settings: ServiceSettings, models: dict[str, LoadedModel], device: str,
                 fusion: Any = None, fusion_lock: threading.Lock | None = None):
        self.settings = settings
        self.models = models                 # route language -> LoadedModel (may share one object)
        self.device = device
        self.fusion = fusion
        self.fusion_lock = fusion_lock or threading.Lock()

    @classmethod
    def load(cls, settings: ServiceSettings | None = None, classifier_loader=load_classifier) -> "SERService":
        """Validate settings and load every model once; SERError naming the variable/dir on failure."""
        settings = (settings or ServiceSettings.from_env()).validated()
        device = resolve_device(settings.device)
        if device == "cpu":
            # leave a core to the event loop and the decoders: oversubscribed intra-op threads make every
            # request (and /health) wait; SER_TORCH_THREADS overrides
            import torch
            torch.set_num_threads(settings.torch_threads or max(1, (os.cpu_count() or 2) - 1))
        by_dir: dict[Path, LoadedModel] = {}
        models: dict[str, LoadedModel] = {}
        for lang, model_dir in settings.model_dirs().items():
            var = "SER_HF_MODEL_DIR" if settings.routing == "single" or not getattr(settings, f"model_dir_{lang}") \
                else f"SER_HF_MODEL_DIR_{lang.upper()}"
            path = _check_model_dir(model_dir, var)
            if path not in by_dir:
                try:
                    clf = classifier_loader(path, device)
                except SERError as exc:
                    raise SERError(f"{var}={model_dir}: cannot load the model ({exc})") from exc
                except Exception as exc:  # noqa: BLE001 - any loader failure is a broken dir
                    raise SERError(f"{var}={model_dir}: cannot load the model "
                                   f"({exc.__class__.__name__}: {exc})") from exc
                unknown = [c for c in clf.labels if c not in SERVICE_CODES]
                if unknown:
                    raise SERError(f"{var}={model_dir}: model labels {unknown} have no service code; "
                                   f"the service answers {sorted(SERVICE_CODES.values())}")
                by_dir[path] = LoadedModel(name=path.name if path.name != "best_model" else
                                           f"{path.parent.name}/{path.name}", model_dir=str(path), classifier=clf)
            models[lang] = by_dir[path]
        fusion = None
        if settings.fusion_dir:
            fusion_path = Path(settings.fusion_dir).expanduser()
            if not fusion_path.is_dir():
                raise SERError(f"SER_FUSION_DIR={settings.fusion_dir}: fusion dir not found")
            try:
                from .predictor import FusionPredictor
                fusion = FusionPredictor.load(str(fusion_path))
                _ = fusion.featurizer  # load its audio model(s), ASR and text components now, not per request
            except SERError as exc:
                raise SERError(f"SER_FUSION_DIR={settings.fusion_dir}: cannot load the fusion model ({exc})") from exc
            except Exception as exc:  # noqa: BLE001
                raise SERError(f"SER_FUSION_DIR={settings.fusion_dir}: cannot load the fusion model "
                               f"({exc.__class__.__name__}: {exc})") from exc
        logger.info("SER service ready: engine=%s routing=%s device=%s models=%s fusion=%s", settings.engine,
                    settings.routing, device, {k: m.model_dir for k, m in models.items()}, settings.fusion_dir or None)
        return cls(settings, models, device, fusion)

    # -- routing
    def route(self, hint: str | None) -> str:
        return hint or self.settings.default_language

    # -- /health
    def health(self) -> dict:
        s = self.settings
        default = self.models.get(s.default_language)
        return {
            "status": "ok",
            "serEngine": s.engine,
            "serModel": default.name if default else None,
            "serModelReady": bool(self.models),
            "serHfDevice": self.device,
            "serHfDeviceRequested": s.device,
            "serHfRouting": s.routing,
            # model NAMES (the folder names), never server paths
            "serHfModelDir": self.models[s.default_language].name if s.routing == "single" else
            (_model_name(s.model_dir) if s.model_dir else None),
            "serHfModelDirEn": self.models["en"].name if s.routing == "language" else None,
            "serHfModelDirZh": self.models["zh"].name if s.routing == "language" else None,
            "serHfDefaultLanguage": s.default_language,
            "torchThreads": _torch_threads(),
            "fusionEnabled": self.fusion is not None,
            "fusionDir": Path(self.settings.fusion_dir).resolve().name if self.fusion is not None else None,
            "asrReady": self.asr_problem() is None,
        }

    def _fusion_recogniser(self):
        """The fusion predictor's transcriber when it recognises speech (not ORACLE reference text), else None."""
        if self.fusion is None:
            return None
        asr = (getattr(self.fusion, "components", {}) or {}).get("asr") or {}
        transcriber = getattr(self.fusion.featurizer, "transcriber", None)
        if transcriber is None or getattr(transcriber, "oracle", False) or \
                getattr(transcriber, "backend", asr.get("backend")) in ("reference", "none"):
            return None
        return transcriber

    def asr_transcriber(self):
        """What serves /asr/transcribe: the fusion predictor's own recogniser, else the bundled Whisper tiny.en
        (faster-whisper, loaded on first use), else None."""
        tr = self._fusion_recogniser()
        if tr is not None:
            return tr
        if getattr(self, "_bundled_asr", None) is None:
            from .asr import bundled_transcriber
            self._bundled_asr = bundled_transcriber(cpu_threads=_torch_threads() or 1, quiet=True) or False
        return self._bundled_asr or None

    def asr_problem(self) -> str | None:
        """Why /asr/transcribe cannot work (None when a real recogniser is available)."""
        if self._fusion_recogniser() is not None:
            return None
        from .asr import faster_whisper_available
        from .weights import MISSING_MESSAGE, bundled_available
        if not faster_whisper_available():
            return ("no ASR is configured: faster-whisper is not installed (pip package 'faster-whisper') and the "
                    "fusion pipeline (SER_FUSION_DIR) has no Whisper ASR of its own (reference = the corpus's "
                    "ORACLE transcripts, which cannot transcribe new audio)")
        if not bundled_available():
            return f"no ASR is configured: {MISSING_MESSAGE}"
        return None

    # -- /warmup
    def warmup(self) -> dict:
        rng = np.random.default_rng(0)
        dummy = (0.05 * rng.standard_normal(SAMPLE_RATE)).astype(np.float32)
        done: dict[int, dict] = {}
        out = []
        for lang, model in self.models.items():
            if id(model) not in done:
                t0 = time.perf_counter()
                model.predict([dummy])
                done[id(model)] = {"model": model.name, "modelDir": model.name,
                                   "languages": [], "latencyMs": round(1000 * (time.perf_counter() - t0), 2)}
                out.append(done[id(model)])
            done[id(model)]["languages"].append(lang)
        result: dict[str, Any] = {"status": "ok", "models": out}
        if self.fusion is not None:
            t0 = time.perf_counter()
            try:
                with self.fusion_lock:
                    self.fusion.predict(dummy, SAMPLE_RATE, language=self.settings.default_language, transcript="")
                result["fusion"] = {"ready": True, "latencyMs": round(1000 * (time.perf_counter() - t0), 2)}
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                result["fusion"] = {"ready": False, "error": f"{exc.__class__.__name__}: {echo(str(exc), 300)}"}
        result["latencyMs"] = round(sum(m["latencyMs"] for m in out) + result.get("fusion", {}).get("latencyMs", 0), 2)
        return result

    # -- decoding
    def decode(self, data: bytes, filename: str | None) -> np.ndarray:
        """Upload bytes -> 16 kHz mono float32; RequestError 413 (too large/long) or 400 (not usable audio)."""
        name = f"upload {echo(filename)}" if filename else "upload"
        limit = int(self.settings.max_upload_mb * 1024 * 1024)
        if len(data) > limit:
            raise RequestError(413, f"{name}: {len(data) / 1048576:.1f} MB is over the upload limit of "
                                    f"{self.settings.max_upload_mb:g} MB")
        # header first (rate, channels, length), then block-wise decoding within the decode budget
        return admission.decode_upload(data, name=name, max_duration_sec=self.settings.max_duration_sec,
                                       min_duration_sec=MIN_AUDIO_SEC)

    # -- /ser/analyze
    def analyze(self, data: bytes, filename: str | None = None, segment_ms=DEFAULT_SEGMENT_MS,
                overlap_ms=DEFAULT_OVERLAP_MS, language_hint=None, text_form: Mapping[str, Any] | None = None) -> dict:
        """The whole `/ser/analyze` answer for one upload (blocking: call it from a worker thread)."""
        t0 = time.perf_counter()
        seg_ms, ovl_ms = parse_segmentation(segment_ms, overlap_ms)
        hint = parse_language_hint(language_hint)
        text_features = parse_text_features(text_form or {})
        audio = self.decode(data, filename)
        n_seg = count_segments(audio.size, seg_ms, ovl_ms)
        if n_seg > MAX_SEGMENTS:
            raise RequestError(400, f"segment_ms={seg_ms} with overlap_ms={ovl_ms} gives {n_seg} segments for "
                                    f"{audio.size / SAMPLE_RATE:.1f} s of audio; the limit is {MAX_SEGMENTS}")
        route = self.route(hint)
        model = self.models[route]
        bounds = segment_bounds(audio.size, seg_ms, ovl_ms)
        admission.check_analysed(bounds, audio.size, seg_ms, ovl_ms)
        probs = admission.predict_in_chunks(model.predict, [audio[a:b] for a, b in bounds])
        labels = list(model.classifier.labels)
        segments = []
        for (a, b), p in zip(bounds, probs):
            scores = _codes_to_service(p, labels)
            code, conf = _top(scores)
            segments.append({"startMs": int(round(a * 1000 / SAMPLE_RATE)), "endMs": int(round(b * 1000 / SAMPLE_RATE)),
                             "emotionCode": code, "confidence": conf, "scores": scores})
        pooled = probs.mean(axis=0)
        overall_scores = _codes_to_service(pooled, labels)
        overall_code, overall_conf = _top(overall_scores)
        audio_summary = {
            "emotionCode": overall_code, "confidence": overall_conf, "entropy": float(entropy(pooled)),
            "scores": overall_scores, "segmentCount": len(segments),
            "probs": {code: float(p) for code, p in zip(labels, pooled)},
        }
        admission.ensure_finite({"segments": segments, "audioSummary": audio_summary}, "audio model's answer")
        admission.checkpoint()
        fusion = self._fusion(audio, route, hint, labels, pooled, text_features)
        duration_ms = int(round(audio.size * 1000 / SAMPLE_RATE))
        return {
            "overall": {"emotionCode": overall_code, "confidence": overall_conf, "scores": overall_scores},
            "segments": segments,
            "audioSummary": audio_summary,
            "textFeatures": text_features,
            "fusion": fusion,
            "meta": {"model": model.name, "modelDir": model.name, "engine": self.settings.engine,
                     "routeLanguage": route, "routingStrategy": self.settings.routing, "languageHint": hint,
                     "sampleRate": SAMPLE_RATE, "durationMs": duration_ms, "segmentMs": seg_ms,
                     "overlapMs": ovl_ms, "fusionEnabled": self.fusion is not None,
                     "latencyMs": round(1000 * (time.perf_counter() - t0), 2)},
        }

    def _fusion(self, audio, route, hint, labels, pooled, text_features) -> dict:
        """The fusion object: {enabled: false} without SER_FUSION_DIR; else FusionPredictor on this clip,
        with the posted text features replacing its own ASR + text branch when any are posted."""
        if self.fusion is None:
            return {"enabled": False}
        try:
            with self.fusion_lock:
                if text_features:
                    row = self.fusion_row(audio, route, text_features)
                    res = self.fusion.predict_features(row, language=route)
                    source = "posted_text_features"
                else:
                    res = self.fusion.predict(audio, SAMPLE_RATE, language=route)
                    source = "asr"
        except Exception as exc:  # noqa: BLE001 - fusion trouble must not lose the audio answer
            logger.exception("fusion failed")
            return {"enabled": True, "ready": False, "error": f"{exc.__class__.__name__}: {echo(str(exc), 300)}"}
        text_probs = res.get("text_probs")
        asr = (getattr(self.fusion, "components", {}) or {}).get("asr") or {}
        out = {
            "enabled": True, "ready": True,
            "label": SERVICE_CODES.get(res["label"], res["label"]),
            "confidence": float(res["confidence"]),
            "scores": _codes_to_service(res["fused_probs"]),
            "temperature": float(res["temperature"]) if res.get("temperature") is not None else None,
            "audioOnly": _codes_to_service(res["audio_probs"]) if res.get("audio_probs") else None,
            "textOnly": _codes_to_service(text_probs) if text_probs else None,
            "source": source,
            "transcript": res.get("transcript", ""),
            "language": res.get("language", route),
            "asrBackend": asr.get("backend"),
            "transcriptsOracle": bool(asr.get("oracle", False)),
        }
        if not admission.is_finite_tree(out):  # e.g. extreme posted text features: no 500, no NaN in JSON
            return {"enabled": True, "ready": False, "error": "the fusion model gave non-finite scores for this input"}
        return out

    def fusion_row(self, audio: np.ndarray, route: str, text_features: Mapping[str, float]) -> dict:
        """The fusion feature row for posted text features: the predictor's own audio columns (its audio
        model on the whole clip) and empty-transcript text columns, overridden by the posted values; the
        text4 confidence/entropy/ready and text_negative_score are derived when not posted."""
        row = dict(self.fusion.featurizer.row(audio, route, transcript=""))
        row.update(text_features)
        probs_keys = [f"text4_prob_{c}" for c in LABELS]
        if all(k in text_features for k in probs_keys):
            p = np.array([text_features[k] for k in probs_keys])
            if "text4_confidence" not in text_features:
                row["text4_confidence"] = float(p.max())
            if "text4_entropy" not in text_features:
                row["text4_entropy"] = float(entropy(p))
            if "text4_ready" not in text_features:
                row["text4_ready"] = 1.0
        if "text_negative_score" not in text_features and {"text_negative", "text_positive"} <= set(text_features):
            row["text_negative_score"] = text_features["text_negative"] - text_features["text_positive"]
        row["lang_is_zh"] = 1.0 if route == "zh" else 0.0
        row["language"] = route
        return row

    # -- /asr/transcribe
    def transcribe(self, data: bytes, filename: str | None = None, language=None) -> dict:
        """`/asr/transcribe`: the fusion predictor's ASR, else the bundled Whisper tiny.en, on one upload
        (503 when neither is available; 422 for a language the model does not recognise)."""
        problem = self.asr_problem()
        if problem:
            raise RequestError(503, problem)
        with self.fusion_lock:  # one lazy load of the bundled model, however many requests arrive at once
            transcriber = self.asr_transcriber()
        if transcriber is None:
            raise RequestError(503, "no ASR is configured: the bundled Whisper tiny.en could not be loaded")
        asr = (((self.fusion.components.get("asr") or {}) if transcriber is self._fusion_recogniser() else {})
               or {"backend": "whisper", "model": getattr(transcriber, "model_name", "tiny.en")})
        hint = parse_language_hint(language)
        audio = self.decode(data, filename)
        lang = hint or self.settings.default_language
        if not getattr(transcriber, "recognises", lambda _l: True)(lang):
            raise RequestError(422, f"language {lang!r}: the speech recogniser "
                                    f"({getattr(transcriber, 'model_name', '?')}) is English-only")
        with self.fusion_lock:
            if hasattr(transcriber, "transcribe_detailed"):
                out = transcriber.transcribe_detailed(audio, lang)
            else:
                out = transcriber.transcribe(audio, lang)
        duration_ms = int(round(audio.size * 1000 / SAMPLE_RATE))
        if isinstance(out, Mapping):
            text = str(out.get("text", "") or "")
            lang = out.get("language") or lang
            raw_segments = out.get("segments")
        else:
            text, raw_segments = str(out or ""), None
        if raw_segments:
            segments = [{"startMs": int(round(1000 * float(s.get("start", 0)))),
                         "endMs": int(round(1000 * float(s.get("end", 0)))), "text": str(s.get("text", "")).strip()}
                        for s in raw_segments]
        else:
            segments = [{"startMs": 0, "endMs": duration_ms, "text": text.strip()}] if text.strip() else []
        return {"segments": segments, "language": lang, "durationMs": duration_ms, "text": text.strip(),
                "asrBackend": asr.get("backend"), "asrModel": asr.get("model"),
                "asrEngine": getattr(transcriber, "engine", None)}


# ----------------------------------------------------------------------------- the FastAPI app
def create_app(settings: ServiceSettings | None = None, service: SERService | None = None,
               classifier_loader=load_classifier):
    """Build the FastAPI app. Models load at start-up (lifespan) from `settings` (default: the SER_* env),
    unless an already loaded `service` is given."""
    @contextlib.asynccontextmanager
    async def lifespan(app_: FastAPI):
        # Inference threads run Python between torch ops while holding the GIL; a short switch interval lets
        # the event loop (health checks, new uploads) get it back within ~1 ms instead of 5 ms per hand-off.
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
        if service is not None:
            app_.state.ser = service
        else:
            try:
                app_.state.ser = await run_in_threadpool(SERService.load, settings or ServiceSettings.from_env(),
                                                         classifier_loader)
            except SERError as exc:
                print(f"SER service start-up failed: {exc}", file=sys.stderr, flush=True)
                raise
        if os.environ.get("SER_WARMUP", "1").strip().lower() not in ("0", "false", "no", "off"):
            # warm-up at start-up only: GET /warmup shows this result and makes the server do nothing
            app_.state.warmup = {**await run_in_threadpool(app_.state.ser.warmup), "ranAt": "startup"}
        yield

    app_ = FastAPI(title="SER service", version="1.0", lifespan=lifespan,
                   description="Speech emotion recognition: POST /ser/analyze (contract of the user's service).")

    def _svc(request: Request) -> SERService:
        return request.app.state.ser

    # body size counted as it arrives, bounded queue (503 + Retry-After), deadlines, dropped work of gone clients
    app_.add_middleware(admission.AdmissionMiddleware, settings=admission.AdmissionSettings.from_env())

    @app_.exception_handler(RequestError)
    async def _request_error(request: Request, exc: RequestError):
        return JSONResponse(status_code=exc.status, content={"detail": str(exc)}, headers=exc.headers or None)

    @app_.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        # FastAPI's 422 shape, with any echoed input clipped (a form value may be up to 1 MB)
        errors = [{**e, "input": echo(e["input"])} if e.get("input") is not None else e for e in exc.errors()]
        return JSONResponse(status_code=422, content={"detail": jsonable_encoder(errors, custom_encoder={
            bytes: lambda b: echo(b)})})

    @app_.exception_handler(SERError)
    async def _ser_error(request: Request, exc: SERError):
        logger.error("error on %s: %s", request.url.path, exc)
        return JSONResponse(status_code=500, content={"detail": str(exc)})

    @app_.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        logger.exception("unexpected error on %s", request.url.path)
        return JSONResponse(status_code=500, content={"detail": f"internal error: {exc.__class__.__name__}"})

    @app_.get("/health")
    async def health(request: Request):
        return {**_svc(request).health(), "admission": admission.stats()}

    @app_.get("/warmup")
    async def warmup(request: Request):
        """The start-up warm-up's result (no work for strangers); POST /warmup reruns it through the queue."""
        done = getattr(request.app.state, "warmup", None)
        return done if done is not None else {"status": "not_run", "detail": "warm-up is off (SER_WARMUP=0); "
                                              "POST /warmup runs it"}

    @app_.post("/warmup")
    async def warmup_again(request: Request):
        request.app.state.warmup = {**await run_in_threadpool(_svc(request).warmup), "ranAt": "request"}
        return request.app.state.warmup

    @app_.post("/ser/analyze")
    async def analyze(request: Request, file: UploadFile = File(...), segment_ms: str | None = Form(None),
                      overlap_ms: str | None = Form(None), language_hint: str | None = Form(None),
                      text_negative: str | None = Form(None), text_neutral: str | None = Form(None),
                      text_positive: str | None = Form(None), text_negative_score: str | None = Form(None),
                      text_length_norm: str | None = Form(None), text4_prob_ang: str | None = Form(None),
                      text4_prob_hap: str | None = Form(None), text4_prob_neu: str | None = Form(None),
                      text4_prob_sad: str | None = Form(None), text4_confidence: str | None = Form(None),
                      text4_entropy: str | None = Form(None), text4_ready: str | None = Form(None)):
        svc = _svc(request)
        admission.check_form(await request.form(), ("file", "segment_ms", "overlap_ms", "language_hint",
                                                     *TEXT_FEATURE_FIELDS))
        data = await _read_upload(file, svc)
        local = locals()
        text_form = {name: local[name] for name in TEXT_FEATURE_FIELDS}
        answer = await run_in_threadpool(svc.analyze, data, file.filename, segment_ms, overlap_ms, language_hint,
                                         text_form)
        admission.ensure_finite(answer)  # a NaN cannot be sent as JSON: a clear 422, never a 500
        return answer

    @app_.post("/asr/transcribe")
    async def asr_transcribe(request: Request, file: UploadFile = File(...), language: str | None = Form(None),
                             language_hint: str | None = Form(None)):
        svc = _svc(request)
        admission.check_form(await request.form(), ("file", "language", "language_hint"))
        data = await _read_upload(file, svc)
        return await run_in_threadpool(svc.transcribe, data, file.filename, language or language_hint)

    return app_


async def _read_upload(upload, svc: SERService) -> bytes:
    """Read an UploadFile up to the limit (+1 byte to detect overflow) -> bytes, or 413."""
    limit = int(svc.settings.max_upload_mb * 1024 * 1024)
    chunks, total = [], 0
    while True:
        chunk = await upload.read(1 << 20)
        if not chunk:
            break
        total += len(chunk)
        if total > limit:
            raise RequestError(413, f"upload {echo(upload.filename)}: over the upload limit of "
                                    f"{svc.settings.max_upload_mb:g} MB")
        chunks.append(chunk)
    return b"".join(chunks)


#: `uvicorn ser_helpers.service:app` (settings from the SER_* environment at start-up)
app = create_app()


# ----------------------------------------------------------------------------- running it
def serve(settings: ServiceSettings | None = None, host: str = "127.0.0.1", port: int = 8001,
          log_level: str = "info") -> None:
    """Load the models (SERError if a setting or dir is bad), then serve until interrupted."""
    import uvicorn
    service = SERService.load(settings or ServiceSettings.from_env())
    uvicorn.run(create_app(service=service), host=host, port=port, log_level=log_level)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM it when the parent dies (no orphaned servers)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes
            import signal
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG


class ServerProcess:
    """A `uvicorn ser_helpers.service:app` subprocess on loopback; use as a context manager (always stopped)."""

    def __init__(self, env: Mapping[str, str], host: str = "127.0.0.1", port: int | None = None,
                 startup_timeout: float = 120.0, log_path: str | Path | None = None, use_cli: bool = False,
                 cli_args: tuple[str, ...] = ()):
        self.host = host
        self.port = port or free_port(host)
        self.url = f"http://{host}:{self.port}"
        self.startup_timeout = startup_timeout
        self._env = {**os.environ, **{k: str(v) for k, v in env.items()}}
        self._env.setdefault("PYTHONUNBUFFERED", "1")
        self._log = open(log_path, "w+b") if log_path else __import__("tempfile").TemporaryFile()  # noqa: SIM115
        self.proc: subprocess.Popen | None = None
        self.use_cli = use_cli          # run `ser serve` (with cli_args) instead of `uvicorn ser_helpers.service:app`
        self.cli_args = tuple(cli_args)

    def start(self) -> "ServerProcess":
        import httpx
        if self.use_cli:
            cmd = [sys.executable, "-m", "ser_helpers.cli", "serve", "--host", self.host, "--port", str(self.port),
                   "--log-level", "warning", *self.cli_args]
        else:
            cmd = [sys.executable, "-m", "uvicorn", "ser_helpers.service:app", "--host", self.host,
                   "--port", str(self.port), "--log-level", "warning"]
        self.proc = subprocess.Popen(cmd, env=self._env, stdout=self._log, stderr=subprocess.STDOUT,
                                     cwd=str(Path(__file__).resolve().parent.parent), preexec_fn=_die_with_parent)
        atexit.register(self.stop)  # a notebook kernel or test run that ends also ends its server
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SERError(f"the SER service exited during start-up (code {self.proc.returncode}):\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/health", timeout=2, trust_env=False).status_code == 200:
                    return self
            time.sleep(0.2)
        self.stop()
        raise SERError(f"the SER service did not answer /health within {self.startup_timeout:g} s:\n{self.log_tail()}")

    def log_tail(self, n_chars: int = 4000) -> str:
        self._log.flush()
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")[-n_chars:]

    def stop(self) -> int | None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        return self.proc.returncode if self.proc is not None else None

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        self._log.close()


def start_server(model_dir: str | Path | None = None, host: str = "127.0.0.1", port: int | None = None,
                 startup_timeout: float = 120.0, **env) -> ServerProcess:
    """Start the service as a subprocess (SER_HF_MODEL_DIR=model_dir plus any SER_* given as keywords,
    e.g. SER_HF_DEVICE="cpu"), wait for /health, return the running ServerProcess (stop it when done)."""
    full_env = {"SER_ENGINE": "hf_wav2vec2", "SER_HF_DEVICE": "cpu"}
    if model_dir is not None:
        full_env["SER_HF_MODEL_DIR"] = str(Path(model_dir).resolve())
    full_env.update({k: str(v) for k, v in env.items()})
    return ServerProcess(full_env, host=host, port=port, startup_timeout=startup_timeout).start()


def post_clip(url: str, clip: str | Path | bytes, filename: str = "clip.wav", timeout: float = 120.0,
              **form) -> dict:
    """POST one clip (a path read on THIS side, or bytes) to `{url}/ser/analyze`; the JSON answer (SERError on HTTP errors)."""
    import httpx
    data = Path(clip).read_bytes() if isinstance(clip, (str, Path)) else clip
    if isinstance(clip, (str, Path)):
        filename = Path(clip).name
    fields = {k: str(v) for k, v in form.items() if v is not None}
    resp = httpx.post(f"{url}/ser/analyze", files={"file": (filename, data, "audio/wav")}, data=fields,
                      timeout=timeout)
    if resp.status_code != 200:
        raise SERError(f"/ser/analyze answered {resp.status_code}: {resp.text[:500]}")
    return resp.json()


def wav_bytes(audio: np.ndarray, sr: int = SAMPLE_RATE) -> bytes:
    import soundfile as sf
    buf = io.BytesIO()
    sf.write(buf, np.asarray(audio), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def get_json(url: str, timeout: float = 120.0) -> dict:
    """GET a JSON endpoint (e.g. `{url}/health`); SERError on HTTP errors."""
    import httpx
    resp = httpx.get(url, timeout=timeout)
    if resp.status_code != 200:
        raise SERError(f"GET {url} answered {resp.status_code}: {resp.text[:500]}")
    return resp.json()


def post_raw(url: str, data: bytes, filename: str = "clip.wav", timeout: float = 120.0, **form) -> dict:
    """POST to `{url}/ser/analyze` and return {status, detail or overall} whatever the status (to show errors)."""
    import httpx
    resp = httpx.post(f"{url}/ser/analyze", files={"file": (filename, data, "audio/wav")},
                      data={k: str(v) for k, v in form.items() if v is not None}, timeout=timeout)
    body = resp.json()
    return {"status": resp.status_code, **({"detail": body["detail"]} if "detail" in body else
                                            {"overall": body.get("overall")})}


def pick_test_clips(manifest_csv: str | Path, n_clips: int = 4):
    """`n_clips` rows of a manifest: one per label in turn, languages alternating (en, zh, ...), deterministic."""
    from .common import read_manifest
    df = read_manifest(manifest_csv)
    if "language" not in df.columns:
        df["language"] = ""
    df = df.sort_values(["label", "language", "path"], kind="stable").reset_index(drop=True)
    langs = sorted(df["language"].unique())
    labels = sorted(df["label"].unique())
    picked, used = [], set()
    for i in range(n_clips):
        label, lang = labels[i % len(labels)], langs[i % len(langs)]
        pool = df[(df["label"] == label) & ~df.index.isin(used)]
        pool = pool[pool["language"] == lang] if (pool["language"] == lang).any() else pool
        if pool.empty:
            pool = df[~df.index.isin(used)]
            if pool.empty:
                break
        used.add(pool.index[0])
        picked.append(pool.index[0])
    return df.loc[picked, ["path", "label", "language"]].reset_index(drop=True)


def analyze_clips(url: str, clips, **form) -> dict[str, dict]:
    """POST every clip of `pick_test_clips` (with its language as language_hint) -> {file name: answer}."""
    answers = {}
    for row in clips.itertuples():
        hint = row.language if row.language in LANGUAGES else None
        answers[Path(row.path).name] = post_clip(url, row.path, language_hint=hint, **form)
    return answers


def long_test_clip(paths, min_sec: float = 20.0, gap_sec: float = 0.3) -> np.ndarray:
    """Test clips joined (cycling through `paths`) until at least `min_sec` long: a multi-segment request."""
    from .audio import load_audio
    paths = list(paths)
    if not paths:
        raise SERError("no clips to join")
    gap = np.zeros(int(gap_sec * SAMPLE_RATE), dtype=np.float32)
    parts, total, i = [], 0, 0
    while total < min_sec * SAMPLE_RATE:
        clip = load_audio(paths[i % len(paths)])
        parts += [clip, gap]
        total += clip.size + gap.size
        i += 1
    return np.concatenate(parts[:-1])


def save_answers(path: str | Path, answers: Mapping[str, dict]) -> Path:
    from .common import write_json_atomic
    return write_json_atomic(path, dict(answers))


def answers_table(answers: Mapping[str, dict], truth: Mapping[str, str] | None = None):
    """One row per analysed clip: overall emotion, confidence, segment count, duration, latency, route."""
    import pandas as pd
    rows = []
    for name, ans in answers.items():
        rows.append({"clip": name, **({"true": SERVICE_CODES.get(truth.get(name), truth.get(name))} if truth else {}),
                     "emotion": ans["overall"]["emotionCode"],
                     "confidence": round(ans["overall"]["confidence"], 3), "segments": len(ans["segments"]),
                     "duration_ms": ans["meta"]["durationMs"], "latency_ms": ans["meta"]["latencyMs"],
                     "route": ans["meta"]["routeLanguage"],
                     **{k: round(v, 3) for k, v in ans["overall"]["scores"].items()}})
    return pd.DataFrame(rows)


def segment_timeline(answer: dict, path=None, title: str = "Per-segment emotion"):
    """Stacked per-segment probabilities over time with the winning emotion written on each segment (PNG)."""
    from . import plots
    import matplotlib.pyplot as plt
    codes = [SERVICE_CODES[c] for c in LABELS]
    colors = {"ANGRY": "#d62728", "HAPPY": "#ff7f0e", "NEUTRAL": "#7f7f7f", "SAD": "#1f77b4"}
    fig, ax = plt.subplots(figsize=(9, 3))
    segs = answer["segments"]
    for k, seg in enumerate(segs):
        # overlapping windows: each bar spans its window's start up to the next window's start
        end_ms = min(seg["endMs"], segs[k + 1]["startMs"]) if k + 1 < len(segs) else seg["endMs"]
        x0, width = seg["startMs"] / 1000, (end_ms - seg["startMs"]) / 1000
        bottom = 0.0
        for code in codes:
            p = seg["scores"][code]
            ax.bar(x0, p, width=width, bottom=bottom, align="edge", color=colors[code], edgecolor="white",
                   label=code.lower() if seg is answer["segments"][0] else None)
            bottom += p
        ax.text(x0 + width / 2, 1.03, f"{seg['emotionCode'].lower()}\n{seg['confidence']:.2f}", ha="center",
                va="bottom", fontsize=8)
    ax.set_xlim(0, answer["meta"]["durationMs"] / 1000)
    ax.set_ylim(0, 1.25)
    ax.set_xlabel("time (s)"); ax.set_ylabel("probability")
    ax.set_title(f"{title} — overall {answer['overall']['emotionCode'].lower()} "
                 f"({answer['overall']['confidence']:.2f})")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    fig.tight_layout()
    return plots.save_figure(fig, path)


# ----------------------------------------------------------------------------- CLI
def register_cli(subparsers) -> None:
    p = subparsers.add_parser("serve", help="run the SER HTTP service (POST /ser/analyze, /health, /warmup)",
                              description="Serve the trained audio model over HTTP. Flags override the SER_* "
                                          "environment variables; unset flags fall back to them.")
    p.add_argument("--host", default="127.0.0.1",
                   help="bind address (default 127.0.0.1: keep it, behind a reverse proxy that authenticates; "
                        "the service has no authentication of its own)")
    p.add_argument("--port", type=int, default=8001)
    p.add_argument("--engine", default=None, help="SER_ENGINE (hf_wav2vec2)")
    p.add_argument("--model-dir", default=None, help="SER_HF_MODEL_DIR: a best_model dir")
    p.add_argument("--device", default=None, help="SER_HF_DEVICE: auto|cpu|cuda (auto)")
    p.add_argument("--routing", default=None, help="SER_HF_ROUTING: single|language (single)")
    p.add_argument("--model-dir-en", default=None, help="SER_HF_MODEL_DIR_EN (language routing)")
    p.add_argument("--model-dir-zh", default=None, help="SER_HF_MODEL_DIR_ZH (language routing)")
    p.add_argument("--default-language", default=None, help="SER_HF_DEFAULT_LANGUAGE: en|zh (en)")
    p.add_argument("--max-upload-mb", type=float, default=None, help="SER_MAX_UPLOAD_MB (25)")
    p.add_argument("--max-duration-sec", type=float, default=None, help="SER_MAX_DURATION_SEC (600)")
    p.add_argument("--fusion-dir", default=None, help="SER_FUSION_DIR: a fusion_best dir (optional)")
    p.add_argument("--torch-threads", type=int, default=None,
                   help="SER_TORCH_THREADS: intra-op threads on CPU (0 = all cores but one)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=_cli_serve)


def _cli_serve(args) -> int:
    settings = ServiceSettings.from_env(
        engine=args.engine, model_dir=args.model_dir, device=args.device, routing=args.routing,
        model_dir_en=args.model_dir_en, model_dir_zh=args.model_dir_zh, default_language=args.default_language,
        max_upload_mb=args.max_upload_mb, max_duration_sec=args.max_duration_sec, fusion_dir=args.fusion_dir,
        torch_threads=args.torch_threads)
    serve(settings, host=args.host, port=args.port, log_level=args.log_level)
    return 0


__all__ = ["ServiceSettings", "SERService", "RequestError", "create_app", "app", "serve", "start_server",
           "ServerProcess", "free_port", "post_clip", "post_raw", "get_json", "pick_test_clips", "analyze_clips",
           "long_test_clip", "wav_bytes", "answers_table", "segment_timeline", "save_answers", "segment_bounds",
           "parse_text_features", "TEXT_FEATURE_FIELDS", "register_cli"]
