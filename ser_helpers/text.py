"""The text branch: pretrained sequence-classification models (sentiment or emotion), a 4-class
text-emotion head (character n-gram TF-IDF + logistic regression; English and Mandarin alike),
and fine-tuning of a small transformer text-emotion model (`ser train-text-emotion`).

    head = Text4Head().fit(train_texts, train_labels)
    P = head.predict_proba(texts)                      # [n, 4] in LABELS order; empty text -> uniform
    head.save(dir); Text4Head.load(dir)                # JSON + npz, no pickle
    clf = TextClassifier.load("cardiffnlp/twitter-roberta-base-sentiment-latest" or a local dir)
Taught in notebook 06 (06_build_fusion_features).
"""
from __future__ import annotations

import json
import math
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .common import LABEL_ALIASES, LABELS, SERError, atomic_dir, write_json_atomic
from .metrics import macro_f1, softmax

SENTIMENTS = ["negative", "neutral", "positive"]
#: emotion code -> sentiment, used to train the tiny sentiment model on emotion-labelled transcripts
EMOTION_TO_SENTIMENT = {"ang": "negative", "sad": "negative", "neu": "neutral", "hap": "positive"}
TEXT4_FORMAT = "ser_helpers.text.Text4Head/1"


# ----------------------------------------------------------------------------- small helpers
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


# ----------------------------------------------------------------------------- pretrained text models
class TextClassifier:
    """A Hugging Face sequence-classification model (hub id or local dir), loaded once, batched."""

    def __init__(self, model, tokenizer, device: str, source: str, max_length: int = 128):
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
    def load(cls, model: str, device: str = "auto", max_length: int = 128) -> "TextClassifier":
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from .common import resolve_device
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


