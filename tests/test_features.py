"""Stage 06: build_fusion_features / Featurizer / `ser build-fusion-features` / notebook 06, on tiny data made here."""
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ser_helpers import features as F
from ser_helpers.audio import load_audio, write_wav
from ser_helpers.common import LABELS, SERError

EN = {"ang": ["I am furious with you", "this is outrageous"], "hap": ["what a lovely day", "I am so glad"],
      "neu": ["the bus leaves at nine", "please close the door"], "sad": ["I miss him so much", "nothing is the same"]}
ZH = {"ang": ["我非常生气", "你太过分了"], "hap": ["今天真开心", "太好了"], "neu": ["现在是三点", "请把门关上"],
      "sad": ["我很难过", "我好想他"]}
F0 = {"ang": 220, "hap": 260, "neu": 140, "sad": 110}
SPEAKERS = {"train": ["en_a", "en_b", "en_c", "zh_a"], "val": ["en_d", "zh_b"], "test": ["en_e", "zh_c"]}


def make_corpus(root: Path, n_per: int = 1, languages=("en", "zh")) -> dict:
    """Tone clips (pitch by label) + manifests with language/transcript/speaker columns."""
    rng = np.random.default_rng(0)
    paths = {}
    for split, speakers in SPEAKERS.items():
        rows = []
        for spk in speakers:
            lang = spk[:2]
            if lang not in languages:
                continue
            for lab in LABELS:
                for k in range(n_per):
                    dur = 0.4 + 0.4 * rng.random()
                    t = np.arange(int(16000 * dur)) / 16000
                    y = 0.3 * np.sin(2 * np.pi * F0[lab] * t) + 0.01 * rng.normal(size=t.size)
                    wav = write_wav(root / "wav" / split / f"{spk}_{lab}_{k}.wav", y.astype(np.float32))
                    rows.append({"path": str(wav), "label": lab, "source_label": lab, "duration_sec": dur,
                                 "speaker": spk, "language": lang, "source_dataset": f"{lang}_4class",
                                 "transcript": (EN if lang == "en" else ZH)[lab][k % 2],
                                 "dialog_type": "impro" if lang == "en" else ""})
        (root / "man").mkdir(parents=True, exist_ok=True)
        paths[split] = root / "man" / f"{split}.csv"
        pd.DataFrame(rows).to_csv(paths[split], index=False)
    return paths


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from ser_helpers.acoustic import make_base_model
    root = tmp_path_factory.mktemp("feat")
    man = make_corpus(root)
    model = make_base_model(root / "audio_model", size="tiny", seed=0)
    return {"root": root, "man": man, "model": str(model)}


@pytest.fixture(scope="module")
def built(tiny):
    m = tiny["man"]
    return F.build_fusion_features(str(m["train"]), str(m["val"]), str(m["test"]), str(tiny["root"] / "features"),
                                   audio_model_en=tiny["model"], audio_model_zh=tiny["model"],
                                   asr_backend="reference", audio_device="cpu", text_device="cpu", seed=1)


def test_csv_columns_order_and_values(built, tiny):
    for split in ("train", "val", "test"):
        df = pd.read_csv(built.paths[split], keep_default_na=False, na_values=[""])
        assert list(df.columns[:len(F.FEATURE_CSV_COLUMNS)]) == F.FEATURE_CSV_COLUMNS
        assert list(df.columns[len(F.FEATURE_CSV_COLUMNS):][:3]) == F.METADATA_COLUMNS
        man = pd.read_csv(tiny["man"][split])
        assert len(df) == len(man) and list(df["transcript"]) == list(man["transcript"])  # reference backend
        assert list(df["label_id"]) == [LABELS.index(x) for x in df["label"]]
        P = df[[f"audio_prob_{c}" for c in LABELS]].to_numpy()
        np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-5)
        np.testing.assert_allclose(df["audio_confidence"], P.max(axis=1), atol=1e-9)
        Q = df[[f"text4_prob_{c}" for c in LABELS]].to_numpy()
        np.testing.assert_allclose(Q.sum(axis=1), 1.0, atol=1e-6)
        assert df["text_negative"].isna().all()  # no sentiment model given -> empty
        assert list(df["lang_is_zh"]) == [float(x == "zh") for x in df["language"]]
        np.testing.assert_allclose(df["text_length_norm"], np.minimum(1, df["text_length"] / 256))
        assert list(df["text_length"]) == [len(t) for t in df["transcript"]]
        assert list(df["speaker"]) == list(man["speaker"])
    # val/test text4 scores come from the head trained on train transcripts: the sentences recur -> right
    val = built.frames["val"]
    assert (val[[f"text4_prob_{c}" for c in LABELS]].to_numpy().argmax(1) == val["label_id"]).mean() == 1.0


