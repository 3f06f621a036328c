"""Reading the corpus back and showing it: the clip table, count tables, examples, pitch plots.

Taught in notebook 00 (`00_make_demo_corpus.ipynb`).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ..common import SAMPLE_RATE
from .settings import CASIA_CODE, PROSODY, SPLIT_GROUPS


EMO_LINE = re.compile(r"^\[(\d+\.\d+) - (\d+\.\d+)\]\t(\S+)\t(\w+)\t\[(\d+\.\d+), (\d+\.\d+), (\d+\.\d+)\]\s*$")
TRANS_LINE = re.compile(r"^(\S+) \[(\d+\.\d+)-(\d+\.\d+)\]: (.*)$")


def read_corpus_table(output_dir: str | os.PathLike):
    """Every clip of a generated (or real-layout) corpus as a DataFrame: path, language, code, label4,
    speaker, group (session or CASIA speaker), dialog_type, text. Used by the separability check and tests."""
    import pandas as pd
    root = Path(output_dir)
    rows = []
    for emo_file in sorted((root / "iemocap_raw").glob("Session*/dialog/EmoEvaluation/*.txt")):
        session = emo_file.parts[-4]
        texts = {}
        tfile = emo_file.parent.parent / "transcriptions" / emo_file.name
        if tfile.exists():
            for line in tfile.read_text(encoding="utf-8").splitlines():
                m = TRANS_LINE.match(line)
                if m:
                    texts[m.group(1)] = m.group(4)
        for line in emo_file.read_text(encoding="utf-8").splitlines():
            m = EMO_LINE.match(line)
            if not m:
                continue
            utt, code = m.group(3), m.group(4)
            dialog = utt.rsplit("_", 1)[0]
            rows.append({"path": str(emo_file.parents[2] / "sentences" / "wav" / dialog / f"{utt}.wav"),
                         "language": "en", "code": code, "speaker": f"{session}_{utt.rsplit('_', 1)[1][0]}",
                         "group": session, "dialog_type": "impro" if "_impro" in utt else "script",
                         "text": texts.get(utt, ""), "utt_id": utt})
    tpath = root / "casia_raw" / "transcripts.csv"
    if tpath.exists():
        tdf = pd.read_csv(tpath, dtype=str, keep_default_na=False)
        for r in tdf.itertuples():
            rows.append({"path": str(root / "casia_raw" / r.speaker / r.emotion / f"{r.file_id}.wav"),
                         "language": "zh", "code": CASIA_CODE.get(r.emotion, r.emotion), "speaker": r.speaker,
                         "group": r.speaker, "dialog_type": "", "text": r.text, "utt_id": r.file_id})
    df = pd.DataFrame(rows)
    four = {"ang": "ang", "hap": "hap", "exc": "hap", "neu": "neu", "sad": "sad"}
    df["label4"] = df["code"].map(four)
    return df


def count_tables(output_dir: str | os.PathLike) -> dict:
    """Counts of the corpus as DataFrames: IEMOCAP session x code, dialog types, CASIA speaker x emotion."""
    import pandas as pd
    table = read_corpus_table(output_dir)
    en = table[table["language"] == "en"]
    casia = pd.read_csv(Path(output_dir) / "casia_raw" / "transcripts.csv", dtype=str)
    out = {
        "iemocap_session_code": pd.crosstab(en["group"], en["code"], margins=True, margins_name="total"),
        "iemocap_speaker_code": pd.crosstab(en["speaker"], en["code"]),
        "iemocap_dialog_type": pd.crosstab(en["group"], en["dialog_type"], margins=True, margins_name="total"),
        "casia_speaker_emotion": pd.crosstab(casia["speaker"], casia["emotion"], margins=True, margins_name="total"),
        "four_class_by_split": pd.crosstab([table["group"].map({g: s for s, gs in SPLIT_GROUPS.items() for g in gs}),
                                            table["language"]], table["label4"]),
    }
    return out


def prosody_table():
    """The emotion prosody settings (relative to each speaker's baseline) as a DataFrame."""
    import pandas as pd
    from ..common import display_name
    rows = [{"code": c, "emotion": display_name(c), "pitch offset": p, "rate factor": r, "loudness dB": db,
             "pitch-range offset": rg} for c, (p, r, db, rg) in PROSODY.items()]
    return pd.DataFrame(rows).set_index("code")


def example_clips(output_dir: str | os.PathLike, per_label: int = 1, seed: int = 0):
    """A few 4-class clips per language and label (path, language, label4, code, speaker, text)."""
    table = read_corpus_table(output_dir)
    table = table[table["label4"].notna()]
    parts = [g.sample(min(per_label, len(g)), random_state=seed) for _, g in table.groupby(["language", "label4"])]
    import pandas as pd
    return pd.concat(parts).reset_index(drop=True)[["language", "label4", "code", "speaker", "text", "path"]]


def show_audio_examples(examples) -> None:
    """Display an audio player with its label and transcript for every row of `example_clips`."""
    from IPython.display import Audio, Markdown, display

    from ..common import display_name
    for r in examples.itertuples():
        display(Markdown(f"**{r.language} · {display_name(r.label4)}** ({r.code}, {r.speaker}): {r.text}"))
        display(Audio(filename=r.path, rate=SAMPLE_RATE))


def _pitch_track(y: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """f0 (librosa.yin, 10 ms hop) and a voicing mask (frames within 30 dB of the loudest, with plausible f0)."""
    import librosa
    f0 = librosa.yin(y, fmin=60, fmax=500, sr=sample_rate, frame_length=1024, hop_length=160)
    rms = librosa.feature.rms(y=y, frame_length=1024, hop_length=160)[0][: f0.size]
    db = 20 * np.log10(rms + 1e-5)
    voiced = (db > db.max() - 30) & (f0 > 65) & (f0 < 480)
    return f0, voiced


def plot_emotion_examples(examples, path=None, language: str = "en"):
    """Waveform and pitch track (librosa.pyin) of one clip per emotion; PNG at `path`."""
    import librosa
    import matplotlib.pyplot as plt
    import soundfile as sf

    from ..common import LABELS, display_name
    from ..plots import save_figure
    rows = examples[examples["language"] == language].drop_duplicates("label4").set_index("label4")
    fig, axes = plt.subplots(2, len(LABELS), figsize=(3.2 * len(LABELS), 4.4), sharey="row")
    for i, lab in enumerate(LABELS):
        ax_w, ax_p = axes[0, i], axes[1, i]
        ax_w.set_title(display_name(lab))
        if lab not in rows.index:
            continue
        y, sr = sf.read(rows.loc[lab, "path"], dtype="float32")
        t = np.arange(y.size) / sr
        ax_w.plot(t, y, lw=0.4, color="tab:blue")
        f0, voiced = _pitch_track(y, sr)
        tf = librosa.times_like(f0, sr=sr, hop_length=160)
        ax_p.plot(tf, np.where(voiced, f0, np.nan), ".", ms=2, color="tab:red")
        ax_p.set_xlabel("time (s)")
    axes[0, 0].set_ylabel("amplitude")
    axes[1, 0].set_ylabel("pitch (Hz)")
    fig.suptitle(f"One {language} clip per emotion: waveform and pitch")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_prosody_by_emotion(output_dir: str | os.PathLike, path=None, per_label: int = 10, seed: int = 0):
    """Pitch variability against loudness for a sample of 4-class clips: arousal separates, valence much less."""
    import matplotlib.pyplot as plt
    import pandas as pd
    import soundfile as sf

    from ..common import LABELS, display_name
    from ..plots import save_figure
    table = read_corpus_table(output_dir)
    table = table[table["label4"].notna()]
    sample = pd.concat([g.sample(min(per_label, len(g)), random_state=seed)
                        for _, g in table.groupby(["language", "label4"])])
    points = []
    for p in sample["path"]:
        y, sr = sf.read(p, dtype="float32")
        f0, voiced = _pitch_track(y, sr)
        st = 12 * np.log2(f0[voiced] / 100.0) if voiced.any() else np.zeros(1)
        rms = np.sqrt(np.mean(y ** 2))
        points.append((st.std(), 20 * np.log10(rms + 1e-5)))
    points = np.array(points)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, lang in zip(axes, ("en", "zh")):
        for lab in LABELS:
            m = ((sample["language"] == lang) & (sample["label4"] == lab)).to_numpy()
            ax.scatter(points[m, 0], points[m, 1], s=18, label=display_name(lab))
        ax.set_title(f"{lang}: pitch variability vs loudness per clip")
        ax.set_xlabel("pitch standard deviation (semitones)")
    axes[0].set_ylabel("RMS level (dB)")
    axes[1].legend()
    fig.tight_layout()
    return save_figure(fig, path)
