"""The dry run of the GPU profile: recorded hub configs, stand-ins with the real architectures, the offline error,
the derived profile, the Whisper token cap, and (slow) the dry run itself end to end."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ser_helpers import dryrun, hub
from ser_helpers.common import SERError
from ser_helpers.pipeline import load_profile, run_pipeline

ROOT = Path(__file__).resolve().parents[1]
GPU = ROOT / "configs" / "gpu_iemocap.yaml"
EXPECTED_IDS = {"facebook/wav2vec2-base", "openai-whisper/small", "cardiffnlp/twitter-roberta-base-sentiment-latest",
                "uer/roberta-base-finetuned-jd-binary-chinese"}


def test_every_model_of_the_gpu_profile_is_found_and_recorded_with_its_source():
    refs = dryrun.model_refs(load_profile(GPU))
    assert {r["id"] for r in refs} == EXPECTED_IDS
    sources = json.loads((dryrun.HUB_CONFIGS / "sources.json").read_text())
    for ref in refs:
        config = dryrun.recorded_config(ref["id"])
        assert config.get("model_type"), ref
        assert sources[ref["id"]]["url"].startswith("https://"), ref
    # a relative data path is not a hub id; a local model dir neither
    from ser_helpers.pipeline import Profile, Stage
    other = Profile("x", {}, [Stage("02_folder_manifest", "m", {"casia_dir": "data/not-here"}),
                              Stage("03_train_wav2vec2", "t", {"base_model": str(ROOT / "configs")})])
    assert dryrun.model_refs(other) == []
    with pytest.raises(SERError, match="no recorded architecture"):
        dryrun.recorded_config("someone/unknown-model")


def test_audio_standins_have_the_real_sizes():
    """wav2vec2-base: 95 M parameters (94.4 M without the pretraining heads); Whisper small: 12+12 layers of 768."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2ForPreTraining
    from whisper.model import ModelDimensions, Whisper
    cfg = dryrun.recorded_config("facebook/wav2vec2-base")
    torch.manual_seed(0)
    w2v = Wav2Vec2ForPreTraining(Wav2Vec2Config.from_dict(cfg))
    n = dryrun.count_parameters(w2v.wav2vec2)
    assert 94e6 < n < 96e6
    assert w2v.config.layerdrop == 0.05 and w2v.config.mask_time_prob == 0.05  # what a real fine-tune inherits
    dims = dryrun.recorded_config("openai-whisper/small")["dims"]
    n = dryrun.count_parameters(Whisper(ModelDimensions(**dims)))
    assert 240e6 < n < 245e6 and dims["n_text_ctx"] == 448


@pytest.mark.slow  # builds both RoBERTa-size stand-ins (3.8 s)
def test_text_standins_keep_the_real_labels_and_map_them_as_the_real_models(tmp_path):
    from ser_helpers.text import TextClassifier
    texts = ["I am so happy today", "leave me alone", "这本书真的很不错", "我很难过"]
    want = {"cardiffnlp/twitter-roberta-base-sentiment-latest":
            {"negative": "negative", "neutral": "neutral", "positive": "positive"},
            "uer/roberta-base-finetuned-jd-binary-chinese":
            {"negative (stars 1, 2 and 3)": "negative", "positive (stars 4 and 5)": "positive"}}
    for model_id, mapping in want.items():
        info = dryrun.build_standin(model_id, tmp_path / model_id.replace("/", "__"), texts=texts)
        got = dryrun.loaded_architecture(info)
        assert {k: got.get(k) for k in dryrun.architecture_summary(model_id)} == dryrun.architecture_summary(model_id)
        clf = TextClassifier.load(info["path"], device="cpu")
        assert dict(zip(clf.raw_labels, clf.sentiment_map)) == mapping
        assert clf.is_sentiment
        P = clf.predict_proba(texts)
        assert P.shape == (4, len(mapping))
        assert len(clf.tokenizer) <= clf.model.config.vocab_size
        # a reuse with the same config is free; the info file says what was built
        assert dryrun.build_standin(model_id, tmp_path / model_id.replace("/", "__"))["path"] == info["path"]