def test_summary_contract(built):
    s = json.loads((built.output_dir / "summary.json").read_text())
    assert s["rows"] == {"train": {"en": 12, "zh": 4}, "val": {"en": 4, "zh": 4}, "test": {"en": 4, "zh": 4}}
    fc = s["feature_columns"]
    assert set(fc) == {"audio_only", "text_only", "fusion"}
    assert fc["audio_only"] == ["audio_prob_ang", "audio_prob_hap", "audio_prob_neu", "audio_prob_sad",
                                "audio_confidence", "audio_entropy", "lang_is_zh"]
    assert "text4_prob_ang" in fc["text_only"] and "text_negative" not in fc["fusion"]
    assert not any(c.startswith("audio_") for c in fc["text_only"])
    assert "text_top_label_raw" not in fc["fusion"] and "transcript" not in fc["fusion"]
    df = built.frames["train"]
    assert not df[fc["fusion"]].isna().any().any()
    comp = s["components"]
    assert comp["asr"]["backend"] == "reference" and comp["asr"]["oracle"] is True and s["transcripts_oracle"]
    assert comp["audio_models"]["en"] == comp["audio_models"]["zh"] and Path(comp["audio_models"]["en"]).is_absolute()
    assert Path(comp["text4_head"]).is_dir() and comp["default_language"] == "en"
    assert comp["text_models"] == {"en": None, "zh": None}
    assert {"hits", "misses"} <= set(s["asr_cache"]) and "total_sec" in s["timings"]
    assert json.loads((built.output_dir / "asr_cache.json").read_text())["entries"] == {}  # reference: not cached
    assert set(s["audio_confidence"]) >= {"train_mean", "val_mean"}
    assert math.isclose(s["audio_confidence"]["val_mean"], built.frames["val"]["audio_confidence"].mean())
    assert set(s["raw_metrics"]["test"]) == {"audio", "text4"}


def test_train_text4_scores_are_out_of_fold(built):
    """Train rows: the same sentence appears for several speakers; out-of-fold scores never saw it."""
    from ser_helpers.text import Text4Head, normalize_sentence
    tr = built.frames["train"]
    head = Text4Head.load(built.summary["components"]["text4_head"])
    cols = [f"text4_prob_{c}" for c in LABELS]
    in_sample = head.predict_proba(tr["transcript"].tolist())
    assert not np.allclose(tr[cols].to_numpy(), in_sample)
    # every English train sentence is said by 3 speakers in 3 folds: it is never in a fold's training part,
    # so out-of-fold scores for English rows come from Mandarin training text only (no overlap) -> not confident
    en = tr[tr["language"] == "en"]
    assert len({normalize_sentence(t) for t in en["transcript"]}) < len(en)
    assert en[cols].to_numpy().max(axis=1).mean() < in_sample[tr["language"] == "en"].max(axis=1).mean() - 0.2


def test_oof_training_sets_exclude_held_out_sentences(monkeypatch):
    from ser_helpers import text as T
    seen = []
    orig = T.Text4Head.fit

    def spy(self, texts, labels):
        seen.append(list(texts))
        return orig(self, texts, labels)

    monkeypatch.setattr(T.Text4Head, "fit", spy)
    texts = [s for bank in (EN, ZH) for sents in bank.values() for s in sents]
    labels = [lab for bank in (EN, ZH) for lab, sents in bank.items() for _ in sents]
    texts3, labels3 = texts * 3, labels * 3
    speakers = [f"spk{i % 5}" for i in range(len(texts3))]
    folds = T.oof_fold_ids(speakers, n_splits=5, seed=0)
    P, ready = T.text4_out_of_fold(texts3, labels3, speakers, n_splits=5, seed=0)
    norm = [T.normalize_sentence(t) for t in texts3]
    trained_folds = []
    for f in sorted(set(folds.tolist())):  # the folds that had a usable training part, in fit order
        held = {norm[i] for i in np.where(folds == f)[0]}
        rest = [i for i in np.where(folds != f)[0] if norm[i] not in held]
        if len({labels3[i] for i in rest}) >= 2:
            trained_folds.append(f)
    assert len(seen) == len(trained_folds) > 0
    for f, train_texts in zip(trained_folds, seen):
        held = {norm[i] for i in np.where(folds == f)[0]}
        assert not held & {T.normalize_sentence(t) for t in train_texts}
        assert len(train_texts) > 0
    untrained = [i for i in range(len(texts3)) if folds[i] not in trained_folds]
    assert all(ready[i] == 0 for i in untrained)