# ----------------------------------------------------------------------------- the text4 head
@dataclass
class Text4Head:
    """Character n-gram TF-IDF + multinomial logistic regression -> P(ang, hap, neu, sad).

    Works for English and Mandarin alike (characters, no word segmentation). Saved as JSON + npz.
    """
    ngram_range: tuple = (1, 3)
    max_features: int = 20000
    C: float = 4.0
    min_df: int = 1
    class_weight: str | None = "balanced"
    seed: int = 42
    vocabulary: dict = field(default_factory=dict, repr=False)
    idf: np.ndarray | None = field(default=None, repr=False)
    coef: np.ndarray | None = field(default=None, repr=False)
    intercept: np.ndarray | None = field(default=None, repr=False)
    n_train: int = 0

    # -- features
    def _vectorizer(self):
        from sklearn.feature_extraction.text import TfidfVectorizer
        return TfidfVectorizer(analyzer="char_wb", ngram_range=tuple(self.ngram_range), lowercase=True,
                               sublinear_tf=True, min_df=self.min_df, max_features=self.max_features,
                               dtype=np.float64)

    def _transform(self, texts: Sequence[str]):
        vec = self._vectorizer()
        vec.vocabulary_ = self.vocabulary
        vec.idf_ = self.idf
        return vec.transform([unicodedata.normalize("NFKC", str(t)) for t in texts])

    @property
    def ready(self) -> bool:
        return self.coef is not None

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> "Text4Head":
        from sklearn.linear_model import LogisticRegression
        pairs = [(unicodedata.normalize("NFKC", str(t)), str(y)) for t, y in zip(texts, labels)
                 if not _is_empty(t)]
        if not pairs:
            raise SERError("text4 head: no non-empty transcripts to train on (empty ASR output or --skip-asr?)")
        unknown = sorted({y for _, y in pairs} - set(LABELS))
        if unknown:
            raise SERError(f"text4 head: unknown label(s) {unknown}; expected {LABELS}")
        X_text, y = zip(*pairs)
        present = sorted(set(y))
        if len(present) < 2:
            raise SERError(f"text4 head: training transcripts cover only label(s) {present}; need at least 2")
        vec = self._vectorizer()
        X = vec.fit_transform(X_text)
        self.vocabulary = {k: int(v) for k, v in vec.vocabulary_.items()}
        self.idf = np.asarray(vec.idf_, dtype=np.float64)
        lr = LogisticRegression(C=self.C, max_iter=2000, class_weight=self.class_weight,
                                random_state=self.seed)
        lr.fit(X, list(y))
        coef = np.zeros((len(LABELS), X.shape[1]))
        intercept = np.full(len(LABELS), -30.0)  # a class absent from training gets ~zero probability
        classes = list(lr.classes_)
        if len(classes) == 2:  # binary LR stores one row: class 1 vs class 0
            coef[LABELS.index(classes[1])] = lr.coef_[0]
            intercept[LABELS.index(classes[1])] = lr.intercept_[0]
            intercept[LABELS.index(classes[0])] = 0.0
        else:
            for k, c in enumerate(classes):
                coef[LABELS.index(c)] = lr.coef_[k]
                intercept[LABELS.index(c)] = lr.intercept_[k]
        self.coef, self.intercept, self.n_train = coef, intercept, len(pairs)
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """[n, 4] in LABELS order; an empty transcript gets the uniform distribution."""
        if not self.ready:
            raise SERError("text4 head is not fitted")
        texts = list(texts)
        P = np.full((len(texts), len(LABELS)), 1.0 / len(LABELS))
        idx = [i for i, t in enumerate(texts) if not _is_empty(t)]
        if idx:
            X = self._transform([texts[i] for i in idx])
            P[idx] = softmax(X @ self.coef.T + self.intercept)
        return P

    # -- persistence (no pickle)
    def save(self, directory: str | os.PathLike) -> Path:
        if not self.ready:
            raise SERError("text4 head is not fitted; nothing to save")
        directory = Path(directory)
        with atomic_dir(directory) as tmp:
            meta = {"format": TEXT4_FORMAT, "labels": LABELS, "ngram_range": list(self.ngram_range),
                    "max_features": self.max_features, "C": self.C, "min_df": self.min_df,
                    "class_weight": self.class_weight, "seed": self.seed, "n_train": self.n_train,
                    "analyzer": "char_wb", "sublinear_tf": True, "vocabulary": self.vocabulary}
            (tmp / "text4_head.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
            np.savez(tmp / "text4_head.npz", idf=self.idf, coef=self.coef, intercept=self.intercept)
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "Text4Head":
        directory = Path(directory)
        meta_path, arr_path = directory / "text4_head.json", directory / "text4_head.npz"
        if not meta_path.exists() or not arr_path.exists():
            raise SERError(f"{directory}: not a saved text4 head (needs text4_head.json and text4_head.npz)")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("format") != TEXT4_FORMAT or meta.get("labels") != LABELS:
            raise SERError(f"{meta_path}: unknown format {meta.get('format')!r} or labels {meta.get('labels')}")
        with np.load(arr_path, allow_pickle=False) as arrs:
            idf, coef, intercept = arrs["idf"], arrs["coef"], arrs["intercept"]
        return cls(ngram_range=tuple(meta["ngram_range"]), max_features=meta["max_features"], C=meta["C"],
                   min_df=meta["min_df"], class_weight=meta["class_weight"], seed=meta["seed"],
                   vocabulary={k: int(v) for k, v in meta["vocabulary"].items()}, idf=idf, coef=coef,
                   intercept=intercept, n_train=meta.get("n_train", 0))


def oof_fold_ids(speakers: Sequence[str], n_splits: int = 5, seed: int = 42) -> np.ndarray:
    """Fold id per row, whole speakers per fold (balanced by row count; deterministic for a seed)."""
    speakers = [str(s) for s in speakers]
    uniq = sorted(set(speakers))
    k = max(2, min(n_splits, len(uniq)))
    if len(uniq) < 2:
        return np.arange(len(speakers)) % k
    rng = np.random.default_rng(seed)
    counts = {s: speakers.count(s) for s in uniq}
    order = sorted(uniq, key=lambda s: (-counts[s], rng.random()))
    load = np.zeros(k)
    fold_of = {}
    for s in order:  # greedy: biggest speaker into the lightest fold
        f = int(np.argmin(load))
        fold_of[s] = f
        load[f] += counts[s]
    return np.array([fold_of[s] for s in speakers])


def text4_out_of_fold(texts: Sequence[str], labels: Sequence[str], speakers: Sequence[str],
                      n_splits: int = 5, seed: int = 42, head_kwargs: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold P(ang, hap, neu, sad) for TRAIN rows: folds hold out whole speakers, and every training
    row whose sentence also occurs in the held-out fold is dropped, so no sentence ever scores itself.

    Returns (probs [n, 4], ready [n] 0/1); a fold whose training part is unusable gives uniform, ready 0.
    """
    texts = ["" if _is_empty(t) else str(t) for t in texts]
    labels = [str(y) for y in labels]
    folds = oof_fold_ids(speakers, n_splits, seed)
    norm = [normalize_sentence(t) for t in texts]
    P = np.full((len(texts), len(LABELS)), 1.0 / len(LABELS))
    ready = np.zeros(len(texts), dtype=int)
    for f in sorted(set(folds.tolist())):
        held = np.where(folds == f)[0]
        held_sent = {norm[i] for i in held if norm[i]}
        train_idx = [i for i in np.where(folds != f)[0] if norm[i] and norm[i] not in held_sent]
        if len({labels[i] for i in train_idx}) < 2:
            continue
        head = Text4Head(seed=seed, **(head_kwargs or {})).fit([texts[i] for i in train_idx],
                                                               [labels[i] for i in train_idx])
        P[held] = head.predict_proba([texts[i] for i in held])
        ready[held] = [1 if texts[i] else 0 for i in held]
    return P, ready


# ----------------------------------------------------------------------------- fine-tuning
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

    from .common import set_seed
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
    output_dir = Path(output_dir)
    with atomic_dir(output_dir) as tmp:
        rep = _fit_seqcls(model, tok, out_labels, [t for t, _ in pairs], [out_labels.index(y) for _, y in pairs],
                          [t for t, _ in vpairs], [out_labels.index(y) for _, y in vpairs], tmp, epochs=epochs,
                          batch_size=batch_size, learning_rate=learning_rate, weight_decay=0.01, warmup_ratio=0.1,
                          patience=max(2, epochs), seed=seed, device=device, max_length=128, class_weighted=True,
                          desc="tiny sentiment model")
        rep.pop("predict")
        write_json_atomic(tmp / "train_report.json", {**rep, "kind": "tiny local sentiment model",
                                                      "label_map": label_map, "n_train": len(pairs)})
    return output_dir


@dataclass
class TextEmotionResult:
    output_dir: Path
    report: dict


def _split_ids(path):
    """The path/speaker/source_dataset columns of a features CSV (for the split-overlap check)."""
    import pandas as pd
    path = Path(path)
    if not path.exists():
        raise SERError(f"{path}: features CSV not found")
    try:
        return pd.read_csv(path, keep_default_na=False, dtype=str,
                           usecols=lambda c: c in ("path", "speaker", "source_dataset"))
    except UnicodeDecodeError as exc:
        from .common import not_utf8
        raise not_utf8(path, exc, "features CSV") from None


def _feature_texts(path, language_filter: str, min_text_chars: int):
    import pandas as pd
    path = Path(path)
    if not path.exists():
        raise SERError(f"{path}: features CSV not found")
    try:
        df = pd.read_csv(path, keep_default_na=False, dtype={"transcript": str, "label": str, "language": str})
    except UnicodeDecodeError as exc:
        from .common import not_utf8
        raise not_utf8(path, exc, "features CSV") from None
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


def train_text_emotion(train_features: str, val_features: str, output_dir: str, test_features: str = "",
                       base_model: str = "", language_filter: str = "zh", max_length: int = 128,
                       min_text_chars: int = 2, epochs: int = 5, batch_size: int = 16, learning_rate: float = 2e-5,
                       weight_decay: float = 0.01, warmup_ratio: float = 0.1, patience: int = 2, seed: int = 42,
                       device: str = "auto", num_workers: int = 0,
                       disable_class_weighted_loss: bool = False,
                       allow_split_overlap: bool = False) -> TextEmotionResult:
    """Fine-tune a sequence-classification model into a 4-class text-emotion model (ang/hap/neu/sad) on the
    transcripts of feature CSVs. `base_model` = hub id or local dir; empty = a tiny BERT with a WordPiece
    tokenizer trained here on the train transcripts (offline). Early stopping on val macro-F1."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from .common import check_splits, resolve_device, set_seed
    if language_filter not in ("zh", "en", "all"):
        raise SERError(f"--language-filter {language_filter!r}: expected zh, en or all")
    split_paths = {"train": train_features, "val": val_features, "test": test_features}
    split_check = check_splits({s: _split_ids(p) for s, p in split_paths.items() if p}, allow_split_overlap,
                               {s: str(p) for s, p in split_paths.items()}, what="features CSV")
    set_seed(seed)
    device = resolve_device(device)
    tr_x, tr_y = _feature_texts(train_features, language_filter, min_text_chars)
    va_x, va_y = _feature_texts(val_features, language_filter, min_text_chars)
    if len(tr_x) == 0:
        raise SERError(f"{train_features}: no transcripts with >= {min_text_chars} chars for language "
                       f"{language_filter!r}")
    if base_model:
        try:
            tok = AutoTokenizer.from_pretrained(base_model)
            model = AutoModelForSequenceClassification.from_pretrained(
                base_model, num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
                label2id={lab: i for i, lab in enumerate(LABELS)}, ignore_mismatched_sizes=True)
        except Exception as exc:  # noqa: BLE001
            raise SERError(f"--base-model {base_model!r} cannot be loaded ({exc})") from exc
        kind = f"fine-tuned {base_model}"
    else:
        tok = _train_tokenizer(tr_x)
        model = _tiny_bert(tok, LABELS, seed=seed)
        kind = "tiny BERT trained from scratch (local WordPiece tokenizer)"
    output_dir = Path(output_dir)
    with atomic_dir(output_dir) as tmp:
        rep = _fit_seqcls(model, tok, LABELS, tr_x, tr_y, va_x, va_y, tmp, epochs=epochs, batch_size=batch_size,
                          learning_rate=learning_rate, weight_decay=weight_decay, warmup_ratio=warmup_ratio,
                          patience=patience, seed=seed, device=device, max_length=max_length,
                          class_weighted=not disable_class_weighted_loss, desc="text emotion")
        rep.pop("predict")
        report = {**rep, "split_check": split_check, "kind": kind, "language_filter": language_filter, "n_train": len(tr_x),
                  "n_val": len(va_x), "base_model": base_model or None}
        if test_features:
            te_x, te_y = _feature_texts(test_features, language_filter, min_text_chars)
            if te_x:
                best = TextClassifier.load(str(tmp), device=device, max_length=max_length)
                pred = best.predict_proba(te_x).argmax(axis=1)
                report["test_accuracy"] = float(np.mean(pred == np.asarray(te_y)))
                report["test_macro_f1"] = macro_f1(te_y, pred, len(LABELS))
                report["n_test"] = len(te_x)
        write_json_atomic(tmp / "train_report.json", report)
    return TextEmotionResult(output_dir, report)


def register_cli(subparsers) -> None:
    p = subparsers.add_parser("train-text-emotion", help="fine-tune a 4-class text-emotion model on feature transcripts")
    p.add_argument("--train-features", required=True)
    p.add_argument("--val-features", required=True)
    p.add_argument("--test-features", default="")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--base-model", default="", help="hub id or local dir; empty = tiny local BERT")
    p.add_argument("--language-filter", choices=["zh", "en", "all"], default="zh")
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--min-text-chars", type=int, default=2)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--learning-rate", type=float, default=2e-5)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--warmup-ratio", type=float, default=0.1)
    p.add_argument("--patience", type=int, default=2)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--disable-class-weighted-loss", action="store_true")
    from .common import add_split_overlap_flag
    add_split_overlap_flag(p)

    def run(args):
        kw = {k: v for k, v in vars(args).items() if k not in ("func", "command")}
        res = train_text_emotion(**kw)
        print(json.dumps({"output_dir": str(res.output_dir), "best_epoch": res.report["best_epoch"],
                          "best_val_macro_f1": res.report["best_val_score"]}))
        return 0

    p.set_defaults(func=run)
