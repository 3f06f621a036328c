"""Service settings: the SER_* environment (the service's and admission control's), its limits and defaults, the
contract's label codes.

Taught in notebook 05 (05_serve_ser_api.ipynb).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ..common import LABELS, SERVICE_CODES, SERError
from .errors import echo

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
MULTIPART_OVERHEAD_BYTES = 256 * 1024  # form fields + boundaries allowed on top of the upload limit
MAX_ENTROPY4 = math.log(len(LABELS))   # the largest entropy of a 4-class distribution
SWITCH_INTERVAL_S = 0.0005    # GIL hand-off interval in the server process (default 0.005)


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


# ----------------------------------------------------------------------------- admission settings
def _env_number(env: Mapping[str, str], var: str, default, cast, minimum):
    raw = env.get(var)
    if raw is None or str(raw).strip() == "":
        return default
    try:
        value = cast(str(raw).strip())
    except ValueError:
        raise SERError(f"{var}={echo(raw)} is not a number") from None
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= minimum):
        raise SERError(f"{var}={echo(raw)} must be a number >= {minimum}")
    return value


@dataclass(frozen=True)
class AdmissionSettings:
    """The admission knobs (environment names in brackets)."""
    workers: int = 2                    # SER_WORKERS: requests processed at once
    max_queue: int = 8                  # SER_MAX_QUEUE: requests waiting; more -> 503 + Retry-After
    request_timeout_sec: float = 300.0  # SER_REQUEST_TIMEOUT_SEC: deadline from arrival to answer
    body_timeout_sec: float = 60.0      # SER_BODY_TIMEOUT_SEC: the upload must arrive within this
    decode_budget_mb: float = 512.0     # SER_DECODE_BUDGET_MB: decoding memory of all requests together

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "AdmissionSettings":
        env = os.environ if env is None else env
        return cls(workers=_env_number(env, "SER_WORKERS", cls.workers, int, 1),
                   max_queue=_env_number(env, "SER_MAX_QUEUE", cls.max_queue, int, 0),
                   request_timeout_sec=_env_number(env, "SER_REQUEST_TIMEOUT_SEC", cls.request_timeout_sec, float, 0.1),
                   body_timeout_sec=_env_number(env, "SER_BODY_TIMEOUT_SEC", cls.body_timeout_sec, float, 1),
                   decode_budget_mb=_env_number(env, "SER_DECODE_BUDGET_MB", cls.decode_budget_mb, float, 16))
