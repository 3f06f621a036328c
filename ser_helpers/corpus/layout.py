"""Writing the text files of the real raw layouts: IEMOCAP EmoEvaluation/transcriptions, CASIA transcripts.csv.

Taught in notebook 00 (`00_make_demo_corpus.ipynb`); notebook 01 parses these same files.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np


# annotator vocabulary of the real EmoEvaluation files
ANNOTATOR_NAMES = {"neu": "Neutral", "hap": "Happiness", "exc": "Excited", "sad": "Sadness", "ang": "Anger",
                   "fru": "Frustration", "sur": "Surprise", "fea": "Fear", "oth": "Other"}
VAD = {"neu": (2.5, 2.5, 2.5), "hap": (3.5, 3.0, 3.0), "exc": (4.0, 3.5, 3.0), "sad": (2.0, 2.0, 2.0),
       "ang": (1.5, 4.0, 4.0), "fru": (2.0, 3.5, 3.5), "sur": (3.5, 4.0, 2.5), "xxx": (2.5, 3.0, 3.0)}
CATEGORICAL_NAMES = {"neu": "Neutral state", "hap": "Happiness", "exc": "Excited", "sad": "Sadness", "ang": "Anger",
                     "fru": "Frustration", "sur": "Surprise", "xxx": "Other"}
EMO_HEADER = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]"


def _annotator_lines(rng, code: str) -> list[str]:
    names = ANNOTATOR_NAMES
    lines = []
    for who in ("C-E1", "C-E2", "C-E4"):
        if code == "xxx":
            cat = names[list(names)[rng.integers(len(names))]]
        elif rng.random() < 0.8:
            cat = names[code]
        else:
            cat = names[["neu", "fru", "exc", "sad", "ang", "hap"][rng.integers(6)]]
        lines.append(f"{who}:\t{cat};\t()")
    v, a, d = VAD[code]
    for who in ("A-E1", "A-E2"):
        lines.append(f"{who}:\tval {int(np.clip(round(v + rng.normal(0, .6)), 1, 5))}; "
                     f"act {int(np.clip(round(a + rng.normal(0, .6)), 1, 5))}; "
                     f"dom  {int(np.clip(round(d + rng.normal(0, .6)), 1, 5))};\t()")
    return lines


def _write_iemocap_text(root: Path, en: list[dict], durations: dict, seed: int) -> None:
    rng = np.random.default_rng([seed, 11])
    by_dialog: dict[tuple, list[dict]] = {}
    for job in en:
        by_dialog.setdefault((job["session"], job["dialog"]), []).append(job)
    for (s, dialog), jobs in by_dialog.items():
        t = float(rng.uniform(1.0, 5.0))
        emo = [EMO_HEADER, ""]
        trans = []
        for job in jobs:
            start, end = t, t + durations[job["rel"]]
            t = end + float(rng.uniform(0.2, 2.5))
            v, a, d = (np.clip(x + rng.normal(0, 0.4), 1, 5) for x in VAD[job["code"]])
            v, a, d = (round(x * 2) / 2 for x in (v, a, d))
            emo.append(f"[{start:.4f} - {end:.4f}]\t{job['utt_id']}\t{job['code']}\t[{v:.4f}, {a:.4f}, {d:.4f}]")
            emo.extend(_annotator_lines(rng, job["code"]))
            emo.append("")
            trans.append(f"{job['utt_id']} [{start:08.4f}-{end:08.4f}]: {job['text']}")
        base = root / "iemocap_raw" / f"Session{s}" / "dialog"
        (base / "EmoEvaluation").mkdir(parents=True, exist_ok=True)
        (base / "transcriptions").mkdir(parents=True, exist_ok=True)
        (base / "EmoEvaluation" / f"{dialog}.txt").write_text("\n".join(emo) + "\n", encoding="utf-8")
        # like the real corpus: per-annotator sidecars in a subfolder that parsers must ignore
        (base / "EmoEvaluation" / "Categorical").mkdir(exist_ok=True)
        cat = [f"{job['utt_id']} :{CATEGORICAL_NAMES.get(job['code'], 'Other')}; ()" for job in jobs]
        (base / "EmoEvaluation" / "Categorical" / f"{dialog}_e1_cat.txt").write_text("\n".join(cat) + "\n",
                                                                                      encoding="utf-8")
        (base / "transcriptions" / f"{dialog}.txt").write_text("\n".join(trans) + "\n", encoding="utf-8")


def _write_casia_text(root: Path, zh: list[dict]) -> None:
    with open(root / "casia_raw" / "transcripts.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["file_id", "speaker", "emotion", "text"])
        for job in zh:
            w.writerow([job["file_id"], job["speaker"], job["emotion"], job["text"]])
