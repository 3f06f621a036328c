"""PNG plots shared by the stages: confusion heatmaps, reliability diagrams, training curves.

Every function writes a PNG (atomically) and returns the matplotlib Figure, so a notebook
shows it inline and a headless run still has the file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

if matplotlib.get_backend().lower() not in {"module://matplotlib_inline.backend_inline", "inline"}:
    try:
        import IPython  # noqa: F401
        if IPython.get_ipython() is None:
            matplotlib.use("Agg")
    except ImportError:  # pragma: no cover
        matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from .common import LABELS, atomic_path, display_name


def save_figure(fig, path: str | Path | None):
    if path is not None:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    return fig


def confusion_heatmap(confusion, labels: Sequence[str] = LABELS, path=None, title: str = "Confusion matrix",
                      normalize: bool = False):
    cm = np.asarray(confusion, dtype=float)
    shown = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if normalize else cm
    fig, ax = plt.subplots(figsize=(4.6, 4))
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else max(shown.max(), 1))
    names = [display_name(lab) for lab in labels]
    ax.set_xticks(range(len(names)), names, rotation=30)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted"); ax.set_ylabel("true"); ax.set_title(title)
    for i in range(shown.shape[0]):
        for j in range(shown.shape[1]):
            txt = f"{shown[i, j]:.2f}" if normalize else f"{int(cm[i, j])}"
            ax.text(j, i, txt, ha="center", va="center",
                    color="white" if shown[i, j] > (0.5 if normalize else shown.max() / 2) else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return save_figure(fig, path)


def reliability_diagram(bins_before: dict, bins_after: dict | None = None, path=None,
                        title: str = "Reliability diagram", labels=("uncalibrated", "calibrated")):
    """`bins_*` are outputs of metrics.reliability_bins."""
    fig, ax = plt.subplots(figsize=(4.6, 4))
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect")
    for bins, lab, mk in ((bins_before, labels[0], "o-"), (bins_after, labels[1], "s-")):
        if bins is None:
            continue
        xs = [c for c in bins["confidence"] if c is not None]
        ys = [a for a, c in zip(bins["accuracy"], bins["confidence"]) if c is not None]
        ax.plot(xs, ys, mk, label=lab)
    ax.set_xlabel("confidence"); ax.set_ylabel("accuracy"); ax.set_xlim(0, 1); ax.set_ylim(0, 1)
    ax.set_title(title); ax.legend(loc="upper left")
    fig.tight_layout()
    return save_figure(fig, path)


def training_curves(history: list[dict], path=None, keys=("train_loss", "val_macro_f1"), title="Training"):
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.4))
    axes = np.atleast_1d(axes)
    for ax, key in zip(axes, keys):
        xs = [h.get("epoch") for h in history if h.get(key) is not None]
        ys = [h.get(key) for h in history if h.get(key) is not None]
        ax.plot(xs, ys, "o-")
        ax.set_xlabel("epoch"); ax.set_title(key)
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)
