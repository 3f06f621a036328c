"""Fine-tuning a transformer text classifier: `train_text_emotion` (4-class text emotion on feature-CSV
transcripts, `ser train-text-emotion`) and `make_tiny_text_model` (a tiny offline sentiment model).

Taught in notebook 06 (06_build_fusion_features.ipynb), which builds the tiny sentiment model;
`ser train-text-emotion` is a command-line extra that no notebook runs.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from ..common import LABELS, SERError, atomic_dir, not_utf8, write_json_atomic
from ..metrics import macro_f1
from .config import LANGUAGE_FILTERS, TextEmotionConfig
from .labels import EMOTION_TO_SENTIMENT, SENTIMENTS, _is_empty
from .pretrained import TextClassifier


def _train_tokenizer(texts: Sequence[str], vocab_size: int = 2000):
    """A WordPiece tokenizer trained on the corpus transcripts (Chinese characters become single tokens)."""
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertTokenizerFast
    import tempfile
    wp = BertWordPieceTokenizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True)
    wp.train_from_iterator([str(t) for t in texts if str(t).strip()] or ["empty"], vocab_size=vocab_size,
                           min_frequency=1, show_progress=False,
                           special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    with tempfile.TemporaryDirectory() as tmp:
        wp.save_model(tmp)
        # transformers 5 ignores `vocab_file=` here (a 5-token vocabulary: every word [UNK]); `vocab=` reads it
        return BertTokenizerFast(vocab=str(Path(tmp) / "vocab.txt"), do_lower_case=True,
                                 tokenize_chinese_chars=True)


def _tiny_bert(tokenizer, labels: list[str], hidden: int = 64, layers: int = 2, heads: int = 2,
               max_positions: int = 256, seed: int = 42):
    import torch
    from transformers import BertConfig, BertForSequenceClassification
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
                     num_attention_heads=heads, intermediate_size=hidden * 2, max_position_embeddings=max_positions,
                     hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, num_labels=len(labels),
                     id2label={i: lab for i, lab in enumerate(labels)},
                     label2id={lab: i for i, lab in enumerate(labels)}, pad_token_id=tokenizer.pad_token_id)
    return BertForSequenceClassification(cfg)


def _fit_seqcls(model, tokenizer, labels: list[str], train_texts, train_y, val_texts, val_y, output_dir: Path,
                epochs: int, batch_size: int, learning_rate: float, weight_decay: float, warmup_ratio: float,
                patience: int, seed: int, device: str, max_length: int, class_weighted: bool,
                desc: str = "text model") -> dict:
    """Fine-tune with (optionally class-weighted) cross-entropy, early stopping on val macro-F1; save best."""
    import torch
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    from ..common import set_seed
    set_seed(seed)
    model.to(device)
    n_cls = len(labels)
    ytr = np.asarray(train_y, dtype=int)
    counts = np.bincount(ytr, minlength=n_cls).astype(np.float64)
    weights = np.where(counts > 0, counts.sum() / (n_cls * np.maximum(counts, 1)), 0.0)
    loss_fn = torch.nn.CrossEntropyLoss(
        weight=torch.tensor(weights, dtype=torch.float32, device=device) if class_weighted else None)
    opt = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    steps_per_epoch = max(1, math.ceil(len(train_texts) / batch_size))
    sched = get_linear_schedule_with_warmup(opt, int(warmup_ratio * steps_per_epoch * epochs),
                                            steps_per_epoch * epochs)
    gen = np.random.default_rng(seed)

    def encode(texts):
        return tokenizer([str(t) for t in texts], padding=True, truncation=True, max_length=max_length,
                         return_tensors="pt").to(device)

    def predict(texts):
        model.eval()
        out = []
        with torch.inference_mode():
            for s in range(0, len(texts), 64):
                out.append(model(**encode(texts[s:s + 64])).logits.float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, n_cls))

    history, best, best_epoch, bad = [], -math.inf, 0, 0
    for epoch in tqdm(range(1, epochs + 1), desc=desc, leave=False):
        model.train()
        order = gen.permutation(len(train_texts))
        total = 0.0
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            enc = encode([train_texts[i] for i in idx])
            logits = model(**enc).logits
            loss = loss_fn(logits, torch.tensor(ytr[idx], device=device))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        row = {"epoch": epoch, "train_loss": total / max(1, len(order))}
        if len(val_texts):
            pred = predict(list(val_texts)).argmax(axis=1)
            row["val_accuracy"] = float(np.mean(pred == np.asarray(val_y)))
            row["val_macro_f1"] = macro_f1(val_y, pred, n_cls)
            score = row["val_macro_f1"]
        else:
            score = -row["train_loss"]
        history.append(row)
        if score > best:
            best, best_epoch, bad = score, epoch, 0
            model.save_pretrained(output_dir)
            tokenizer.save_pretrained(output_dir)
        else:
            bad += 1
            if bad >= patience:
                break
    return {"history": history, "best_epoch": best_epoch, "best_val_score": best, "labels": labels,
            "class_weights": weights.tolist() if class_weighted else None, "predict": predict}


def make_tiny_text_model(output_dir: str | os.PathLike, texts: Sequence[str], labels: Sequence[str],
                         label_map: dict | None = None, val_texts: Sequence[str] = (), val_labels: Sequence[str] = (),
                         epochs: int = 8, batch_size: int = 16, learning_rate: float = 3e-3, seed: int = 42,
                         device: str = "cpu") -> Path:
    """Train a tiny local 3-class SENTIMENT model (negative/neutral/positive) from emotion-labelled transcripts
    (ang/sad -> negative, neu -> neutral, hap -> positive by default), so the `text_negative/neutral/positive`
    path runs offline. Returns its directory (usable as --text-model-en/-zh)."""
    label_map = label_map or EMOTION_TO_SENTIMENT
    pairs = [(str(t), label_map[str(y)]) for t, y in zip(texts, labels)
             if not _is_empty(t) and str(y) in label_map]
    if not pairs:
        raise SERError("make_tiny_text_model: no non-empty transcripts with a mappable label")
    out_labels = sorted(set(label_map.values()), key=lambda s: SENTIMENTS.index(s) if s in SENTIMENTS else 9)
    vpairs = [(str(t), label_map[str(y)]) for t, y in zip(val_texts, val_labels)
              if not _is_empty(t) and str(y) in label_map]
    tok = _train_tokenizer([t for t, _ in pairs])
    model = _tiny_bert(tok, out_labels, seed=seed)
    tuning = TextEmotionConfig()
    output_dir = Path(output_dir)
    with atomic_dir(output_dir) as tmp:
        rep = _fit_seqcls(model, tok, out_labels, [t for t, _ in pairs], [out_labels.index(y) for _, y in pairs],
                          [t for t, _ in vpairs], [out_labels.index(y) for _, y in vpairs], tmp, epochs=epochs,
                          batch_size=batch_size, learning_rate=learning_rate, weight_decay=tuning.weight_decay,
                          warmup_ratio=tuning.warmup_ratio, patience=max(2, epochs), seed=seed, device=device,
                          max_length=tuning.max_length, class_weighted=True,
                          desc="tiny sentiment model")
        rep.pop("predict")
        write_json_atomic(tmp / "train_report.json", {**rep, "kind": "tiny local sentiment model",
                                                      "label_map": label_map, "n_train": len(pairs)})
    return output_dir


@dataclass
class TextEmotionResult:
    output_dir: Path
    report: dict


def _read_features_csv(path, **read_csv_kwargs):
    """A features CSV with its cells as written (no NaN for empty ones); a clear SERError when missing or not UTF-8."""
    import pandas as pd
    path = Path(path)
    if not path.exists():
        raise SERError(f"{path}: features CSV not found")
    try:
        return pd.read_csv(path, keep_default_na=False, **read_csv_kwargs)
    except UnicodeDecodeError as exc:
        raise not_utf8(path, exc, "features CSV") from None


def _split_ids(path):
    """The path/speaker/source_dataset columns of a features CSV (for the split-overlap check)."""
    return _read_features_csv(path, dtype=str, usecols=lambda c: c in ("path", "speaker", "source_dataset"))


def _feature_texts(path, language_filter: str, min_text_chars: int):
    """(transcripts, label ids) of a features CSV's rows in `language_filter` with >= `min_text_chars` characters."""
    df = _read_features_csv(path, dtype={"transcript": str, "label": str, "language": str})
    for col in ("transcript", "label"):
        if col not in df.columns:
            raise SERError(f"{path}: lacks column {col!r}")
    if language_filter != "all":
        if "language" not in df.columns:
            raise SERError(f"{path}: lacks column 'language' needed by --language-filter {language_filter}")
        df = df[df["language"] == language_filter]
    df = df[df["transcript"].astype(str).str.strip().str.len() >= min_text_chars]
    bad = sorted(set(df["label"]) - set(LABELS))
    if bad:
        raise SERError(f"{path}: unknown label(s) {bad} in column 'label'")
    return df["transcript"].astype(str).tolist(), [LABELS.index(y) for y in df["label"]]


