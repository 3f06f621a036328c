"""Notebook views of service answers: test clips, answer tables, the per-segment timeline.

Taught in notebook 05 (05_serve_ser_api.ipynb).
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from ..common import LABELS, SAMPLE_RATE, SERVICE_CODES, SERError
from .client import post_clip
from .settings import LANGUAGES


def pick_test_clips(manifest_csv: str | Path, n_clips: int = 4):
    """`n_clips` rows of a manifest: one per label in turn, languages alternating (en, zh, ...), deterministic."""
    from ..common import read_manifest
    df = read_manifest(manifest_csv)
    if "language" not in df.columns:
        df["language"] = ""
    df = df.sort_values(["label", "language", "path"], kind="stable").reset_index(drop=True)
    langs = sorted(df["language"].unique())
    labels = sorted(df["label"].unique())
    picked, used = [], set()
    for i in range(n_clips):
        label, lang = labels[i % len(labels)], langs[i % len(langs)]
        pool = df[(df["label"] == label) & ~df.index.isin(used)]
        pool = pool[pool["language"] == lang] if (pool["language"] == lang).any() else pool
        if pool.empty:
            pool = df[~df.index.isin(used)]
            if pool.empty:
                break
        used.add(pool.index[0])
        picked.append(pool.index[0])
    return df.loc[picked, ["path", "label", "language"]].reset_index(drop=True)


def analyze_clips(url: str, clips, **form) -> dict[str, dict]:
    """POST every clip of `pick_test_clips` (with its language as language_hint) -> {file name: answer}."""
    answers = {}
    for row in clips.itertuples():
        hint = row.language if row.language in LANGUAGES else None
        answers[Path(row.path).name] = post_clip(url, row.path, language_hint=hint, **form)
    return answers


def long_test_clip(paths, min_sec: float = 20.0, gap_sec: float = 0.3) -> np.ndarray:
    """Test clips joined (cycling through `paths`) until at least `min_sec` long: a multi-segment request."""
    from ..audio import load_audio
    paths = list(paths)
    if not paths:
        raise SERError("no clips to join")
    gap = np.zeros(int(gap_sec * SAMPLE_RATE), dtype=np.float32)
    parts, total, i = [], 0, 0
    while total < min_sec * SAMPLE_RATE:
        clip = load_audio(paths[i % len(paths)])
        parts += [clip, gap]
        total += clip.size + gap.size
        i += 1
    return np.concatenate(parts[:-1])


def save_answers(path: str | Path, answers: Mapping[str, dict]) -> Path:
    from ..common import write_json_atomic
    return write_json_atomic(path, dict(answers))


def answers_table(answers: Mapping[str, dict], truth: Mapping[str, str] | None = None):
    """One row per analysed clip: overall emotion, confidence, segment count, duration, latency, route."""
    import pandas as pd
    rows = []
    for name, ans in answers.items():
        rows.append({"clip": name, **({"true": SERVICE_CODES.get(truth.get(name), truth.get(name))} if truth else {}),
                     "emotion": ans["overall"]["emotionCode"],
                     "confidence": round(ans["overall"]["confidence"], 3), "segments": len(ans["segments"]),
                     "duration_ms": ans["meta"]["durationMs"], "latency_ms": ans["meta"]["latencyMs"],
                     "route": ans["meta"]["routeLanguage"],
                     **{k: round(v, 3) for k, v in ans["overall"]["scores"].items()}})
    return pd.DataFrame(rows)


def segment_timeline(answer: dict, path=None, title: str = "Per-segment emotion"):
    """Stacked per-segment probabilities over time with the winning emotion written on each segment (PNG)."""
    import matplotlib.pyplot as plt

    from .. import plots
    codes = [SERVICE_CODES[c] for c in LABELS]
    colors = {"ANGRY": "#d62728", "HAPPY": "#ff7f0e", "NEUTRAL": "#7f7f7f", "SAD": "#1f77b4"}
    fig, ax = plt.subplots(figsize=(9, 3))
    segs = answer["segments"]
    for k, seg in enumerate(segs):
        # overlapping windows: each bar spans its window's start up to the next window's start
        end_ms = min(seg["endMs"], segs[k + 1]["startMs"]) if k + 1 < len(segs) else seg["endMs"]
        x0, width = seg["startMs"] / 1000, (end_ms - seg["startMs"]) / 1000
        bottom = 0.0
        for code in codes:
            p = seg["scores"][code]
            ax.bar(x0, p, width=width, bottom=bottom, align="edge", color=colors[code], edgecolor="white",
                   label=code.lower() if seg is answer["segments"][0] else None)
            bottom += p
        ax.text(x0 + width / 2, 1.03, f"{seg['emotionCode'].lower()}\n{seg['confidence']:.2f}", ha="center",
                va="bottom", fontsize=8)
    ax.set_xlim(0, answer["meta"]["durationMs"] / 1000)
    ax.set_ylim(0, 1.25)
    ax.set_xlabel("time (s)"); ax.set_ylabel("probability")
    ax.set_title(f"{title} — overall {answer['overall']['emotionCode'].lower()} "
                 f"({answer['overall']['confidence']:.2f})")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    fig.tight_layout()
    return plots.save_figure(fig, path)
