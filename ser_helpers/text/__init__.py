"""The text branch: pretrained sequence-classification models (sentiment or emotion), a 4-class
text-emotion head (character n-gram TF-IDF + logistic regression; English and Mandarin alike),
and fine-tuning of a small transformer text-emotion model (`ser train-text-emotion`).

    head = Text4Head().fit(train_texts, train_labels)
    P = head.predict_proba(texts)                      # [n, 4] in LABELS order; empty text -> uniform
    head.save(dir); Text4Head.load(dir)                # JSON + npz, no pickle
    clf = TextClassifier.load("cardiffnlp/twitter-roberta-base-sentiment-latest" or a local dir)

Taught in notebook 06 (06_build_fusion_features.ipynb). One module per job; this package re-exports their names, so
`from ser_helpers.text import X` and `ser.text.X` work as before the split:

* `labels`      SENTIMENTS, EMOTION_TO_SENTIMENT, a model's labels -> sentiments / emotion codes, normalize_sentence
* `pretrained`  TextClassifier (a Hugging Face sequence-classification model, batched)
* `head`        Text4Head, oof_fold_ids, text4_out_of_fold
* `config`      TextEmotionConfig (every `ser train-text-emotion` setting and default, once)
* `finetune`    train_text_emotion, make_tiny_text_model
* `cli`         `ser train-text-emotion`
"""
from __future__ import annotations

from ser_helpers.text.labels import (EMOTION_TO_SENTIMENT, SENTIMENTS, _safe_name, map_emotion_label,  # noqa: F401
    map_sentiment_label, normalize_sentence)  # _safe_name: features.py, as text._safe_name
from ser_helpers.text.pretrained import TextClassifier
from ser_helpers.text.head import TEXT4_FORMAT, Text4Head, oof_fold_ids, text4_out_of_fold
from ser_helpers.text.config import LANGUAGE_FILTERS, TextEmotionConfig
from ser_helpers.text.finetune import (TextEmotionResult, _train_tokenizer, make_tiny_text_model,  # noqa: F401
    train_text_emotion)  # _train_tokenizer: tests/test_text.py
from ser_helpers.text.cli import register_cli

__all__ = ["EMOTION_TO_SENTIMENT", "LANGUAGE_FILTERS", "SENTIMENTS", "TEXT4_FORMAT", "Text4Head", "TextClassifier",
           "TextEmotionConfig", "TextEmotionResult", "make_tiny_text_model", "map_emotion_label",
           "map_sentiment_label", "normalize_sentence", "oof_fold_ids", "register_cli", "text4_out_of_fold",
           "train_text_emotion"]