def test_featurizer_row_matches_batch(built, tiny):
    feat = F.Featurizer.from_components(built.summary["components"], audio_device="cpu", text_device="cpu")
    val = built.frames["val"]
    for i in (0, len(val) - 1):
        r = val.iloc[i]
        row = feat.row(load_audio(r["path"]), r["language"], transcript=r["transcript"])
        for c in built.summary["feature_columns"]["fusion"]:
            assert row[c] == pytest.approx(float(r[c]), abs=1e-5), c
        assert row["transcript"] == r["transcript"] and row["language"] == r["language"]
    # no transcript: the reference backend has nothing to recognise -> empty text, not ready
    row = feat.row(load_audio(val.iloc[0]["path"]), "zh")
    assert row["transcript"] == "" and row["text4_ready"] == 0 and row["text4_prob_hap"] == pytest.approx(0.25)
    # Mandarin keeps the reference path (nothing to recognise: ""); English new audio is recognised by the bundled
    # Whisper tiny.en when its weights are installed (features.inference_asr_spec), else "" too
    clip = load_audio(val.iloc[0]["path"])
    assert feat.transcribe(clip, "zh") == ""
    assert feat.transcribe(clip, "en") == "" or feat.transcriber.recognises("en")


def test_whisper_backend_cache_and_rerun(tiny, tmp_path):
    from ser_helpers.asr import make_tiny_whisper_checkpoint
    ckpt = make_tiny_whisper_checkpoint(tmp_path / "w.pt")
    m = tiny["man"]
    kw = dict(audio_model_en=tiny["model"], audio_model_zh=tiny["model"], asr_backend="whisper",
              whisper_model=str(ckpt), whisper_cpu_threads=1, max_samples=3, audio_device="cpu", seed=0,
              text4_head="none")
    out = tmp_path / "f"
    r1 = F.build_fusion_features(str(m["train"]), str(m["val"]), str(m["test"]), str(out), **kw)
    assert r1.summary["asr_cache"]["misses"] == 9 and r1.summary["asr_cache"]["hits"] == 0
    assert all(t.strip() for s in ("train", "val", "test") for t in r1.frames[s]["transcript"])
    assert r1.summary["components"]["asr"]["oracle"] is False and not r1.summary["transcripts_oracle"]
    assert (out / "asr_cache.json").exists()
    # no text4 head: uniform, not ready, and not offered as features
    assert (r1.frames["val"]["text4_ready"] == 0).all()
    assert not any(c.startswith("text4_") for c in r1.summary["feature_columns"]["fusion"])
    r2 = F.build_fusion_features(str(m["train"]), str(m["val"]), str(m["test"]), str(out), **kw)
    assert r2.summary["asr_cache"]["hits"] == 9 and r2.summary["asr_cache"]["misses"] == 0
    for s in ("train", "val", "test"):
        assert list(r1.frames[s]["transcript"]) == list(r2.frames[s]["transcript"])
        assert len(r1.frames[s]) == 3
    # the Featurizer transcribes with the same backend
    feat = F.Featurizer.from_components(r1.summary["components"], audio_device="cpu")
    p = r1.frames["val"]["path"].iloc[0]
    assert feat.transcribe(load_audio(p), r1.frames["val"]["language"].iloc[0]) == r1.frames["val"]["transcript"].iloc[0]


def test_skip_asr_gives_empty_transcripts(tiny, tmp_path):
    m = tiny["man"]
    with pytest.warns(UserWarning, match="text4 head is not trained"):
        r = F.build_fusion_features(str(m["train"]), str(m["val"]), str(m["test"]), str(tmp_path / "f"),
                                    audio_model_en=tiny["model"], audio_model_zh=tiny["model"], skip_asr=True,
                                    max_samples=4, audio_device="cpu")
    assert r.summary["components"]["asr"]["backend"] == "none"
    for s in ("train", "val", "test"):
        df = r.frames[s]
        assert (df["transcript"] == "").all() and (df["text4_ready"] == 0).all() and (df["text_length"] == 0).all()


