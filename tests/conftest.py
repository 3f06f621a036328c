"""Shared fixtures. `smoke_run`: ONE run of configs/smoke.yaml per test session, shared by every stage test.

Set SER_SMOKE_RUN_DIR to an existing finished smoke run to reuse it (development only).

The quick suite, `pytest -m "not slow"` (`make quick`), leaves out every test marked `slow`: the notebook runs
(any test using `smoke_run` is marked here), the synthetic corpus build, the browser test, training runs and
long-lived servers.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


#: fixtures that make a test slow: the smoke pipeline run (test_demo's `real_fusion_dir` asks for `smoke_run` at
#: run time) and test_synth's `smoke`, a smoke-size corpus rendered with espeak-ng
SMOKE_FIXTURES = {"smoke_run", "real_fusion_dir", "smoke"}


def pytest_collection_modifyitems(config, items):
    """Tests that need the smoke pipeline run (every notebook through papermill) or a browser are slow."""
    for item in items:
        if SMOKE_FIXTURES & set(getattr(item, "fixturenames", ())) or item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def smoke_run() -> Path:
    """Run the smoke profile once (all notebooks through papermill) and return its run dir."""
    reuse = os.environ.get("SER_SMOKE_RUN_DIR")
    if reuse:
        path = Path(reuse)
        if not path.is_absolute():
            path = ROOT / path
        if not (path / "pipeline_timings.json").exists():
            pytest.fail(f"SER_SMOKE_RUN_DIR={reuse} holds no finished run")
        return path
    run_dir = ROOT / "outputs" / "_pytest_smoke"
    log = ROOT / "outputs" / "_pytest_smoke.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(run_dir / "notebooks", ignore_errors=True)  # executed copies of an earlier session's run
    cmd = [sys.executable, "-m", "ser_helpers.cli", "pipeline", "--profile", "configs/smoke.yaml",
           "--run-dir", str(run_dir)]
    with open(log, "w") as fh:
        proc = subprocess.run(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, timeout=3000)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-4000:]
        pytest.fail(f"smoke pipeline failed (exit {proc.returncode}); log {log}:\n{tail}")
    return run_dir


@pytest.fixture
def sine_clip():
    """A 1 s 220 Hz tone at 16 kHz (float32), for tests that need any real-looking audio."""
    t = np.arange(16000) / 16000.0
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