def _base_text_model(base_model: str, train_texts: list[str], seed: int):
    """(tokenizer, 4-class model, description): `base_model` from the hub or a local dir with a new 4-way head, or,
    when empty, a tiny BERT with a WordPiece tokenizer trained on `train_texts` (offline)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    if not base_model:
        tok = _train_tokenizer(train_texts)
        return tok, _tiny_bert(tok, LABELS, seed=seed), "tiny BERT trained from scratch (local WordPiece tokenizer)"
    try:
        tok = AutoTokenizer.from_pretrained(base_model)
        model = AutoModelForSequenceClassification.from_pretrained(
            base_model, num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
            label2id={lab: i for i, lab in enumerate(LABELS)}, ignore_mismatched_sizes=True)
    except Exception as exc:  # noqa: BLE001
        raise SERError(f"--base-model {base_model!r} cannot be loaded ({exc})") from exc
    return tok, model, f"fine-tuned {base_model}"


def train_text_emotion(train_features: str, val_features: str, output_dir: str, test_features: str = "",
                       config: TextEmotionConfig | None = None, **settings) -> TextEmotionResult:
    """Fine-tune a sequence-classification model into a 4-class text-emotion model (ang/hap/neu/sad) on the
    transcripts of feature CSVs. `base_model` = hub id or local dir; empty = a tiny BERT with a WordPiece
    tokenizer trained here on the train transcripts (offline). Early stopping on val macro-F1.
    The settings are a `TextEmotionConfig` (`config=`), or its fields as keyword arguments, which also override a
    given config's."""
    from ..common import check_splits, resolve_device, set_seed
    cfg = replace(config or TextEmotionConfig(), **settings)
    if cfg.language_filter not in LANGUAGE_FILTERS:
        raise SERError(f"--language-filter {cfg.language_filter!r}: expected zh, en or all")
    split_paths = {"train": train_features, "val": val_features, "test": test_features}
    split_check = check_splits({s: _split_ids(p) for s, p in split_paths.items() if p}, cfg.allow_split_overlap,
                               {s: str(p) for s, p in split_paths.items()}, what="features CSV")
    set_seed(cfg.seed)
    device = resolve_device(cfg.device)
    tr_x, tr_y = _feature_texts(train_features, cfg.language_filter, cfg.min_text_chars)
    va_x, va_y = _feature_texts(val_features, cfg.language_filter, cfg.min_text_chars)
    if len(tr_x) == 0:
        raise SERError(f"{train_features}: no transcripts with >= {cfg.min_text_chars} chars for language "
                       f"{cfg.language_filter!r}")
    tok, model, kind = _base_text_model(cfg.base_model, tr_x, cfg.seed)
    output_dir = Path(output_dir)
    with atomic_dir(output_dir) as tmp:
        rep = _fit_seqcls(model, tok, LABELS, tr_x, tr_y, va_x, va_y, tmp, epochs=cfg.epochs,
                          batch_size=cfg.batch_size, learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay,
                          warmup_ratio=cfg.warmup_ratio, patience=cfg.patience, seed=cfg.seed, device=device,
                          max_length=cfg.max_length, class_weighted=not cfg.disable_class_weighted_loss,
                          desc="text emotion")
        rep.pop("predict")
        report = {**rep, "split_check": split_check, "kind": kind, "language_filter": cfg.language_filter,
                  "n_train": len(tr_x), "n_val": len(va_x), "base_model": cfg.base_model or None}
        if test_features:
            te_x, te_y = _feature_texts(test_features, cfg.language_filter, cfg.min_text_chars)
            if te_x:
                best = TextClassifier.load(str(tmp), device=device, max_length=cfg.max_length)
                pred = best.predict_proba(te_x).argmax(axis=1)
                report["test_accuracy"] = float(np.mean(pred == np.asarray(te_y)))
                report["test_macro_f1"] = macro_f1(te_y, pred, len(LABELS))
                report["n_test"] = len(te_x)
        write_json_atomic(tmp / "train_report.json", report)
    return TextEmotionResult(output_dir, report)
