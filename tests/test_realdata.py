"""Optional checks on real recorded speech (../shared/realdata: EmoDB 4-class, a RAVDESS sample).
Skipped cleanly when that folder is absent; never used to tune anything."""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ser_helpers import demo, repo_root
from ser_helpers.common import LABEL_ALIASES, LABELS, SAMPLE_RATE

REALDATA = Path(os.environ.get("SER_REALDATA_DIR") or repo_root().parent / "shared" / "realdata")
EMODB = REALDATA / "emodb4"
RAVDESS = REALDATA / "ravdess_sample"
PROFILE = repo_root() / "configs" / "folder_dataset.yaml"

pytestmark = [pytest.mark.realdata,
              pytest.mark.skipif(not REALDATA.is_dir(), reason=f"{REALDATA} is absent (optional real-speech data)")]


def _folder_counts(root: Path) -> Counter:
    return Counter(LABEL_ALIASES[p.parent.name.lower()] for p in root.glob("*/*.wav"))


def test_emodb_manifest_is_speaker_independent(tmp_path):
    """The folder-manifest helper, as the folder_dataset profile runs it, on EmoDB: every file kept,
    labels from the folder names, speakers (first two characters of the file name) never shared by splits."""
    if not EMODB.is_dir():
        pytest.skip(f"{EMODB} is absent")
    from ser_helpers.manifest import build_manifest
    res = build_manifest(input_dir=EMODB, output_dir=tmp_path / "emodb4_4class", speaker_pattern=r"^(\d\d)",
                         language="de", seed=42)
    frames = {s: pd.read_csv(tmp_path / "emodb4_4class" / f"{s}.csv", dtype=str) for s in ("train", "val", "test")}
    counts = Counter(lab for df in frames.values() for lab in df["label"])
    assert counts == _folder_counts(EMODB)
    assert set(counts) == set(LABELS)
    speakers = {s: set(df["speaker"]) for s, df in frames.items()}
    assert all(len(v) > 0 for v in speakers.values())
    assert not (speakers["train"] & speakers["val"]) and not (speakers["train"] & speakers["test"]) \
        and not (speakers["val"] & speakers["test"])
    assert all(Path(p).name.startswith(spk) for df in frames.values() for p, spk in zip(df["path"], df["speaker"]))
    assert res.summary["totals"]["all"] == sum(counts.values())


def test_ravdess_clips_pass_the_demo_input_path():
    """48 kHz files with extra RIFF chunks (one stereo) reach the model as 16 kHz mono float32."""
    if not RAVDESS.is_dir():
        pytest.skip(f"{RAVDESS} is absent")
    import soundfile as sf
    files = sorted(RAVDESS.rglob("*.wav"))
    assert files
    for path in files:
        wav, _ = demo.to_waveform(str(path))
        info = sf.info(str(path))
        assert wav.dtype == np.float32 and wav.ndim == 1
        assert abs(wav.size - info.frames * SAMPLE_RATE / info.samplerate) <= 2
        assert float(np.max(np.abs(wav))) > 1e-3


@pytest.mark.slow
def test_folder_dataset_profile_runs_on_emodb(tmp_path):
    """configs/folder_dataset.yaml (notebooks 02-04) end to end on EmoDB: manifests, a model, its test metrics."""
    if not EMODB.is_dir():
        pytest.skip(f"{EMODB} is absent")
    import json
    import yaml
    from ser_helpers.pipeline import run_pipeline
    prof = yaml.safe_load(PROFILE.read_text())
    run = tmp_path / "folder_run"
    res = run_pipeline(PROFILE, run_dir=run, quiet=True)
    assert [t["notebook"][:2] for t in res.timings] == [s["notebook"][:2] for s in prof["stages"]]
    manifests = sorted(run.glob("manifests/*/test.csv"))
    assert manifests, "no manifest written"
    metrics = sorted(run.glob("eval/*/test_metrics.json"))
    assert metrics, "no evaluation written"
    m = json.loads(metrics[0].read_text())
    assert m["n"] == len(pd.read_csv(manifests[0]))
    assert 0.0 <= m["macro_f1"] <= 1.0 and set(m["labels"]) == set(LABELS)
