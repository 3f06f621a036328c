"""What the dry run changes, and nothing else: the derived profile and the lengthened clips.

Serves the dry run of `configs/gpu_iemocap.yaml` (notebooks 00-10): `dry_run_plan` keeps every profile parameter
but the downloads (hub ids become stand-in paths, the raw data the generated corpus of notebook 00), a few
optimisation steps in notebook 03 and a few rows per split in notebook 06, each override listed with its reason;
`lengthen_clips` makes one clip per IEMOCAP split longer than 15 s, so `max_duration_sec: 15` crops for real.
The settings (`DEFAULTS`) are the keyword arguments of `run_dry_run` and the flags of `python -m ser_helpers.dryrun`.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..common import SERError
from ..hub import model_refs

WHISPER_SAMPLE_LEN_ENV = "SER_WHISPER_SAMPLE_LEN"

#: dry-run settings (keyword arguments of run_dry_run)
DEFAULTS = {"max_steps": 2, "max_samples": 6, "whisper_sample_len": 24, "corpus_size": "dryrun",
            "long_clip_sec": 16.5}


def dry_run_plan(profile, standins: dict, settings: dict) -> tuple[list[dict], list[dict]]:
    """(stages, overrides): the profile's stages with the dry-run overrides applied, a corpus stage first when the
    profile has none; overrides = [{stage, param, real, dry_run, why}]."""
    stages, overrides = [], []

    def override(stage, params, key, value, why):
        overrides.append({"stage": stage.name, "param": key, "real": params.get(key, "(notebook default)"),
                          "dry_run": value, "why": why})
        params[key] = value

    if not any(s.notebook.startswith("00") for s in profile.stages):
        stages.append({"notebook": "00_make_demo_corpus", "name": "corpus",
                       "parameters": {"corpus_size": settings["corpus_size"], "seed": 0}})
        overrides.append({"stage": "corpus", "param": "(stage added)", "real": "(none: real data)",
                          "dry_run": f"corpus_size={settings['corpus_size']}",
                          "why": "generated corpus in the raw IEMOCAP and CASIA layouts instead of the real data"})
    for stage in profile.stages:
        params = dict(stage.parameters)
        nb = stage.notebook
        for key in ("raw_dir", "casia_dir"):
            if params.get(key):
                override(stage, params, key, "", "the generated corpus ({run_dir}/corpus) instead of " + str(params[key]))
        for ref in model_refs(type(profile)(profile.run_name, {}, [stage])):
            override(stage, params, ref["param"], standins[ref["id"]]["path"],
                     f"random-init stand-in with the architecture of {ref['id']} (configs/hub_configs)")
        if nb.startswith("03"):
            override(stage, params, "max_steps", settings["max_steps"],
                     "a few optimisation steps (each one batch_size x gradient_accumulation clips)")
        if nb.startswith("06"):
            if settings["max_samples"]:  # each row costs a Whisper-small 30 s window
                override(stage, params, "max_samples", settings["max_samples"],
                         "rows per split (18 Whisper-small 30 s windows instead of 33; with seed 42 every split "
                         "keeps all four labels)")
            overrides.append({"stage": stage.name, "param": f"(env) {WHISPER_SAMPLE_LEN_ENV}", "real": "(unset: 224)",
                              "dry_run": settings["whisper_sample_len"],
                              "why": "Whisper tokens per 30 s window: a random-init decoder never stops early"})
            override(stage, params, "audio_model_kind", "wav2vec2",
                     "the real run's pretrained wav2vec2 wins `auto` on val; a 2-step random-init one would not")
        stages.append({"notebook": nb, "name": stage.name, "parameters": params})
    return stages, overrides


def lengthen_clips(corpus_dir: Path, seconds: float) -> list[str]:
    """Tile the first 4-class IEMOCAP clip of Sessions 1, 4 and 5 (train, val, test) to `seconds` (idempotent)."""
    import numpy as np
    import soundfile as sf

    from ..synth import read_corpus_table
    labelled = any((corpus_dir / "iemocap_raw").glob("Session*/dialog/EmoEvaluation/*.txt"))
    table = read_corpus_table(corpus_dir) if labelled else None
    kept = table[(table["language"] == "en") & table["label4"].notna()] if table is not None else None
    done = []
    for session in ("Session1", "Session4", "Session5"):
        wavs = sorted(kept[kept["group"] == session]["path"]) if kept is not None else []
        if not wavs:  # a corpus without EmoEvaluation labels: any clip of the session
            wavs = sorted((corpus_dir / "iemocap_raw" / session / "sentences" / "wav").glob("*/*.wav"))
        if not wavs:
            raise SERError(f"{corpus_dir}: no IEMOCAP-layout clips in {session}")
        path = Path(wavs[0])
        wave, sr = sf.read(path, dtype="float32")
        if len(wave) < seconds * sr:
            gap = np.zeros(int(0.3 * sr), dtype=np.float32)
            reps = int(np.ceil(seconds * sr / (len(wave) + len(gap))))
            long = np.concatenate([np.concatenate([wave, gap])] * reps)[: int(seconds * sr)]
            tmp = path.with_suffix(".tmp.wav")
            sf.write(tmp, long, sr)
            os.replace(tmp, path)
        done.append(str(path.relative_to(corpus_dir)))
    return done
