"""What notebook 06 shows of the features: where the transcripts come from, the real-ASR evaluation, a few
transcripts with each modality's guess, the raw per-modality scores and the feature correlation heatmap.

Taught in notebook 06 (06_build_fusion_features.ipynb).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..common import LABELS, display_name


def describe_asr(summary: dict) -> str:
    """One plain sentence on where the transcripts come from (ORACLE when backend=reference)."""
    asr = summary["components"]["asr"]
    if asr["backend"] == "reference":
        live = asr.get("inference") or {}
        return ("Transcripts are ORACLE: the corpus's own reference transcripts (manifest column `transcript`), "
                "not speech recognition. Text scores here are an upper bound of what ASR text would give."
                + (f" New audio (demo, service) is recognised with Whisper `{live.get('model')}` for "
                   f"{', '.join(live.get('languages') or [])}; Mandarin keeps reference transcripts."
                   if live else ""))
    if asr["backend"] == "none":
        return "ASR was skipped: every transcript is empty, so text features are uninformative (text4_ready = 0)."
    c = summary.get("asr_cache", {})
    only = asr.get("languages")
    return (f"Transcripts are recognised by Whisper ({asr['model']}, {asr.get('engine') or 'whisper'}, "
            f"{asr.get('device', 'cpu')}); cache hits {c.get('hits', 0)}, misses {c.get('misses', 0)}."
            + (f" Only {', '.join(only)} is recognised: Mandarin rows keep their reference (ORACLE) transcripts."
               if only else ""))


def describe_asr_eval(info: dict | None) -> str:
    """One paragraph on the real-ASR evaluation of notebook 06 (WER, time)."""
    if not info:
        return "Real ASR evaluation skipped (asr_eval_model = \"\"): the text branch is only ever seen with ORACLE text."
    if info.get("skipped"):
        return f"Real ASR evaluation skipped: {info['skipped']}."
    asr = info.get("asr") or {}
    parts = []
    for split, m in (info.get("splits") or {}).items():
        per = m.get("asr_sec_per_recognised_clip")
        parts.append(f"{split}: {m['rows']} English rows, WER {m['wer']:.3f} ({m['errors']} errors / {m['ref_words']} "
                     f"words; {m['exact']} rows exact), {m['recognised']} recognised in {m['asr_sec']:.1f} s"
                     + (f" ({per:.2f} s per clip)" if per else "") + f", {m['cache_hits']} from the cache")
    return (f"Recognised with {asr.get('engine')} `{asr.get('model')}` ({asr.get('compute_type')}, "
            f"{asr.get('cpu_threads')} threads): " + "; ".join(parts) + f". Overall WER {info.get('wer', float('nan')):.3f}.")


def asr_eval_table(info: dict | None):
    """Per split: rows, WER, time, and the text4 head's macro-F1 on reference vs recognised transcripts."""
    import pandas as pd
    rows = []
    for split, m in ((info or {}).get("splits") or {}).items():
        rows.append({"split": split, "rows": m["rows"], "WER": round(m["wer"], 4),
                     "WER (digits kept)": round(m["wer_numbers_as_written"], 4),
                     "asr_sec": m["asr_sec"], "sec_per_clip": m.get("asr_sec_per_recognised_clip"),
                     "text4 macro-F1 (reference)": round((m.get("text4_reference") or {}).get("macro_f1", float("nan")), 4),
                     "text4 macro-F1 (recognised)": round((m.get("text4_recognised") or {}).get("macro_f1", float("nan")), 4)})
    return pd.DataFrame(rows)


def recognised_examples(features_dir: str | Path, n: int = 8, seed: int = 0, split: str = "test"):
    """A few rows of `{split}_features_asr.csv`: label, reference and recognised transcript (None when absent)."""
    import pandas as pd
    path = Path(features_dir) / f"{split}_features_asr.csv"
    if not path.exists():
        return None
    df = pd.read_csv(path, keep_default_na=False)
    k = min(n, len(df))
    sample = df.sample(n=k, random_state=seed) if k else df
    return sample[["label", "reference_transcript", "transcript"]].rename(
        columns={"reference_transcript": "reference", "transcript": "recognised"}).reset_index(drop=True)


def transcript_table(df, n: int = 12, seed: int = 0):
    """A few rows: language, label, transcript and the argmax of each modality."""
    k = min(n, len(df))
    sample = df.sample(n=k, random_state=seed) if k else df
    out = sample[["language", "label", "transcript"]].copy()
    out["label"] = [display_name(x) for x in out["label"]]
    for name, prefix in (("audio_pred", "audio_prob_"), ("text4_pred", "text4_prob_")):
        P = sample[[f"{prefix}{c}" for c in LABELS]].to_numpy(dtype=float)
        out[name] = [display_name(LABELS[i]) for i in P.argmax(axis=1)] if len(P) else []
    return out.reset_index(drop=True)


def modality_table(summary: dict):
    """Accuracy and macro-F1 of the raw features (argmax of audio_prob_*, of text4_prob_*) per split."""
    import pandas as pd
    rows = []
    for split, mods in summary.get("raw_metrics", {}).items():
        for mod, m in mods.items():
            rows.append({"split": split, "modality": mod, "n": m["n"], "accuracy": round(m["accuracy"], 4),
                         "macro_f1": round(m["macro_f1"], 4), "ua": round(m["ua"], 4)})
    return pd.DataFrame(rows)


def correlation_plot(df, columns: Sequence[str], path=None, title: str = "Feature correlation (train)"):
    """Pearson correlation heatmap of the feature columns (+ one-hot labels); PNG at `path`."""
    import matplotlib.pyplot as plt

    from ..plots import save_figure
    data = df[list(columns)].astype(float).copy()
    for c in LABELS:
        data[f"is_{c}"] = (df["label"] == c).astype(float)
    data = data.loc[:, data.std() > 0]
    corr = data.corr().to_numpy()
    names = list(data.columns)
    fig, ax = plt.subplots(figsize=(0.38 * len(names) + 2, 0.38 * len(names) + 1.5))
    im = ax.imshow(corr, cmap="coolwarm", vmin=-1, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_title(title)
    fig.colorbar(im, ax=ax, shrink=0.7)
    fig.tight_layout()
    return save_figure(fig, path)

