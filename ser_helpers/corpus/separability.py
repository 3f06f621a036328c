"""How separable the generated corpus is: audio, text and late-fusion macro-F1 on its test split.

A check of the generator's settings (bench/ and tests use it), summarised in notebook 00
(`00_make_demo_corpus.ipynb`).
"""
from __future__ import annotations

import multiprocessing as mp
import os

import numpy as np

from ..common import LABELS
from ..metrics import macro_f1
from .settings import SPLIT_GROUPS
from .synth import _cpu_count
from .views import read_corpus_table


def acoustic_stats(path: str) -> np.ndarray:
    """MFCC + prosody statistics of one clip (the classical baseline's kind of features)."""
    import librosa
    import soundfile as sf
    y, sr = sf.read(path, dtype="float32")
    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=20, n_fft=512, hop_length=160)
    rms = librosa.feature.rms(y=y, frame_length=512, hop_length=160)[0]
    rms_db = 20 * np.log10(rms + 1e-5)
    voiced = rms_db > rms_db.max() - 30
    f0 = librosa.yin(y, fmin=60, fmax=500, sr=sr, frame_length=1024, hop_length=160)
    n = min(f0.size, voiced.size)
    f0v = f0[:n][voiced[:n]]
    st = 12 * np.log2(np.maximum(f0v, 1.0) / 100.0) if f0v.size else np.zeros(1)
    d = np.diff(mfcc, axis=1)
    feats = [mfcc.mean(1), mfcc.std(1), np.abs(d).mean(1),
             [np.median(st), st.std(), np.percentile(st, 10), np.percentile(st, 90),
              np.abs(np.diff(st)).mean() if st.size > 1 else 0.0,
              rms_db[voiced].mean(), rms_db[voiced].std(), np.percentile(rms_db, 95), voiced.mean(),
              y.size / sr]]
    return np.concatenate([np.asarray(f, float).ravel() for f in feats])


def _acoustic_matrix(paths, workers):
    with mp.get_context("fork").Pool(max(1, workers)) as pool:
        return np.vstack(pool.map(acoustic_stats, list(paths), chunksize=16))


def _macro_f1_by_subset(test, pred) -> dict[str, float]:
    """Macro-F1 over the four LABELS (metrics.macro_f1) of label indices `pred` on all test rows, per language and
    per dialog type (IEMOCAP's impro/script), rounded to 4 places; a subset without rows is left out."""
    y = np.array([LABELS.index(label) for label in test["label4"]])
    subsets = {"all": np.ones(len(test), dtype=bool)}
    subsets.update({lang: (test["language"] == lang).to_numpy() for lang in ("en", "zh")})
    subsets.update({f"en_{dt}": (test["dialog_type"] == dt).to_numpy() for dt in ("impro", "script")})
    return {k: round(macro_f1(y[m], pred[m], len(LABELS)), 4) for k, m in subsets.items() if k == "all" or m.any()}


def measure_corpus_separability(output_dir: str | os.PathLike, workers: int | None = None,
                                verbose: bool = True) -> dict:
    """How well audio alone, text alone and their late fusion separate the 4 classes on the test split.

    Audio: MFCC + prosody statistics -> logistic regression; text: char n-gram TF-IDF -> logistic
    regression; both trained on train (Sessions 1-3 + liuchanhg, wangzhe), fusion = mean of the two
    probabilities. Returns macro-F1 (over the four LABELS, as every stage scores) per modality overall, per
    language and per dialog type.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    df = read_corpus_table(output_dir)
    df = df[df["label4"].notna()].reset_index(drop=True)
    split = {g: s for s, groups in SPLIT_GROUPS.items() for g in groups}
    df["split"] = df["group"].map(split)
    workers = workers or _cpu_count()
    X = _acoustic_matrix(df["path"], workers)
    tr, te = (df["split"] == "train").to_numpy(), (df["split"] == "test").to_numpy()
    y = df["label4"].to_numpy()
    audio = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=3000))
    audio.fit(X[tr], y[tr])
    text = make_pipeline(TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True),
                         LogisticRegression(C=4.0, max_iter=3000))
    text.fit(df.loc[tr, "text"], y[tr])
    classes = list(audio.classes_)
    assert classes == list(text.classes_)
    pa, pt = audio.predict_proba(X[te]), text.predict_proba(df.loc[te, "text"])
    pf = (pa + pt) / 2
    test = df[te].reset_index(drop=True)
    out = {"rows": {"train": int(tr.sum()), "test": int(te.sum()),
                    "test_en": int((test["language"] == "en").sum()), "test_zh": int((test["language"] == "zh").sum())}}
    label_of_column = np.array([LABELS.index(c) for c in classes])
    for name, p in (("audio", pa), ("text", pt), ("fusion", pf)):
        out[name] = _macro_f1_by_subset(test, label_of_column[p.argmax(1)])
    if verbose:
        print(f"test rows: {out['rows']}")
        keys = list(out["fusion"])
        print(f"{'macro-F1':10s}" + "".join(f"{k:>10s}" for k in keys))
        for name in ("audio", "text", "fusion"):
            print(f"{name:10s}" + "".join(f"{out[name].get(k, float('nan')):10.3f}" for k in keys))
    return out
