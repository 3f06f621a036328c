"""Shared fixtures. `smoke_run`: ONE run of configs/smoke.yaml per test session, shared by every stage test.

Set SER_SMOKE_RUN_DIR to an existing finished smoke run to reuse it (development only).

`make_fusion_dir`: trains a real late-fusion dir on made-up feature rows (the service tests, with and without ASR).

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


#: the fusion feature columns of the service tests' fusion dirs (audio, text length, text4 head, language)
FUSION_FEATURES = ["audio_prob_ang", "audio_prob_hap", "audio_prob_neu", "audio_prob_sad", "audio_confidence",
                   "audio_entropy", "text_length_norm", "text4_prob_ang", "text4_prob_hap", "text4_prob_neu",
                   "text4_prob_sad", "text4_confidence", "text4_entropy", "text4_ready", "lang_is_zh"]


@pytest.fixture(scope="session")
def make_fusion_dir(tmp_path_factory):
    """`make_fusion_dir(name, audio_model, asr)` -> a real train-late-fusion dir (`fusion_best`) on made-up
    feature rows, whose components name `audio_model` for both languages and `asr` as the features' ASR
    (components["asr"])."""
    def make(name: str, audio_model: Path, asr: dict) -> Path:
        import json

        from fusion_data import make_synthetic_features
        from ser_helpers import fusion
        base = tmp_path_factory.mktemp(name)
        feats = make_synthetic_features(base / "features", n_per_speaker=12, seed=3)
        summary = json.loads(feats["summary"].read_text())
        summary["feature_columns"]["fusion"] = FUSION_FEATURES
        summary["components"] = {"audio_models": {"en": str(audio_model), "zh": str(audio_model)},
                                 "default_language": "en", "audio_device": "cpu", "text_device": "cpu",
                                 "asr": asr, "text_models": {"en": None, "zh": None}, "text4_head": None}
        feats["summary"].write_text(json.dumps(summary))
        res = fusion.train_late_fusion(feats["train"], feats["val"], feats["test"], base / "fusion_best", epochs=5,
                                       device="cpu", make_plots=False, compare_fit_strategies=False, n_bootstrap=20,
                                       min_language_samples=10)
        return Path(res.output_dir)
    return make