def test_hub_id_without_network_fails_before_any_stage_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub, "_whisper_cached", lambda name: True)  # test the text models of stage 06 too
    for only, model_id, stage in ((["train_audio"], "facebook/wav2vec2-base", "train_audio"),
                                  (["fusion_features"], "cardiffnlp/twitter-roberta-base-sentiment-latest",
                                   "fusion_features")):
        with pytest.raises(SERError) as exc:
            run_pipeline(GPU, only=only, run_dir=tmp_path / "run", quiet=True)
        msg = str(exc.value)
        assert "\n" not in msg
        assert model_id in msg and repr(stage) in msg and "local model directory" in msg and "--dry-run" in msg
    assert not list((tmp_path / "run").glob("notebooks/*.ipynb"))  # nothing ran


def test_dry_run_plan_keeps_every_profile_parameter_but_the_downloads(tmp_path):
    prof = load_profile(GPU)
    standins = {i: {"path": f"/stand-ins/{i}"} for i in EXPECTED_IDS}
    stages, overrides = dryrun.dry_run_plan(prof, standins, dryrun.DEFAULTS)
    assert stages[0]["notebook"] == "00_make_demo_corpus" and stages[0]["parameters"]["corpus_size"] == "dryrun"
    changed = {(o["stage"], o["param"]) for o in overrides}
    by_name = {s["name"]: s for s in stages}
    for stage in prof.stages:
        for key, value in stage.parameters.items():
            if (stage.name, key) not in changed:
                assert by_name[stage.name]["parameters"][key] == value, (stage.name, key)
    p03, p06 = by_name["train_audio"]["parameters"], by_name["fusion_features"]["parameters"]
    assert p03["base_model"] == "/stand-ins/facebook/wav2vec2-base" and p03["max_steps"] == 2
    assert p03["max_duration_sec"] == 15.0 and p03["fp16"] is True and p03["device"] == "cuda"
    assert p06["whisper_model"] == "/stand-ins/openai-whisper/small" and p06["max_samples"] == 6
    assert by_name["select"]["parameters"]["select_on"] == "val"
    assert by_name["iemocap_manifest"]["parameters"]["raw_dir"] == ""
    assert all(o["why"] for o in overrides)


def test_whisper_sample_len_caps_the_decoded_tokens(tmp_path, monkeypatch, sine_clip):
    from ser_helpers import asr
    ckpt = asr.make_tiny_whisper_checkpoint(tmp_path / "tiny.pt", seed=0)
    tr = asr.WhisperTranscriber(str(ckpt), device="cpu")
    monkeypatch.delenv(dryrun.WHISPER_SAMPLE_LEN_ENV, raising=False)
    full = tr.transcribe(sine_clip, "en")
    monkeypatch.setenv(dryrun.WHISPER_SAMPLE_LEN_ENV, "2")
    short = tr.transcribe(sine_clip, "en")
    import whisper
    tok = whisper.tokenizer.get_tokenizer(True, language="en", task="transcribe")
    assert len(tok.encode(full)) > 2 >= len(tok.encode(" " + short.strip())) - 1
    assert len(short) < len(full)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("SER_DRYRUN"), reason="the full dry run takes 11 CPU min (30 min on a busy 2-core machine): "
                    "`make dryrun` (or SER_DRYRUN=1 pytest tests/test_dryrun.py)")
def test_full_dry_run_of_the_gpu_profile(tmp_path):
    payload = dryrun.run_dry_run(GPU, run_dir=ROOT / "outputs" / "_pytest_dryrun", quiet=True)
    assert all(c["ok"] for c in payload["checks"]), payload["checks"]
    stages = [r["stage"] for r in payload["stages"]]
    assert stages[0] == "corpus" and stages[1:] == [s.name for s in load_profile(GPU).stages]
    assert all(r["peak_rss_mib"] > 0 and r["wall_sec"] > 0 for r in payload["stages"])
    run = ROOT / "outputs" / "_pytest_dryrun"
    assert (run / "dryrun_stages.json").exists() and "| train_audio |" in (run / "dryrun_stages.md").read_text()


