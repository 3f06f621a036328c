"""acoustic: training artifacts, loading through pipeline(), bad files, resume, 2-process DDP, samplers."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from ser_helpers import acoustic
from ser_helpers.audio import AudioError
from ser_helpers.common import LABELS, SERError

SR = 16000
PITCH = {"ang": 320.0, "hap": 260.0, "neu": 160.0, "sad": 110.0}
REPO = Path(__file__).resolve().parent.parent


def make_clip(label: str, seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = PITCH[label] * (1 + 0.05 * rng.standard_normal())
    loud = 0.5 if label in ("ang", "hap") else 0.15
    w = loud * np.sin(2 * np.pi * f0 * t) + 0.3 * loud * np.sin(4 * np.pi * f0 * t) + 0.01 * rng.standard_normal(t.size)
    return w.astype(np.float32)


def make_manifests(root: Path, per_label: dict[str, int] | None = None, seed: int = 0) -> dict[str, Path]:
    """Tiny tone corpus: train/val/test manifests with label-dependent pitch and loudness, 0.5-1.6 s clips."""
    per_label = per_label or {"train": 4, "val": 2, "test": 2}
    out = {}
    rng = np.random.default_rng(seed)
    for split, n in per_label.items():
        rows = []
        for lab in LABELS:
            for k in range(n):
                dur = float(rng.uniform(0.5, 1.6))
                path = root / "wav" / split / f"{lab}_{k}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(path, make_clip(lab, dur, hash((split, lab, k)) % 10_000), SR)
                rows.append({"path": str(path), "label": lab, "source_label": lab, "duration_sec": round(dur, 3),
                             "speaker": f"{split}_spk", "language": "en",
                             "source_dataset": "toy_a" if k % 2 else "toy_b", "session": f"S{k % 3 + 1}"})
        out[split] = root / f"{split}.csv"
        pd.DataFrame(rows).to_csv(out[split], index=False)
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    return {"manifests": make_manifests(root), "base": acoustic.make_base_model(root / "base", "tiny", seed=0)}


FAST = dict(epochs=2, batch_size=4, learning_rate=1e-3, warmup_ratio=0.1, max_duration_sec=1.0, patience=3,
            device="cpu", progress=False, plots=False, lr_scheduler="cosine")


@pytest.mark.slow  # training
def test_train_writes_standard_artifacts(data, tmp_path):
    m = data["manifests"]
    res = acoustic.train_wav2vec2(m["train"], m["val"], tmp_path / "run", test_manifest=m["test"],
                                  base_model=str(data["base"]), source_weight_map="toy_a=2.0",
                                  source_language_map="toy_a=zh", **{**FAST, "plots": True})
    out = tmp_path / "run"
    rep = json.loads((out / "train_report.json").read_text())
    assert [h["epoch"] for h in rep["history"]] == [1.0, 2.0]
    assert all(h["train_loss"] is not None and 0 <= h["val_macro_f1"] <= 1 for h in rep["history"])
    assert rep["best_epoch"] in (1.0, 2.0) and rep["train_samples_per_sec"] > 0
    assert rep["config"]["source_weight_map"] == {"toy_a": 2.0}
    assert rep["data"]["train"]["languages"] == {"en": 8, "zh": 8}
    assert set(rep["versions"]) >= {"torch", "transformers"}
    assert json.loads((out / "label_map.json").read_text())["labels"] == LABELS
    for n in (1, 2):
        cm = pd.read_csv(out / f"val_confusion_matrix_epoch{n}.csv")
        assert list(cm.columns) == ["true_label"] + LABELS and cm[LABELS].to_numpy().sum() == 8
    test_cm = pd.read_csv(out / "test_confusion_matrix.csv")
    assert test_cm[LABELS].to_numpy().sum() == 8
    assert rep["test_metrics"]["n"] == 8 and "majority_baseline" in rep["test_metrics"]
    assert not (out / "checkpoints").exists()  # removed once training finished
    assert (out / "training_curves.png").stat().st_size > 1000 and (out / "test_confusion_matrix.png").exists()
    card = (out / "best_model" / "README.md").read_text()
    assert "ethical" in card.lower() and "from scratch" in card.lower()
    # the best model is a standard HF dir: Auto* classes and pipeline() load it, id2label holds the codes
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification, pipeline
    model = AutoModelForAudioClassification.from_pretrained(res.best_model_dir)
    assert [model.config.id2label[i] for i in range(4)] == LABELS
    AutoFeatureExtractor.from_pretrained(res.best_model_dir)
    preds = pipeline("audio-classification", model=str(res.best_model_dir), device="cpu")(
        make_clip("ang", 1.0, 1), top_k=4)
    assert {p["label"] for p in preds} == set(LABELS)
    # the test confusion is the best model's, recomputed here through the shared inference API
    from ser_helpers.inference import AudioClassifier
    from ser_helpers.audio import load_audio
    tdf = pd.read_csv(m["test"])
    probs = AudioClassifier.load(res.best_model_dir, device="cpu").predict_proba(
        [load_audio(p) for p in tdf["path"]], max_duration_sec=1.0)
    assert np.mean(probs.argmax(1) == [LABELS.index(v) for v in tdf["label"]]) == pytest.approx(
        rep["test_metrics"]["accuracy"])


def test_bad_file_is_named_before_training(data, tmp_path):
    m = data["manifests"]
    df = pd.read_csv(m["val"])
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    df.loc[3, "path"] = str(bad)
    df.to_csv(tmp_path / "val.csv", index=False)
    with pytest.raises(AudioError, match=r"val manifest .*row 5: .*bad\.wav"):
        acoustic.train_wav2vec2(m["train"], tmp_path / "val.csv", tmp_path / "run", base_model=str(data["base"]),
                                **FAST)
    assert not (tmp_path / "run" / "train_report.json").exists()


def test_bad_options_are_clear(data, tmp_path):
    m = data["manifests"]
    with pytest.raises(SERError, match="KEY=VALUE"):
        acoustic.train_wav2vec2(m["train"], m["val"], tmp_path / "r", base_model=str(data["base"]),
                                source_weight_map="toy_a:2", **FAST)
    df = pd.read_csv(m["train"]).drop(columns=["source_dataset"])
    df.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(SERError, match="source_dataset"):
        acoustic.train_wav2vec2(tmp_path / "t.csv", m["val"], tmp_path / "r", base_model=str(data["base"]),
                                source_weight_map="toy_a=2", **FAST)


def test_crops_are_seeded_by_seed_epoch_index(data):
    df = pd.read_csv(data["manifests"]["train"])
    df["sample_weight"] = 1.0
    ds = acoustic.ClipDataset(df, {lab: i for i, lab in enumerate(LABELS)}, SR, 8000, True, seed=3)
    long_idx = int(np.argmax(df["duration_sec"]))
    a, b = ds[(long_idx, 0)]["clip"], ds[(long_idx, 0)]["clip"]
    c = ds[(long_idx, 1)]["clip"]
    assert a.shape[0] == 8000 and bool((a == b).all()) and not bool((a == c).all())


def test_length_grouped_sampler():
    lengths = np.random.default_rng(0).integers(1000, 100000, 103)
    s = acoustic.EpochBatchSampler(lengths, 8, seed=1, shuffle=True, length_grouped=True, mega=4)
    s.set_epoch(0)
    e0 = s.batches()
    assert len(e0) == len(s) == 13 and sorted(i for b in e0 for i in b) == list(range(103))
    s.set_epoch(1)
    assert s.batches() != e0
    s.set_epoch(0)
    assert s.batches() == e0
    spread = np.mean([np.ptp(lengths[b]) for b in e0])
    r = acoustic.EpochBatchSampler(lengths, 8, seed=1, shuffle=True, length_grouped=False)
    assert spread < 0.5 * np.mean([np.ptp(lengths[b]) for b in r.batches()])
    assert [i for i, ep in next(iter(s))] == e0[0] and all(ep == 0 for _, ep in next(iter(s)))


class _Crash(RuntimeError):
    pass


@pytest.mark.slow  # training twice
def test_resume_after_crash_matches_uninterrupted(data, tmp_path):
    """Crash mid-epoch 2 (after the epoch-1 checkpoint), resume, and end exactly where an uninterrupted run does."""
    from transformers import TrainerCallback
    m = data["manifests"]
    kw = dict(FAST, epochs=2, base_model=str(data["base"]))
    full = acoustic.train_wav2vec2(m["train"], m["val"], tmp_path / "full", **kw)
    steps_per_epoch = 4  # 16 clips / batch 4

    class CrashAt(TrainerCallback):
        def on_step_end(self, args, state, control, **k):
            if state.global_step == steps_per_epoch + 2:
                raise _Crash("simulated crash")

    with pytest.raises(_Crash):
        acoustic.train_wav2vec2(m["train"], m["val"], tmp_path / "crashed", callbacks=[CrashAt()], **kw)
    assert (tmp_path / "crashed" / "checkpoints" / f"checkpoint-{steps_per_epoch}").is_dir()
    assert not (tmp_path / "crashed" / "train_report.json").exists()
    seen = []

    class Watch(TrainerCallback):
        def on_train_begin(self, args, state, control, **k):
            seen.append(state.global_step)

        def on_step_end(self, args, state, control, **k):
            seen.append(state.global_step)

    resumed = acoustic.train_wav2vec2(m["train"], m["val"], tmp_path / "crashed", resume=True,
                                      callbacks=[Watch()], **kw)
    assert resumed.report["config"]["resumed_from"].endswith(f"checkpoint-{steps_per_epoch}")
    assert seen[1] == steps_per_epoch + 1  # continued the step count
    assert resumed.report["global_step"] == full.report["global_step"] == 2 * steps_per_epoch
    assert len(full.history) == len(resumed.history) == 2
    for a, b in zip(full.history, resumed.history):
        assert a["epoch"] == b["epoch"]
        assert a["val_macro_f1"] == pytest.approx(b["val_macro_f1"], abs=1e-9)
        assert a["val_nll"] == pytest.approx(b["val_nll"], rel=1e-4)


def test_adapt_head_trains_only_head(data, tmp_path):
    import torch
    from transformers import AutoModelForAudioClassification
    m = data["manifests"]
    res = acoustic.adapt_wav2vec2_head(m["train"], m["val"], str(data["base"]), tmp_path / "head",
                                       epochs=1, batch_size=4, learning_rate=1e-2, max_duration_sec=1.0,
                                       device="cpu", progress=False, plots=False)
    before = AutoModelForAudioClassification.from_pretrained(data["base"]).state_dict()
    after = AutoModelForAudioClassification.from_pretrained(res.best_model_dir).state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("classifier.") for k in changed)
    assert res.report["n_trainable_parameters"] < 1000


def test_cli_flags_match_contract():
    from ser_helpers.cli import build_parser
    p = build_parser()
    a = p.parse_args(["train-wav2vec2", "--train-manifest", "t", "--val-manifest", "v", "--output-dir", "o"])
    expected = dict(test_manifest="", base_model="facebook/wav2vec2-base", sample_rate=16000, max_duration_sec=15.0,
                    epochs=12, batch_size=4, learning_rate=1e-5, weight_decay=0.01, warmup_ratio=0.1,
                    gradient_accumulation=1, patience=3, num_workers=0, log_interval=200, seed=42,
                    freeze_feature_encoder=False, freeze_feature_encoder_epochs=0, fp16=False, source_weight_map="",
                    source_language_map="", device="auto", disable_class_weighted_loss=False, resume=False,
                    lr_scheduler="linear", max_steps=None, length_grouped=True)
    assert {k: getattr(a, k) for k in expected} == expected
    h = p.parse_args(["adapt-wav2vec2-head", "--train-manifest", "t", "--val-manifest", "v", "--base-model", "b",
                      "--output-dir", "o"])
    assert (h.max_duration_sec, h.epochs, h.batch_size, h.learning_rate, h.weight_decay, h.warmup_ratio,
            h.patience, h.seed, h.train_projector) == (15, 8, 2, 1e-4, 0.01, 0.1, 3, 42, False)


def test_train_config_is_the_one_source_of_flags_and_defaults():
    """Every train-wav2vec2 flag default is TrainConfig's; parsed flags build the config the user asked for;
    adapt-wav2vec2-head keeps its own defaults (ADAPT_DEFAULTS) on the same fields."""
    import dataclasses

    from ser_helpers.cli import build_parser
    p = build_parser()
    base = ["--train-manifest", "t", "--val-manifest", "v", "--output-dir", "o"]
    a = p.parse_args(["train-wav2vec2", *base])
    assert acoustic.TrainConfig.from_params(vars(a)) == acoustic.TrainConfig()
    cli_fields = [f.name for f in dataclasses.fields(acoustic.TrainConfig)
                  if f.metadata.get("cli", True) and f.name != "train_projector"] + ["allow_split_overlap"]
    assert all(getattr(a, n) == getattr(acoustic.TrainConfig, n) for n in cli_fields)
    a = p.parse_args(["train-wav2vec2", *base, "--epochs", "1.5", "--no-length-grouped", "--disable-class-weighted-loss",
                      "--max-steps", "7", "--train-top-layers", "2", "--lr-scheduler", "cosine", "--source-weight-map",
                      "a=2", "--allow-split-overlap"])
    cfg = acoustic.TrainConfig.from_params(vars(a))
    assert (cfg.epochs, cfg.length_grouped, cfg.disable_class_weighted_loss, cfg.max_steps, cfg.train_top_layers,
            cfg.lr_scheduler, cfg.source_weight_map, cfg.allow_split_overlap) == (1.5, False, True, 7, 2, "cosine",
                                                                                  "a=2", True)
    assert p.parse_args(["train-wav2vec2", *base, "--length-grouped"]).length_grouped is True
    with pytest.raises(SystemExit):
        p.parse_args(["train-wav2vec2", *base, "--lr-scheduler", "step"])
    h = p.parse_args(["adapt-wav2vec2-head", *base, "--base-model", "b"])
    cfg = acoustic.TrainConfig.from_params(vars(h))
    assert {k: getattr(cfg, k) for k in acoustic.ADAPT_DEFAULTS} == acoustic.ADAPT_DEFAULTS
    assert cfg == dataclasses.replace(acoustic.TrainConfig(**acoustic.ADAPT_DEFAULTS), base_model="b")
    cv = p.parse_args(["cross-validate", "--manifest", "m", "--output-dir", "o", "--epochs", "2"])
    assert acoustic.TrainConfig.from_params(vars(cv)) == acoustic.TrainConfig(epochs=2.0)


def test_train_config_and_keyword_forms_agree(data, tmp_path):
    """`config=` and keyword arguments are the same settings: keywords override a config; a bad value is refused
    with the flag's name before anything is read or written."""
    m = data["manifests"]
    cfg = acoustic.TrainConfig(lr_scheduler="step")
    with pytest.raises(SERError, match="--lr-scheduler"):
        acoustic.train_wav2vec2(m["train"], m["val"], tmp_path / "a", config=cfg)
    with pytest.raises(SERError, match="--lr-scheduler"):
        acoustic.train_wav2vec2(m["train"], m["val"], tmp_path / "b", lr_scheduler="step")
    with pytest.raises(SERError, match="--batch-size"):
        acoustic.train_wav2vec2(m["train"], m["val"], tmp_path / "c", config=acoustic.TrainConfig(), batch_size=0)
    with pytest.raises(TypeError, match="no_such_setting"):
        acoustic.train_wav2vec2(m["train"], m["val"], tmp_path / "d", no_such_setting=1)
    assert not any(tmp_path.iterdir())


