"""`ser serve`: the service's command line.

Taught in notebook 05 (05_serve_ser_api.ipynb).
"""
from __future__ import annotations

from .app import serve
from .settings import ServiceSettings


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
