"""The stage estimates of the dry run: how long each stage of the profile would take on the real corpus.

Serves the dry run of `configs/gpu_iemocap.yaml` (notebooks 00-10): from what a stage measured on the small
corpus (its CPU seconds, less the fixed cost of starting a kernel) and its work (utterances, audio-seconds of
forward passes, feature rows), a linear estimate of the same stage on IEMOCAP 5531 + CASIA 800 utterances
(`../shared/REFERENCE_RESULTS.md`). Notebook 00 is not in a real run; 05, 09 and 10 handle a fixed number of clips
or candidates and keep their measured time.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .. import repo_root
from ..layout import RunLayout

#: the real corpus (../shared/REFERENCE_RESULTS.md): IEMOCAP 4-class S1-3/S4/S5, CASIA 4-class 2/1/1 speakers
REAL_ROWS = {"iemocap": {"train": 3259, "val": 1031, "test": 1241}, "casia": {"train": 400, "val": 200, "test": 200}}
#: mean IEMOCAP utterance length with clips cut at 15 s (6.99 h / 5531, the 78 clips over 15 s cut): seconds
REAL_MEAN_SEC_CAPPED = 4.49


def _rows(run_dir: Path, name: str) -> dict:
    import pandas as pd
    d = RunLayout(run_dir).manifest(name)
    out = {}
    for s in ("train", "val", "test"):
        p = d / f"{s}.csv"
        if p.exists():
            df = pd.read_csv(p)
            out[s] = (len(df), float(df["duration_sec"].clip(upper=15.0).mean()) if len(df) else 0.0)
    return out


def _feature_rows(summary: Path) -> int:
    rows = json.loads(summary.read_text()).get("rows", {}) if summary.exists() else {}
    return int(sum(sum(v.values()) if isinstance(v, dict) else v for v in rows.values()))


def stage_work(run_dir: Path, stage: dict) -> tuple[float, float, str] | None:
    """(dry-run work, real-corpus work, unit) of a stage, or None when it does not scale with the corpus.
    Audio work is in audio-seconds (cut at 15 s) of forward passes; a training pass counts 3 (forward+backward)."""
    nb, p = stage["notebook"][:2], stage["parameters"]
    run = RunLayout(run_dir)
    real = {s: REAL_ROWS["iemocap"][s] + REAL_ROWS["casia"][s] for s in ("train", "val", "test")}
    real_all = sum(real.values())
    if nb == "01":
        r = _rows(run_dir, "iemocap_4class")
        return sum(n for n, _ in r.values()), sum(REAL_ROWS["iemocap"].values()), "utterances"
    if nb == "02":
        r = _rows(run_dir, "multilingual_4class")
        return sum(n for n, _ in r.values()), real_all, "utterances"
    r = _rows(run_dir, "multilingual_4class")
    if not r:
        return None
    mean = {s: d for s, (_, d) in r.items()}
    if nb == "03":
        rep = json.loads((run.audio_model("multilingual") / "train_report.json").read_text())
        from ..acoustic.config import TrainConfig  # lazy: the acoustic package imports torch
        train = TrainConfig()  # what notebook 03 uses where the profile sets nothing
        per_step = int(p.get("batch_size", train.batch_size)) * int(p.get("gradient_accumulation",
                                                                          train.gradient_accumulation))
        n_eval = max(1, len(rep.get("history", [])))
        dry = 3 * rep["global_step"] * per_step * mean["train"] + n_eval * r["val"][0] * mean["val"] \
            + r["test"][0] * mean["test"]
        epochs = float(p.get("epochs", train.epochs))
        real_w = (3 * epochs * real["train"] + epochs * real["val"] + real["test"]) * REAL_MEAN_SEC_CAPPED
        return dry, real_w, f"audio-s passes (train x3; {epochs:g} epochs, no early stop)"
    if nb == "04":
        return sum(n * d for n, d in r.values()), real_all * REAL_MEAN_SEC_CAPPED, "audio-s (eval + baseline)"
    if nb == "06":
        f = run.features / "summary.json"
        n = _feature_rows(f)
        return (n or None), real_all, "utterances (Whisper 30 s window + audio + 2 text models each)"
    if nb in ("07", "08"):  # small networks on feature rows: mostly fixed cost, so the linear estimate is high
        f = run.features / "summary.json"
        n = _feature_rows(f)
        return (n or None), real_all, "feature rows"
    return None  # 00 (not in a real run), 05 and 10 (a fixed number of clips), 09 (ranks a few candidates)


def estimate(wall: float, overhead: float, work: tuple | None) -> tuple[float | None, float | None]:
    """(ratio, estimated seconds): overhead + (wall - overhead) * real/dry; fixed-size stages keep their wall."""
    if work is None:
        return None, wall
    dry, real, _ = work
    if not dry:
        return None, None
    ratio = real / dry
    return ratio, overhead + max(0.0, wall - overhead) * ratio


def kernel_overhead() -> float:
    """CPU seconds to start a Python with the libraries every notebook imports (a stage's fixed cost)."""
    import resource
    import subprocess
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", "import ser_helpers, torch, transformers, pandas, sklearn"],
                   check=True, cwd=repo_root(), capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def add_estimates(table: list[dict], run_dir: Path, stages: list[dict], overhead: float) -> None:
    """Add each measured row of `table` its work on the dry run and the real corpus, its unit and its estimate."""
    by_name = {s["name"]: s for s in stages}
    for row in table:
        corpus_stage = row["notebook"].startswith("00")
        work = stage_work(run_dir, by_name[row["stage"]]) if not corpus_stage else None
        # CPU seconds, not wall: on a shared machine the wall time measures the neighbours too
        _, est = estimate(row.get("cpu_sec") or row["wall_sec"], overhead, work)
        row.update({"work_dry": round(work[0], 1) if work and work[0] else None,
                    "work_real": round(work[1], 1) if work else None,
                    "unit": work[2] if work else ("not in a real run" if corpus_stage else "fixed size"),
                    "estimate_sec": None if corpus_stage else (round(est, 1) if est else None)})