def test_notebook_03_parameters_are_train_config_defaults(tmp_path, monkeypatch):
    """Notebook 03's parameters cell: TrainConfig's defaults except the notebook's own OVERRIDES; one
    `TrainConfig.from_params(globals(), ...)` call passes them on."""
    import runpy

    import nbformat
    nb = nbformat.read(str(REPO / "notebooks" / "03_train_wav2vec2.ipynb"), as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    ns: dict = {}
    exec(cell.source, ns)  # plain literals only
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("NBBUILD_OUT_DIR", str(tmp_path))  # the builder writes its notebook there
    builder = runpy.run_path(str(REPO / "tools" / "notebooks" / "build_03.py"), run_name="__main__")
    cfg = acoustic.TrainConfig.from_params(ns)
    assert cfg == acoustic.TrainConfig(**builder["OVERRIDES"])
    assert "class_weighted_loss" not in ns and ns["disable_class_weighted_loss"] is False
    assert "TrainConfig.from_params(globals()" in "".join(c.source for c in nb.cells)


@pytest.mark.slow  # training in two processes
def test_ddp_two_processes_gloo(data, tmp_path):
    """torchrun --nproc_per_node 2 (CPU, gloo): world size 2, each rank half the samples, identical weights."""
    m = data["manifests"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(REPO / "tests" / "_ddp_worker.py"), str(m["train"]), str(m["val"]), str(data["base"]),
           str(tmp_path / "ddp")]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)  # the launcher and both workers
        proc.communicate()
        pytest.fail("2-process run timed out")
    assert proc.returncode == 0, err[-3000:]
    ranks = [json.loads((tmp_path / "ddp" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    n_train = len(pd.read_csv(m["train"]))
    for epoch in ("0", "1"):
        a, b = (set(r["seen"][epoch]) for r in ranks)
        assert len(a) == len(b) == n_train // 2 and not (a & b) and len(a | b) == n_train
    assert ranks[0]["weights_sha"] == ranks[1]["weights_sha"]
    assert (tmp_path / "ddp" / "best_model" / "config.json").exists()


@pytest.mark.slow  # training per fold
def test_cross_validate_leave_one_session_out_cli(data, tmp_path, capsys):
    """`ser cross-validate`: one fold per session, test = that session, val = the next, train = the rest."""
    from ser_helpers.cli import main
    m = data["manifests"]
    pooled = pd.concat([pd.read_csv(m[s]) for s in ("train", "val", "test")], ignore_index=True)
    out = tmp_path / "cv"
    rc = main(["cross-validate", "--manifest", str(m["train"]), str(m["val"]), str(m["test"]),
               "--output-dir", str(out), "--base-model", str(data["base"]), "--epochs", "1", "--batch-size", "4",
               "--max-duration-sec", "1.0", "--device", "cpu", "--seed", "3",
               "--allow-split-overlap"])  # the toy corpus's speakers are per split, not per session
    assert rc == 0
    summary = json.loads((out / "cv_summary.json").read_text())
    folds = summary["folds"]
    assert [f["fold"] for f in folds] == ["S1", "S2", "S3"] and [f["val_group"] for f in folds] == ["S2", "S3", "S1"]
    for f in folds:
        split = {s: pd.read_csv(out / f"fold_{f['fold']}" / "manifests" / f"{s}.csv") for s in ("train", "val", "test")}
        assert set(split["test"]["session"]) == {f["fold"]} and set(split["val"]["session"]) == {f["val_group"]}
        assert not set(split["train"]["session"]) & {f["fold"], f["val_group"]}
        assert sum(len(d) for d in split.values()) == len(pooled)
        assert f["n_test"] == int((pooled["session"] == f["fold"]).sum())
        report = json.loads((out / f"fold_{f['fold']}" / "train_report.json").read_text())
        assert report["test_metrics"]["macro_f1"] == pytest.approx(f["test_macro_f1"])
    f1 = [f["test_macro_f1"] for f in folds]
    assert summary["test_macro_f1"]["mean"] == pytest.approx(np.mean(f1))
    assert summary["test_macro_f1"]["std"] == pytest.approx(np.std(f1, ddof=1))
    assert pd.read_csv(out / "cv_summary.csv")["fold"].tolist() == ["S1", "S2", "S3"]
    assert "test_macro_f1:" in capsys.readouterr().out
    with pytest.raises(SERError, match="needs >= 3"):
        acoustic.cross_validate(m["train"], tmp_path / "cv2", fold_column="source_dataset")
    with pytest.raises(SERError, match="lacks the fold column 'room'"):
        acoustic.cross_validate(m["train"], tmp_path / "cv3", fold_column="room")
