"""ser_helpers: the package behind the SER curriculum notebooks, the `ser` CLI and the tests.

One module per stage (see docs/INTERFACES.md). Submodules are imported lazily, so
`import ser_helpers as ser` is cheap and `ser.manifest`, `ser.acoustic` ... load on first use.
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path

__version__ = "0.1.0"

_SUBMODULES = {
    "common", "audio", "metrics", "plots", "layout", "synth", "manifest", "acoustic", "inference",
    "baseline", "evaluate", "service", "asr", "text", "features", "fusion", "ablation",
    "selection", "predictor", "demo", "report", "pipeline", "pipeline_cli", "cli", "references", "weights",
    "hub", "dryrun", "corpus",
}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'ser_helpers' has no attribute {name!r}")


def repo_root() -> Path:
    """The repository root (the folder holding pyproject.toml) when running from a checkout."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").exists() else Path.cwd()


def nb_setup() -> Path:
    """Make a notebook's working directory the repository root (as the papermill runner does).

    Interactive JupyterLab starts kernels in notebooks/; papermill runs with cwd = repo root.
    Either way, relative paths like `outputs/cpu` then mean the same thing.
    """
    cwd = Path.cwd()
    if not (cwd / "pyproject.toml").exists() and (cwd.parent / "pyproject.toml").exists():
        os.chdir(cwd.parent)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    return Path.cwd()