def test_errors_name_the_problem(tiny, tmp_path):
    m = tiny["man"]
    with pytest.raises(SERError, match="audio-model-zh"):
        F.build_fusion_features(str(m["train"]), str(m["val"]), str(m["test"]), str(tmp_path / "a"),
                                audio_model_en=tiny["model"], asr_backend="reference")
    bad = pd.read_csv(m["val"])
    bad.loc[3, "language"] = "fr"
    bad.to_csv(tmp_path / "val.csv", index=False)
    with pytest.raises(SERError, match=r"val.csv: row 5, column 'language': unknown language 'fr'"):
        F.build_fusion_features(str(m["train"]), str(tmp_path / "val.csv"), str(m["test"]), str(tmp_path / "b"),
                                audio_model_en=tiny["model"], audio_model_zh=tiny["model"], asr_backend="reference")
    with pytest.raises(SERError, match="text4-head"):
        F.build_fusion_features(str(m["train"]), str(m["val"]), str(m["test"]), str(tmp_path / "c"),
                                audio_model_en=tiny["model"], audio_model_zh=tiny["model"],
                                asr_backend="reference", text4_head="/no/such/dir")


def test_cli_with_sentiment_model_and_max_samples(tiny, tmp_path):
    from ser_helpers.cli import main
    from ser_helpers.text import TextClassifier
    m = tiny["man"]
    sent = F.train_sentiment_model_from_manifest(str(m["train"]), str(tmp_path / "sent"), epochs=2)
    out = tmp_path / "cli"
    rc = main(["build-fusion-features", "--train-manifest", str(m["train"]), "--val-manifest", str(m["val"]),
               "--test-manifest", str(m["test"]), "--output-dir", str(out), "--audio-model-en", tiny["model"],
               "--audio-model-zh", tiny["model"], "--text-model-en", str(sent), "--asr-backend", "reference",
               "--audio-device", "cpu", "--text-device", "cpu", "--max-samples", "6", "--seed", "3"])
    assert rc == 0
    s = json.loads((out / "summary.json").read_text())
    assert sum(s["rows"]["val"].values()) == 6
    df = pd.read_csv(out / "val_features.csv", keep_default_na=False, na_values=[""])
    S = df[["text_negative", "text_neutral", "text_positive"]].to_numpy()
    np.testing.assert_allclose(S.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(df["text_negative_score"], S[:, 0] - S[:, 2], atol=1e-9)
    en = df["language"] == "en"
    assert set(df.loc[en, "text_top_label_raw"]) <= {"negative", "neutral", "positive"}
    assert (df.loc[~en, "text_sentiment_ready"] == 0).all() and (df.loc[en, "text_sentiment_ready"] == 1).all()
    clf = TextClassifier.load(str(sent), device="cpu")
    i = int(np.where(en)[0][0])
    np.testing.assert_allclose(S[i], clf.sentiment_proba(clf.predict_proba([df["transcript"][i]]))[0], atol=1e-5)
    assert {"text_negative", "text_negative_score", "text_sentiment_ready"} <= set(s["feature_columns"]["text_only"])
    assert main(["build-fusion-features", "--train-manifest", str(tmp_path / "missing.csv"), "--val-manifest",
                 str(m["val"]), "--test-manifest", str(m["test"]), "--output-dir", str(out)]) == 1


def test_cli_flags_are_the_config_fields_with_its_defaults():
    """`ser build-fusion-features` flags are generated from FeaturesConfig: one per field (oof_folds is library-only),
    each defaulting to the field's default; the contract defaults hold."""
    from dataclasses import fields

    from ser_helpers.cli import build_parser
    args = vars(build_parser().parse_args(["build-fusion-features", "--train-manifest", "a", "--val-manifest", "b",
                                           "--test-manifest", "c", "--output-dir", "d"]))
    config = F.FeaturesConfig()
    names = {f.name for f in fields(F.FeaturesConfig)} - {"oof_folds"}
    assert names <= set(args) and {n: args[n] for n in names} == {n: getattr(config, n) for n in names}
    assert F.FeaturesConfig.from_params(args) == config
    assert (config.sample_rate, config.whisper_model, config.whisper_cpu_threads, config.default_language,
            config.max_samples) == (16000, "small", 8, "en", 0)


def test_config_normalized_and_checked():
    cfg = F.FeaturesConfig(default_language="English", asr_backend="", text4_head=" none ").normalized()
    assert (cfg.default_language, cfg.asr_backend, cfg.text4_head) == ("en", "whisper", "none")
    assert F.FeaturesConfig(skip_asr=True).transcript_source == "none"
    with pytest.raises(SERError, match="--sample-rate 8000"):
        F.FeaturesConfig(sample_rate=8000).normalized()
    with pytest.raises(SERError, match="--default-language: unknown language 'fr'"):
        F.FeaturesConfig(default_language="fr").normalized()


@pytest.mark.slow
def test_notebook_06_through_papermill(tiny, tmp_path, repo_root):
    """Notebook 06 on a run dir laid out as stages 02/03 leave it (tiny data, tiny model)."""
    import shutil
    run_dir = tmp_path / "run"
    shutil.copytree(tiny["man"]["train"].parent, run_dir / "manifests" / "multilingual_4class")
    shutil.copytree(tiny["model"], run_dir / "models" / "audio" / "multilingual" / "best_model")
    out_nb = tmp_path / "06_out.ipynb"
    cmd = [sys.executable, "-m", "papermill", str(repo_root / "notebooks" / "06_build_fusion_features.ipynb"),
           str(out_nb), "-p", "run_dir", str(run_dir), "-p", "train_sentiment_model", "True", "-p", "seed", "1", "-p", "audio_model_kind", "wav2vec2",
           "--cwd", str(repo_root), "-k", "python3"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    feats = run_dir / "features"
    for name in ("train_features.csv", "val_features.csv", "test_features.csv", "summary.json",
                 "feature_correlation.png", "text4_head/text4_head.json"):
        assert (feats / name).exists(), name
    s = json.loads((feats / "summary.json").read_text())
    assert s["components"]["text_models"]["en"] == str(run_dir / "models" / "text" / "sentiment_tiny")
    text = out_nb.read_text()
    assert "ORACLE" in text and "macro_f1" in text and "image/png" in text


def test_smoke_run_features(smoke_run):
    """What the smoke profile's stage 06 wrote (tiny sentiment model, reference transcripts)."""
    feats = smoke_run / "features"
    s = json.loads((feats / "summary.json").read_text())
    for split in ("train", "val", "test"):
        df = pd.read_csv(feats / f"{split}_features.csv", keep_default_na=False, na_values=[""])
        assert list(df.columns[:len(F.FEATURE_CSV_COLUMNS)]) == F.FEATURE_CSV_COLUMNS
        assert sum(s["rows"][split].values()) == len(df) > 0
        assert not df[s["feature_columns"]["fusion"]].isna().any().any()
    assert s["components"]["asr"]["oracle"] is (s["components"]["asr"]["backend"] == "reference")
    assert s["components"]["text4_head"] and Path(s["components"]["text4_head"]).is_dir()
    assert {"audio", "text4"} <= set(s["raw_metrics"]["test"])


def test_fine_tuned_text_emotion_model_as_text4_and_text_model(built, tiny, tmp_path):
    """`ser train-text-emotion` output: as --text4-head it fills text4_*; as a text model its 4 labels
    become extra `text_<label>` columns (not sentiment)."""
    from ser_helpers.text import TextClassifier, train_text_emotion
    out = built.output_dir
    emo = train_text_emotion(str(out / "train_features.csv"), str(out / "val_features.csv"),
                             str(tmp_path / "emo"), language_filter="all", epochs=1, learning_rate=3e-3,
                             device="cpu").output_dir
    m = tiny["man"]
    r = F.build_fusion_features(str(m["train"]), str(m["val"]), str(m["test"]), str(tmp_path / "f"),
                                audio_model_en=tiny["model"], audio_model_zh=tiny["model"], text_model_zh=str(emo),
                                asr_backend="reference", text4_head=str(emo), max_samples=5, audio_device="cpu",
                                text_device="cpu")
    comp = r.summary["components"]
    assert comp["text4_kind"] == "hf" and comp["text4_head"] == str(Path(emo).resolve())
    clf = TextClassifier.load(str(emo), device="cpu")
    val = r.frames["val"]
    cols = [f"text4_prob_{c}" for c in LABELS]
    expect = clf.emotion4_proba(clf.predict_proba(val["transcript"].tolist()))
    np.testing.assert_allclose(val[cols].to_numpy(), expect, atol=1e-5)
    assert {"text_ang", "text_hap", "text_neu", "text_sad"} <= set(val.columns)
    assert val["text_negative"].isna().all()  # an emotion model is not a sentiment model
    zh = val["language"] == "zh"
    np.testing.assert_allclose(val.loc[zh, "text_ang"], val.loc[zh, "text4_prob_ang"], atol=1e-5)
    assert (val.loc[~zh, "text_ang"] == 0).all() and "text_ang" in r.summary["feature_columns"]["text_only"]
    feat = F.Featurizer.from_components(comp, audio_device="cpu", text_device="cpu")
    row = feat.row(load_audio(val["path"].iloc[0]), val["language"].iloc[0], transcript=val["transcript"].iloc[0])
    assert row["text4_prob_neu"] == pytest.approx(val["text4_prob_neu"].iloc[0], abs=1e-5)


def test_choose_audio_model_by_val_score(tmp_path):
    """auto = the audio model with the higher VALIDATION macro-F1; explicit kinds; clear errors."""
    from ser_helpers.common import SERError
    run = tmp_path / "run"
    w2v = run / "models" / "audio" / "m"
    base = run / "models" / "baseline" / "m"
    with pytest.raises(SERError, match="no trained audio model"):
        F.choose_audio_model(run, "m", "auto")
    (w2v / "best_model").mkdir(parents=True)
    path, table = F.choose_audio_model(run, "m", "auto")  # only one exists, no scores
    assert path.endswith("best_model") and table.chosen.tolist() == [True, False]
    (w2v / "train_report.json").write_text(json.dumps({"best_val_metrics": {"macro_f1": 0.30}}))
    base.mkdir(parents=True)
    (base / "train_report.json").write_text(json.dumps({"val": {"macro_f1": 0.55}, "test": {"macro_f1": 0.99}}))
    path, table = F.choose_audio_model(run, "m", "auto")
    assert path == str(base) and table.set_index("audio model").val_macro_f1.to_dict() == {"wav2vec2": 0.30, "baseline": 0.55}
    (w2v / "train_report.json").write_text(json.dumps({"best_val_metrics": {"macro_f1": 0.60}}))
    assert F.choose_audio_model(run, "m", "auto")[0].endswith("best_model")
    assert F.choose_audio_model(run, "m", "baseline")[0] == str(base)
    with pytest.raises(SERError, match="audio_model_kind"):
        F.choose_audio_model(run, "m", "hubert")


def test_choose_audio_model_considers_every_trained_candidate(tmp_path):
    """A pretrained-encoder model trained beside the scratch one (`{name}_whisper`) competes on VALIDATION score."""
    from ser_helpers.common import SERError
    run = tmp_path / "run"
    for sub, f1 in (("m", 0.40), ("m_whisper", 0.70), ("other", 0.99)):
        (run / "models" / "audio" / sub / "best_model").mkdir(parents=True)
        (run / "models" / "audio" / sub / "train_report.json").write_text(
            json.dumps({"best_val_metrics": {"macro_f1": f1}, "test_metrics": {"macro_f1": 0.0}}))
    (run / "models" / "baseline" / "m").mkdir(parents=True)
    (run / "models" / "baseline" / "m" / "train_report.json").write_text(json.dumps({"val": {"macro_f1": 0.60}}))
    path, table = F.choose_audio_model(run, "m", "auto")
    assert path == str(run / "models" / "audio" / "m_whisper" / "best_model")
    assert table["audio model"].tolist() == ["wav2vec2", "baseline", "whisper"]  # "other" is another model's
    assert F.choose_audio_model(run, "m", "wav2vec2")[0].endswith("m/best_model")
    (run / "models" / "audio" / "m_whisper" / "train_report.json").write_text(
        json.dumps({"best_val_metrics": {"macro_f1": 0.50}}))
    assert F.choose_audio_model(run, "m", "auto")[0] == str(run / "models" / "baseline" / "m")
    with pytest.raises(SERError, match="whisper"):
        F.choose_audio_model(run, "m", "hubert")
