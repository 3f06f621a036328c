"""The SER HTTP service, taught in notebook 05 (05_serve_ser_api.ipynb): `POST /ser/analyze`, `GET /health`,
`GET /warmup`, `POST /asr/transcribe`, keeping the contract of ../shared/CLI_CONTRACT.md.

One module per job; this package re-exports their public names, so `uvicorn ser_helpers.service:app`,
`from ser_helpers.service import X` and `ser.service.X` work as before the split:

* `settings`  ServiceSettings, AdmissionSettings (the SER_* environment), limits and defaults, the contract's label codes
* `models`    loading the audio classifiers (one lock per model)
* `errors`    RequestError and the clear 4xx answers (echo, ensure_finite)
* `requests`  segmentation, form-field parsing/validation, the bounds on a request's shape
* `admission` admission control, the flow: body/queue/deadline limits, disconnect watching (AdmissionMiddleware)
* `tickets`   a request's deadline and cancel flag in the worker (checkpoint, predict_in_chunks)
* `probing`   refusing audio from its header alone, before decoding and before the queue
* `decoding`  bounded, block-wise decoding of uploads within one decode budget
* `app`       SERService (the request logic), create_app (the FastAPI routes), `app`, serve
* `process`   the service as a loopback subprocess (ServerProcess, start_server, free_port)
* `client`    a small HTTP client (post_clip, post_raw, get_json, wav_bytes)
* `views`     notebook tables and plots of answers
* `cli`       `ser serve`

`ser_helpers.service.app` is the FastAPI app (`uvicorn ser_helpers.service:app`), which hides the module
of the same name as a package attribute: import from it by name (`from ser_helpers.service.app import SERService`).
"""
from __future__ import annotations

from ser_helpers.service import admission
from ser_helpers.service.errors import RequestError, echo
from ser_helpers.service.app import SERService, app, create_app, logger, serve
from ser_helpers.service.cli import _cli_serve, register_cli
from ser_helpers.service.client import get_json, post_clip, post_raw, wav_bytes
from ser_helpers.service.models import LoadedModel, _check_model_dir, _model_name, _torch_threads, load_classifier
from ser_helpers.service.process import ServerProcess, _die_with_parent, free_port, start_server
from ser_helpers.service.requests import (count_segments, parse_int_field, parse_language_hint, parse_segmentation,
                                          parse_text_features, segment_bounds)
from ser_helpers.service.settings import (
    _UNIT_INTERVAL_FIELDS, BATCH_SIZE, DEFAULT_OVERLAP_MS, DEFAULT_SEGMENT_MS, DEVICES, ENGINES, LANGUAGE_ALIASES,
    LANGUAGES, MAX_ENTROPY4, MAX_SEGMENT_MS, MAX_SEGMENTS, MIN_AUDIO_SEC, MIN_SEGMENT_MS, MIN_TAIL_MS,
    MULTIPART_OVERHEAD_BYTES, NO_HINT, ROUTINGS, SWITCH_INTERVAL_S, TEXT_FEATURE_FIELDS, ServiceSettings,
    _codes_to_service, _top)
from ser_helpers.service.views import (analyze_clips, answers_table, long_test_clip, pick_test_clips, save_answers,
                                       segment_timeline)

__all__ = ["ServiceSettings", "SERService", "RequestError", "create_app", "app", "serve", "start_server",
           "ServerProcess", "free_port", "post_clip", "post_raw", "get_json", "pick_test_clips", "analyze_clips",
           "long_test_clip", "wav_bytes", "answers_table", "segment_timeline", "save_answers", "segment_bounds",
           "parse_text_features", "TEXT_FEATURE_FIELDS", "register_cli"]
