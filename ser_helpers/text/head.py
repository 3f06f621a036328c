"""The text4 head: character n-gram TF-IDF + logistic regression -> P(ang, hap, neu, sad), saved as JSON + npz
(no pickle), and its out-of-fold probabilities for training rows (whole speakers held out per fold).

Taught in notebook 06 (06_build_fusion_features.ipynb).
"""
from __future__ import annotations

import json
import os
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..common import LABELS, SERError, atomic_dir
from ..metrics import softmax
from .labels import _is_empty, normalize_sentence

TEXT4_FORMAT = "ser_helpers.text.Text4Head/1"


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
