"""Loading the service's audio classifiers: model-dir checks, one lock per model.

Taught in notebook 05 (05_serve_ser_api.ipynb).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..common import SERError
from .settings import BATCH_SIZE


# ----------------------------------------------------------------------------- models
def _check_model_dir(model_dir: str, var: str) -> Path:
    path = Path(model_dir).expanduser()
    if not path.exists():
        raise SERError(f"{var}={model_dir}: model dir not found")
    if not path.is_dir():
        raise SERError(f"{var}={model_dir}: is not a directory")
    if not (path / "config.json").is_file():
        raise SERError(f"{var}={model_dir}: not a model dir (no config.json); expected a best_model/ dir "
                       f"written by `ser train-wav2vec2`")
    return path.resolve()


@dataclass
class LoadedModel:
    """One audio classifier and the lock that serialises its use."""
    name: str
    model_dir: str
    classifier: Any
    lock: threading.Lock = field(default_factory=threading.Lock)

    def predict(self, clips: list[np.ndarray]) -> np.ndarray:
        with self.lock:  # segments are already bounded by segment_ms: no further cut
            probs = self.classifier.predict_proba(clips, batch_size=BATCH_SIZE, max_duration_sec=None)
        return np.asarray(probs, dtype=float)


def load_classifier(model_dir: str | Path, device: str):
    """The project's one audio-classifier loader (also what `ser evaluate-wav2vec2` uses)."""
    from ..inference import AudioClassifier
    return AudioClassifier.load(str(model_dir), device=device)




def _torch_threads() -> int:
    import torch
    return int(torch.get_num_threads())


def _model_name(model_dir: str) -> str:
    """What /health shows for a model dir: its folder name (parent/best_model for a best_model dir), no path."""
    path = Path(model_dir)
    return f"{path.parent.name}/{path.name}" if path.name == "best_model" else path.name
