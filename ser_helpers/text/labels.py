"""Label vocabularies of the text branch: sentiment names, a model's own labels mapped to sentiments or emotion
codes, and the normalised form of a sentence (for grouping folds).

Taught in notebook 06 (06_build_fusion_features.ipynb).
"""
from __future__ import annotations

import math
import re
import unicodedata

from ..common import LABEL_ALIASES, LABELS

SENTIMENTS = ["negative", "neutral", "positive"]
#: emotion code -> sentiment, used to train the tiny sentiment model on emotion-labelled transcripts
EMOTION_TO_SENTIMENT = {"ang": "negative", "sad": "negative", "neu": "neutral", "hap": "positive"}


def normalize_sentence(text: str) -> str:
    """Lower-case, NFKC, punctuation and spaces removed: the identity of a sentence for grouping folds."""
    text = unicodedata.normalize("NFKC", str(text or "")).lower()
    return re.sub(r"[\W_]+", "", text)


def _is_empty(text) -> bool:
    return text is None or (isinstance(text, float) and math.isnan(text)) or not str(text).strip()


def map_sentiment_label(label: str, n_labels: int, index: int) -> str | None:
    """A model label -> negative|neutral|positive (None when it is not a sentiment label)."""
    lab = str(label).strip().lower()
    if re.fullmatch(r"label_\d+", lab):
        k = int(lab.split("_")[1])
        if n_labels == 3:
            return SENTIMENTS[k] if k < 3 else None
        if n_labels == 2:
            return ["negative", "positive"][k] if k < 2 else None
        return None
    stars = re.match(r"^([1-5])\s*stars?", lab)
    if stars:
        s = int(stars.group(1))
        return "negative" if s <= 2 else ("neutral" if s == 3 else "positive")
    if lab.startswith("neg") or lab in ("bad", "消极", "负面"):
        return "negative"
    if lab.startswith("neu") or lab == "中性":
        return "neutral"
    if lab.startswith("pos") or lab in ("good", "积极", "正面"):
        return "positive"
    return None


def map_emotion_label(label: str) -> str | None:
    """A model label -> an emotion code of LABELS (angry -> ang, excited -> hap, ...), else None."""
    code = LABEL_ALIASES.get(str(label).strip().lower())
    return code if code in LABELS else None


def _safe_name(label: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", str(label).strip().lower()).strip("_") or "label"
