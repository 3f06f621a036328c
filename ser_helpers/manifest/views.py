"""Notebook views of a manifest summary: count, speaker, dropped, source-label and language tables, a bar chart.

Taught in notebook 01 (`01_iemocap_manifest.ipynb`) and used again in notebook 02 (`02_folder_manifest.ipynb`).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..common import display_name, read_json
from .base import SPLITS, ManifestResult


def counts_table(summary: dict):
    """Split x label counts (display names as columns) with totals, from a summary dict or path."""
    import pandas as pd
    summary = _summary(summary)
    labels = summary["labels"]
    df = pd.DataFrame({display_name(lab): [summary["counts"][s][lab] for s in SPLITS] for lab in labels},
                      index=list(SPLITS))
    df["total"] = df.sum(axis=1)
    df.loc["all"] = df.sum(axis=0)
    return df


def speakers_table(summary: dict):
    """One row per split: number of speakers, the speakers, hours."""
    import pandas as pd
    summary = _summary(summary)
    return pd.DataFrame({"speakers": [summary["n_speakers"][s] for s in SPLITS],
                         "names": [", ".join(summary["speakers"][s]) for s in SPLITS],
                         "hours": [summary["hours"][s] for s in SPLITS]}, index=list(SPLITS))


def dropped_table(summary: dict):
    """Dropped source labels / codes with counts (largest first)."""
    import pandas as pd
    summary = _summary(summary)
    items = sorted(summary.get("dropped", {}).items(), key=lambda kv: -kv[1])
    return pd.DataFrame(items, columns=["source_label", "count"])


def source_label_table(summary: dict):
    """Split x source label counts (e.g. IEMOCAP hap and exc before the merge)."""
    import pandas as pd
    summary = _summary(summary)
    df = pd.DataFrame({s: summary["source_label_counts"][s] for s in SPLITS}).fillna(0).astype(int)
    df["all"] = df.sum(axis=1)
    return df


def language_table(summary: dict):
    """Split x (source_dataset, language) counts of a merged manifest."""
    import pandas as pd
    summary = _summary(summary)
    return pd.DataFrame({"by_source": [summary.get("by_source", {}).get(s, {}) for s in SPLITS],
                         "by_language": [summary.get("languages", {}).get(s, {}) for s in SPLITS],
                         "total": [summary["totals"][s] for s in SPLITS]}, index=list(SPLITS))


def plot_counts(summary: dict, path=None, title: str | None = None):
    """Grouped bar chart of label counts per split; written as PNG when `path` is given."""
    from .. import plots
    plt = plots.plt
    summary = _summary(summary)
    labels = summary["labels"]
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    width = 0.8 / len(SPLITS)
    x = np.arange(len(labels))
    for k, s in enumerate(SPLITS):
        vals = [summary["counts"][s][lab] for lab in labels]
        bars = ax.bar(x + (k - 1) * width, vals, width, label=f"{s} ({sum(vals)})")
        ax.bar_label(bars, fontsize=7)
    ax.set_xticks(x, [display_name(lab) for lab in labels])
    ax.set_ylabel("utterances")
    name = summary.get("source_dataset") or Path(summary.get("output_dir", "")).name
    ax.set_title(title or f"{name}: utterances per split and label")
    ax.legend()
    fig.tight_layout()
    return plots.save_figure(fig, path)


def _summary(summary):
    if isinstance(summary, ManifestResult):
        return summary.summary
    if isinstance(summary, (str, os.PathLike)):
        p = Path(summary)
        return read_json(p / "summary.json" if p.is_dir() else p)
    return summary
