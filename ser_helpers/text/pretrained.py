"""TextClassifier: a pretrained Hugging Face sequence-classification model (sentiment or emotion), loaded once,
batched, its labels summed into sentiments or the 4 emotion codes.

Taught in notebook 06 (06_build_fusion_features.ipynb).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..common import LABELS, SERError
from ..metrics import softmax
from .labels import SENTIMENTS, map_emotion_label, map_sentiment_label

#: tokens of a transcript a text model reads; longer transcripts are truncated
MAX_TOKENS = 128


class TextClassifier:
    """A Hugging Face sequence-classification model (hub id or local dir), loaded once, batched."""

    def __init__(self, model, tokenizer, device: str, source: str, max_length: int = MAX_TOKENS):
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.source = source
        self.max_length = int(max_length)
        cfg = model.config
        n = int(cfg.num_labels)
        self.raw_labels = [str(cfg.id2label.get(i, cfg.id2label.get(str(i), f"LABEL_{i}"))) for i in range(n)]
        self.sentiment_map = [map_sentiment_label(lab, n, i) for i, lab in enumerate(self.raw_labels)]
        self.emotion_map = [map_emotion_label(lab) for lab in self.raw_labels]

    @property
    def is_sentiment(self) -> bool:
        return {"negative", "positive"} <= {m for m in self.sentiment_map if m}

    @property
    def is_emotion4(self) -> bool:
        return set(LABELS) <= {m for m in self.emotion_map if m}

    @classmethod
    def load(cls, model: str, device: str = "auto", max_length: int = MAX_TOKENS) -> "TextClassifier":
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from ..common import resolve_device
        device = resolve_device(device)
        src = str(model)
        local = Path(src).expanduser()
        if local.exists() and not local.is_dir():
            raise SERError(f"text model {src}: is a file; expected a model directory or a hub id")
        kwargs = {}
        if local.is_dir():
            if not (local / "config.json").exists():
                raise SERError(f"text model {local}: no config.json (not a Hugging Face model directory)")
            src = str(local.resolve())
            kwargs["local_files_only"] = True
        try:
            tok = AutoTokenizer.from_pretrained(src, **kwargs)
            mdl = AutoModelForSequenceClassification.from_pretrained(src, **kwargs)
        except Exception as exc:  # noqa: BLE001 - offline hub id, wrong architecture ...
            raise SERError(f"text model {model!r} cannot be loaded ({exc.__class__.__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else ''}); offline, give a local directory"
                           ) from exc
        mdl.to(device).eval()
        return cls(mdl, tok, device, src, max_length=max_length)

    def predict_proba(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Softmax over the model's own labels (`raw_labels` order)."""
        import torch
        texts = [str(t) for t in texts]
        out = np.zeros((len(texts), len(self.raw_labels)), dtype=np.float64)
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                chunk = texts[start:start + batch_size]
                enc = self.tokenizer(chunk, padding=True, truncation=True, max_length=self.max_length,
                                     return_tensors="pt").to(self.device)
                logits = self.model(**enc).logits.float().cpu().numpy()
                out[start:start + len(chunk)] = softmax(logits)
        return out

    def sentiment_proba(self, P: np.ndarray) -> np.ndarray:
        """Model probabilities summed into [negative, neutral, positive]."""
        S = np.zeros((P.shape[0], 3))
        for j, m in enumerate(self.sentiment_map):
            if m:
                S[:, SENTIMENTS.index(m)] += P[:, j]
        return S

    def emotion4_proba(self, P: np.ndarray) -> np.ndarray:
        """Model probabilities summed into LABELS order (renormalised over the 4 codes)."""
        E = np.zeros((P.shape[0], len(LABELS)))
        for j, m in enumerate(self.emotion_map):
            if m:
                E[:, LABELS.index(m)] += P[:, j]
        s = E.sum(axis=1, keepdims=True)
        return np.where(s > 0, E / np.where(s > 0, s, 1), 1.0 / len(LABELS))
