"""Generate (or reuse) the corpus: plan, render every utterance in parallel, write the layouts atomically.

Taught in notebook 00 (`00_make_demo_corpus.ipynb`); CLI `ser synth-corpus`.
"""
from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..common import SAMPLE_RATE, SERError, atomic_dir, read_json, write_json_atomic
from .espeak import _espeak, _render
from .forked import run_forked
from .layout import _write_casia_text, _write_iemocap_text
from .plan import _plan
from .settings import CASIA_SPEAKERS, GENERATOR_VERSION, SESSIONS, SIZES


@dataclass
class SynthResult:
    """What `synth_corpus` built (or found)."""
    output_dir: Path
    reused: bool
    counts: dict
    seconds: float
    info: dict = field(default_factory=dict)

    @property
    def iemocap_dir(self) -> Path:
        return self.output_dir / "iemocap_raw"

    @property
    def casia_dir(self) -> Path:
        return self.output_dir / "casia_raw"

    def __repr__(self) -> str:
        how = "reused" if self.reused else f"built in {self.seconds:.1f} s"
        return (f"SynthResult({str(self.output_dir)!r}, {how}, en={self.counts.get('en_clips')}, "
                f"zh={self.counts.get('zh_clips')})")


def _counts(en, zh, durations) -> dict:
    durs = np.array(list(durations.values()))
    en4 = Counter(j["code"] for j in en)
    return {
        "en_clips": len(en), "zh_clips": len(zh),
        "en_by_session_code": {f"Session{s}": dict(sorted(Counter(j["code"] for j in en if j["session"] == s).items()))
                               for s in SESSIONS},
        "en_by_code": dict(sorted(en4.items())),
        "en_by_dialog_type": dict(Counter(j["dialog_type"] for j in en)),
        "zh_by_speaker_emotion": {spk: dict(sorted(Counter(j["emotion"] for j in zh if j["speaker"] == spk).items()))
                                  for spk in CASIA_SPEAKERS},
        "duration_sec": {"total": round(float(durs.sum()), 2), "median": round(float(np.median(durs)), 3),
                         "min": round(float(durs.min()), 3), "max": round(float(durs.max()), 3),
                         "share_over_6s": round(float(np.mean(durs > 6.0)), 4)},
    }


def _corpus_matches(output_dir: Path, size: str, seed: int) -> dict | None:
    info_path = output_dir / "corpus_info.json"
    if not info_path.exists():
        return None
    try:
        info = read_json(info_path)
    except (OSError, ValueError):
        return None
    if (info.get("size"), info.get("seed"), info.get("generator_version")) != (size, seed, GENERATOR_VERSION):
        return None
    if info.get("sizes") != SIZES[size]:
        return None
    if not (output_dir / "iemocap_raw").is_dir() or not (output_dir / "casia_raw" / "transcripts.csv").exists():
        return None
    return info


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def synth_corpus(output_dir: str | os.PathLike, size: str = "default", seed: int = 0,
                 workers: int | None = None, progress: bool = True) -> SynthResult:
    """Generate (or reuse) the corpus under `output_dir`: iemocap_raw/, casia_raw/, corpus_info.json.

    An existing corpus with the same size, seed and generator version is reused. A new one is
    built in a temp folder and renamed onto `output_dir` (atomic; an old corpus is replaced).
    """
    if size not in SIZES:
        raise SERError(f"unknown corpus size {size!r}; choose one of {sorted(SIZES)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise SERError(f"seed must be an integer, got {seed!r}")
    seed = int(seed)
    output_dir = Path(output_dir)
    t0 = time.perf_counter()
    if output_dir.exists() and not output_dir.is_dir():
        raise SERError(f"{output_dir}: exists and is not a directory")
    info = _corpus_matches(output_dir, size, seed)
    if info is not None:
        return SynthResult(output_dir, True, info.get("counts", {}), time.perf_counter() - t0, info)
    if output_dir.is_dir() and any(output_dir.iterdir()) and not (output_dir / "corpus_info.json").exists():
        raise SERError(f"{output_dir}: folder exists, is not empty and holds no corpus_info.json; "
                       "refusing to replace it (choose an empty or new folder)")

    en, zh, settings = _plan(size, seed)
    _espeak()  # load the library once in the parent; each forked child inherits it
    workers = max(1, int(workers or _cpu_count()))
    with atomic_dir(output_dir) as tmp:
        dirs = {str(Path(j["rel"]).parent) for j in en + zh}
        for d in sorted(dirs):
            (tmp / d).mkdir(parents=True, exist_ok=True)
        jobs = [dict(j, root=str(tmp)) for j in en + zh]
        durations: dict[str, float] = {}
        from tqdm.auto import tqdm
        for rel, dur in tqdm(run_forked(_render, jobs, workers, describe=lambda job: f"{job['rel']} "
                                        f"({job['text']!r})"), total=len(jobs), desc=f"synth {size} corpus",
                             disable=not progress):
            durations[rel] = dur
        _write_iemocap_text(tmp, en, durations, seed)
        _write_casia_text(tmp, zh)
        counts = _counts(en, zh, durations)
        info = {"size": size, "seed": seed, "generator_version": GENERATOR_VERSION, "sample_rate": SAMPLE_RATE,
                "synthesizer": "espeak-ng (espeakng-loader), voices en-us+<variant> and cmn+<variant>",
                "counts": counts, "sizes": SIZES[size], "settings": settings,
                "note": "Generated speech, not real recordings: emotion is encoded in prosody (mostly arousal) "
                        "and wording (mostly valence)."}
        write_json_atomic(tmp / "corpus_info.json", info)
    return SynthResult(output_dir, False, counts, time.perf_counter() - t0, info)