def test_lengthened_clips_cross_15_s_once(tmp_path):
    import numpy as np
    import soundfile as sf
    for session in ("Session1", "Session4", "Session5"):
        p = tmp_path / "iemocap_raw" / session / "sentences" / "wav" / "d" / "u.wav"
        p.parent.mkdir(parents=True)
        sf.write(p, (0.1 * np.sin(np.arange(32000) / 5)).astype(np.float32), 16000)
    done = dryrun.lengthen_clips(tmp_path, 16.5)
    assert len(done) == 3
    durs = [sf.info(tmp_path / d).duration for d in done]
    assert all(abs(d - 16.5) < 0.01 for d in durs)
    dryrun.lengthen_clips(tmp_path, 16.5)  # idempotent: a reused corpus is not lengthened again
    assert [sf.info(tmp_path / d).duration for d in done] == durs


def test_estimate_scales_the_work_and_keeps_the_fixed_cost():
    assert dryrun.estimate(30.0, 5.0, None) == (None, 30.0)  # fixed-size stage
    ratio, est = dryrun.estimate(30.0, 5.0, (10.0, 1000.0, "utterances"))
    assert ratio == 100.0 and est == 5.0 + 25.0 * 100
    payload = {"profile": "p.yaml", "device": "CPU only", "when": "now", "host_cpus": 2, "load_average": [1.0],
               "total_sec": 60.0, "overhead_sec": 5.0, "estimate_total_sec": 2505.0,
               "stages": [{"stage": "train_audio", "notebook": "03_train_wav2vec2", "wall_sec": 30.0, "cpu_sec": 50.0,
                           "peak_rss_mib": 4000.0, "work_dry": 10.0, "work_real": 1000.0, "unit": "utterances",
                           "estimate_sec": est}],
               "checks": [{"check": "c", "ok": True, "detail": "d"}],
               "overrides": [{"stage": "s", "param": "p", "real": 1, "dry_run": 2, "why": "w"}], "standins": {}}
    md = dryrun.stage_table_md(payload)
    assert "| train_audio | 03_train_wav2vec2 | 30 s | 50 s | 4000 |" in md and "PASS c" in md and "41.8 min" in md


def test_parameters_read_through_a_stage_config_count_as_used():
    """Notebooks 03, 04, 06, 07 and 08 hand their parameters to a stage config (TrainConfig, EvaluateConfig,
    BaselineConfig, FeaturesConfig, FusionConfig) in one call from globals(): the parameter check must see every
    field of that config as used, and nothing for an unknown name."""
    from ser_helpers.dryrun import _config_fields_read_from_globals
    assert {"device", "fusion_arch", "epochs"} <= _config_fields_read_from_globals(
        "config = ser.fusion.FusionConfig.from_params(globals())")
    assert {"learning_rate", "freeze_feature_encoder"} <= _config_fields_read_from_globals(
        "config = ser.acoustic.TrainConfig.from_params(globals(), base_model=str(base))")
    assert "device" in _config_fields_read_from_globals("ser.ablation.run(**FusionConfig.params_in(globals()))")
    assert {"whisper_model", "max_samples", "text_model_en"} <= _config_fields_read_from_globals(
        "config = ser.features.FeaturesConfig.from_params(globals(), audio_device=device)")
    assert {"n_bootstrap", "bootstrap_seed", "seed"} <= _config_fields_read_from_globals(
        "c = ser.evaluate.EvaluateConfig.from_params(globals())\nb = ser.baseline.BaselineConfig.from_params(globals())")
    assert _config_fields_read_from_globals("x = Other.from_params(globals())") == set()
    assert _config_fields_read_from_globals("print(device)") == set()
