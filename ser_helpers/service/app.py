"""The SER HTTP service app: `POST /ser/analyze`, `GET /health`, `GET /warmup`, `POST /asr/transcribe`.

Taught in notebook 05 (05_serve_ser_api.ipynb). 
It keeps the contract of the user's existing service (docs: ../shared/CLI_CONTRACT.md, issue 4), so a
client written for that service talks to this one unchanged. Deploy it with

    SER_ENGINE=hf_wav2vec2 SER_HF_MODEL_DIR=outputs/cpu/models/audio/multilingual/best_model \\
    SER_HF_DEVICE=auto uvicorn ser_helpers.service:app --host 127.0.0.1 --port 8001

or `ser serve --model-dir ...` (binds 127.0.0.1:8001), behind a reverse proxy that authenticates clients
and terminates TLS: the service itself has no authentication, so never bind it to a public address.
Admission control (`ser_helpers.service.admission`) bounds every request: body size counted as it arrives, the
header checked before decoding, a bounded queue (503 + Retry-After), a deadline, and work dropped when the
client goes; `/warmup` runs at start-up (GET returns that result; POST reruns it, queued like an analysis).

Models load once, at start-up (FastAPI lifespan); a bad setting or model dir stops start-up with a message
naming it. Inference runs in a worker thread (never on the event loop) and each model is used under its own
lock, so `/health` answers while an analysis runs and concurrent requests get the answers sequential ones get.
Nothing from a request is used as a server-side path: uploads are decoded from bytes in memory.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ..common import LABELS, SAMPLE_RATE, SERVICE_CODES, SERError, resolve_device
from ..metrics import entropy
from . import admission
from .decoding import decode_upload
from .errors import RequestError, echo, ensure_finite, is_finite_tree
from .models import LoadedModel, _check_model_dir, _model_name, _torch_threads, load_classifier
from .requests import (check_analysed, check_form, count_segments, parse_language_hint, parse_segmentation,
                       parse_text_features, segment_bounds)
from .settings import (DEFAULT_OVERLAP_MS, DEFAULT_SEGMENT_MS, MAX_SEGMENTS, MIN_AUDIO_SEC, SWITCH_INTERVAL_S,
                       TEXT_FEATURE_FIELDS, AdmissionSettings, ServiceSettings, _codes_to_service, _top)
from .tickets import checkpoint, predict_in_chunks

# ----------------------------------------------------------------------------- the service core
logger = logging.getLogger("ser_helpers.service")


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
                from ..predictor import FusionPredictor
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
            from ..asr import bundled_transcriber
            self._bundled_asr = bundled_transcriber(cpu_threads=_torch_threads() or 1, quiet=True) or False
        return self._bundled_asr or None

    def asr_problem(self) -> str | None:
        """Why /asr/transcribe cannot work (None when a real recogniser is available)."""
        if self._fusion_recogniser() is not None:
            return None
        from ..asr.factory import faster_whisper_available
        from ..weights import MISSING_MESSAGE, bundled_available
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
        return decode_upload(data, name=name, max_duration_sec=self.settings.max_duration_sec,
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
        check_analysed(bounds, audio.size, seg_ms, ovl_ms)
        probs = predict_in_chunks(model.predict, [audio[a:b] for a, b in bounds])
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
        ensure_finite({"segments": segments, "audioSummary": audio_summary}, "audio model's answer")
        checkpoint()
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
        if not is_finite_tree(out):  # e.g. extreme posted text features: no 500, no NaN in JSON
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
    app_.add_middleware(admission.AdmissionMiddleware, settings=AdmissionSettings.from_env())

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
        check_form(await request.form(), ("file", "segment_ms", "overlap_ms", "language_hint",
                                                     *TEXT_FEATURE_FIELDS))
        data = await _read_upload(file, svc)
        local = locals()
        text_form = {name: local[name] for name in TEXT_FEATURE_FIELDS}
        answer = await run_in_threadpool(svc.analyze, data, file.filename, segment_ms, overlap_ms, language_hint,
                                         text_form)
        ensure_finite(answer)  # a NaN cannot be sent as JSON: a clear 422, never a 500
        return answer

    @app_.post("/asr/transcribe")
    async def asr_transcribe(request: Request, file: UploadFile = File(...), language: str | None = Form(None),
                             language_hint: str | None = Form(None)):
        svc = _svc(request)
        check_form(await request.form(), ("file", "language", "language_hint"))
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
