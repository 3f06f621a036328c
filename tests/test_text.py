"""Text branch: the TF-IDF text4 head (fit, save/load without pickle, out-of-fold), label mapping,
tiny local sentiment model, and `ser train-text-emotion`."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ser_helpers import text as T
from ser_helpers.common import LABELS, SERError

EN = {"ang": ["I am furious with you", "this is outrageous, stop it", "get out of my room now"],
      "hap": ["what a lovely day", "I am so glad you came", "this is wonderful news"],
      "neu": ["the bus leaves at nine", "please close the door", "the report is on the desk"],
      "sad": ["I miss him so much", "nothing will ever be the same", "I feel so alone"]}
ZH = {"ang": ["我非常生气", "你太过分了"], "hap": ["今天真开心", "太好了"], "neu": ["现在是三点", "请把门关上"],
      "sad": ["我很难过", "我好想他"]}


def _rows():
    texts, labels = [], []
    for bank in (EN, ZH):
        for lab, sents in bank.items():
            for s in sents:
                texts.append(s)
                labels.append(lab)
    return texts, labels


def test_text4_head_fits_predicts_and_roundtrips(tmp_path):
    texts, labels = _rows()
    head = T.Text4Head().fit(texts, labels)
    P = head.predict_proba(texts + ["", "   "])
    assert P.shape == (len(texts) + 2, 4)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-9)
    assert (P[:-2].argmax(axis=1) == [LABELS.index(y) for y in labels]).mean() == 1.0  # in-sample, en + zh
    np.testing.assert_allclose(P[-2:], 0.25)  # empty transcript -> uniform
    d = head.save(tmp_path / "text4_head")
    assert sorted(p.name for p in d.iterdir()) == ["text4_head.json", "text4_head.npz"]
    again = T.Text4Head.load(d)
    np.testing.assert_allclose(again.predict_proba(texts), head.predict_proba(texts), atol=1e-12)
    with pytest.raises(SERError, match="not a saved text4 head"):
        T.Text4Head.load(tmp_path)


def test_text4_head_errors():
    with pytest.raises(SERError, match="no non-empty"):
        T.Text4Head().fit(["", " "], ["ang", "hap"])
    with pytest.raises(SERError, match="unknown label"):
        T.Text4Head().fit(["a", "b"], ["ang", "joy"])
    with pytest.raises(SERError, match="at least 2"):
        T.Text4Head().fit(["a", "b"], ["ang", "ang"])


def test_oof_folds_hold_out_whole_speakers():
    speakers = [f"s{i % 7}" for i in range(70)]
    folds = T.oof_fold_ids(speakers, n_splits=5, seed=1)
    for s in set(speakers):
        assert len({f for f, sp in zip(folds, speakers) if sp == s}) == 1
    assert len(set(folds.tolist())) == 5


def test_oof_never_lets_a_sentence_score_itself():
    # every speaker says every sentence: a held-out sentence is in no fold's training part -> nothing to learn
    texts, labels = _rows()
    speakers = [f"spk{k}" for k in range(4) for _ in texts]
    P, ready = T.text4_out_of_fold(texts * 4, labels * 4, speakers, n_splits=4)
    np.testing.assert_allclose(P, 0.25)
    assert ready.sum() == 0
    # distinct sentences per speaker that share label words: out-of-fold still beats chance
    rng = np.random.default_rng(0)
    words = {"ang": "furious angry", "hap": "glad happy", "neu": "table paper", "sad": "alone crying"}
    t2, y2, s2 = [], [], []
    for spk in range(6):
        for i in range(20):
            lab = LABELS[i % 4]
            t2.append(f"{words[lab]} speaker{spk} item{i} {rng.integers(1000)}")
            y2.append(lab)
            s2.append(f"spk{spk}")
    P2, r2 = T.text4_out_of_fold(t2, y2, s2, n_splits=3)
    assert r2.all()
    assert (P2.argmax(axis=1) == [LABELS.index(y) for y in y2]).mean() > 0.8


@pytest.mark.parametrize("label,n,expected", [
    ("negative", 3, "negative"), ("Neutral", 3, "neutral"), ("POSITIVE", 3, "positive"),
    ("LABEL_0", 3, "negative"), ("LABEL_1", 3, "neutral"), ("LABEL_1", 2, "positive"),
    ("1 star", 5, "negative"), ("3 stars", 5, "neutral"), ("5 stars", 5, "positive"), ("joy", 6, None)])
def test_sentiment_label_mapping(label, n, expected):
    assert T.map_sentiment_label(label, n, 0) == expected


def test_emotion_label_mapping():
    assert [T.map_emotion_label(x) for x in ["angry", "Happy", "neu", "sadness", "fear"]] == \
        ["ang", "hap", "neu", "sad", None]


def test_tiny_sentiment_model_loads_as_text_classifier(tmp_path):
    texts, labels = _rows()
    d = T.make_tiny_text_model(tmp_path / "sent", texts * 3, labels * 3, epochs=3)
    clf = T.TextClassifier.load(str(d), device="cpu")
    assert clf.raw_labels == ["negative", "neutral", "positive"] and clf.is_sentiment and not clf.is_emotion4
    P = clf.predict_proba(["I am furious", "今天真开心"])
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-6)
    S = clf.sentiment_proba(P)
    np.testing.assert_allclose(S, P, atol=1e-12)
    rep = json.loads((d / "train_report.json").read_text())
    assert rep["n_train"] == len(texts) * 3 and rep["history"]


def test_text_model_errors(tmp_path):
    with pytest.raises(SERError, match="config.json"):
        T.TextClassifier.load(str(tmp_path))


def _features_csv(path, texts, labels, langs):
    split = Path(path).stem  # distinct clip paths per split (training refuses splits that share files)
    pd.DataFrame({"path": [f"/x/{split}/{i}.wav" for i in range(len(texts))], "label": labels,
                  "language": langs, "transcript": texts}).to_csv(path, index=False)
    return path


def test_train_text_emotion_cli(tmp_path):
    from ser_helpers.cli import main
    texts, labels = _rows()
    langs = ["en"] * 12 + ["zh"] * 8
    tr = _features_csv(tmp_path / "train_features.csv", texts * 2, labels * 2, langs * 2)
    va = _features_csv(tmp_path / "val_features.csv", texts, labels, langs)
    te = _features_csv(tmp_path / "test_features.csv", texts, labels, langs)
    out = tmp_path / "text_emotion"
    rc = main(["train-text-emotion", "--train-features", str(tr), "--val-features", str(va),
               "--test-features", str(te), "--output-dir", str(out), "--language-filter", "all",
               "--epochs", "2", "--learning-rate", "3e-3", "--batch-size", "8"])
    assert rc == 0
    rep = json.loads((out / "train_report.json").read_text())
    assert rep["n_train"] == 40 and rep["n_val"] == 20 and "test_macro_f1" in rep and rep["class_weights"]
    clf = T.TextClassifier.load(str(out), device="cpu")
    assert clf.is_emotion4 and clf.raw_labels == LABELS
    # zh filter keeps only Mandarin rows
    res = T.train_text_emotion(str(tr), str(va), str(tmp_path / "zh"), epochs=1, learning_rate=3e-3)
    assert res.report["n_train"] == 16 and res.report["language_filter"] == "zh"
    assert main(["train-text-emotion", "--train-features", str(tmp_path / "nope.csv"), "--val-features",
                 str(va), "--output-dir", str(tmp_path / "x")]) == 1


def test_cli_flags_are_text_emotion_config_fields():
    """TextEmotionConfig holds every default once: the parsed defaults of `ser train-text-emotion` are its own."""
    from ser_helpers.cli import build_parser
    files = ["train-text-emotion", "--train-features", "t.csv", "--val-features", "v.csv", "--output-dir", "o"]
    assert T.TextEmotionConfig.from_params(vars(build_parser().parse_args(files))) == T.TextEmotionConfig()
    cfg = T.TextEmotionConfig.from_params(vars(build_parser().parse_args(
        files + ["--language-filter", "all", "--disable-class-weighted-loss", "--epochs", "3"])))
    assert (cfg.language_filter, cfg.disable_class_weighted_loss, cfg.epochs) == ("all", True, 3)


def test_trained_tokenizer_knows_the_corpus_words():
    """The WordPiece vocabulary trained on the transcripts reaches the fast tokenizer (not 5 special tokens)."""
    from ser_helpers.text import _train_tokenizer
    texts = ["the weather is lovely today", "i am so angry about the delay", "this is a sad day"] * 5
    tok = _train_tokenizer(texts, vocab_size=200)
    assert len(tok) > 20
    ids = tok("lovely weather")["input_ids"]
    assert tok.unk_token_id not in ids, tok.convert_ids_to_tokens(ids)
