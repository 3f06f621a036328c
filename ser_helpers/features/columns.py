"""The feature table's columns, the language codes, and which columns each fusion mode uses.

Taught in notebook 06 (06_build_fusion_features.ipynb).
"""
from __future__ import annotations

import numpy as np

from ..common import LABELS, SERError

FEATURE_CSV_COLUMNS = [
    "path", "label", "label_id", "language", "transcript",
    "audio_prob_ang", "audio_prob_hap", "audio_prob_neu", "audio_prob_sad", "audio_confidence", "audio_entropy",
    "text_negative", "text_neutral", "text_positive", "text_negative_score", "text_top_label_raw",
    "text_top_conf_raw", "text_length", "text_length_norm",
    "text4_prob_ang", "text4_prob_hap", "text4_prob_neu", "text4_prob_sad", "text4_confidence", "text4_entropy",
    "text4_ready", "lang_is_zh"]
METADATA_COLUMNS = ["speaker", "dialog_type", "source_dataset"]
ID_COLUMNS = ["path", "label", "label_id", "language", "transcript"]
STRING_FEATURES = {"text_top_label_raw"}
#: not used as model inputs (raw count: text_length_norm carries it scaled)
NON_MODEL_COLUMNS = {"text_length"}
LANGUAGES = ("en", "zh")
SPLITS = ("train", "val", "test")
LANGUAGE_ALIASES = {"en": "en", "eng": "en", "english": "en", "en-us": "en", "en_us": "en", "en-gb": "en",
                    "zh": "zh", "zho": "zh", "chi": "zh", "cmn": "zh", "chinese": "zh", "mandarin": "zh",
                    "zh-cn": "zh", "zh_cn": "zh", "zh-hans": "zh"}
TEXT_LENGTH_SCALE = 256.0


def normalize_language(value, default: str = "en", where: str = "") -> str:
    """'en'/'english'/'en-US' -> 'en', 'zh'/'mandarin'/'zh-CN' -> 'zh'; empty -> default; else SERError."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or not str(value).strip():
        return default
    code = LANGUAGE_ALIASES.get(str(value).strip().lower())
    if code is None:
        raise SERError(f"{where}unknown language {value!r}; expected one of {list(LANGUAGES)}")
    return code


def feature_columns_by_mode(df, text4_kind: str) -> dict[str, list[str]]:
    """Numeric, NaN-free feature columns of each mode (what the fusion stage uses as is)."""
    def usable(c):
        return (c in df.columns and c not in STRING_FEATURES and c not in NON_MODEL_COLUMNS
                and np.issubdtype(df[c].dtype, np.number) and not df[c].isna().any())
    ordered = [c for c in FEATURE_CSV_COLUMNS if c not in ID_COLUMNS] + \
              [c for c in df.columns if c not in FEATURE_CSV_COLUMNS and c not in METADATA_COLUMNS]
    audio = [c for c in ordered if c.startswith("audio_") and usable(c)]
    text = [c for c in ordered if c.startswith("text") and usable(c)
            and not (text4_kind == "none" and c.startswith("text4_"))]
    ctx = ["lang_is_zh"] if usable("lang_is_zh") else []
    return {"audio_only": audio + ctx, "text_only": text + ctx, "fusion": audio + text + ctx}


def raw_metrics(df) -> dict:
    """Accuracy / macro-F1 of argmax(audio_prob_*) and argmax(text4_prob_*) against the labels."""
    from ..metrics import classification_metrics
    out = {}
    y = df["label_id"].to_numpy()
    for name, prefix in (("audio", "audio_prob_"), ("text4", "text4_prob_")):
        cols = [f"{prefix}{c}" for c in LABELS]
        P = df[cols].to_numpy(dtype=np.float64)
        if len(P) == 0 or np.isnan(P).any():
            continue
        m = classification_metrics(y, P)
        out[name] = {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "ua": m["ua"], "n": m["n"]}
    return out
