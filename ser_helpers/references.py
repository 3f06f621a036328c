"""Published reference results (../shared/REFERENCE_RESULTS.md), kept once, with their protocols.

Values are as published: percent for the papers' WA, UA and macro-F1; fractions for the user's earlier
backend (as REFERENCE_RESULTS.md gives them). `other` holds results that are not one of
those three (e.g. an ECE before/after). Notebooks, the evaluation stage, the ablation and the report all
read this table; protocols differ, so they are context, never a like-for-like comparison.
"""
from __future__ import annotations

PUBLISHED: list[dict] = [
    {"dataset": "IEMOCAP 4-class", "system": "wav2vec 2.0 Base, frozen + light head",
     "protocol": "SUPERB ER, 5-fold leave-one-session-out", "WA": 63.43, "source": "emotion2vec paper, Table 2"},
    {"dataset": "IEMOCAP 4-class", "system": "WavLM Large, frozen + light head",
     "protocol": "SUPERB ER, 5-fold leave-one-session-out", "WA": 70.03, "source": "emotion2vec paper, Table 2"},
    {"dataset": "IEMOCAP 4-class", "system": "emotion2vec", "protocol": "SUPERB ER, 5-fold leave-one-session-out",
     "WA": 71.79, "source": "emotion2vec paper, Table 2"},
    {"dataset": "IEMOCAP 4-class", "system": "wav2vec2 base, frozen", "protocol": "EmoBox, 5-fold LOSO",
     "WA": 57.73, "UA": 58.27, "macro-F1": 57.83, "source": "EmoBox"},
    {"dataset": "IEMOCAP 4-class", "system": "Whisper large v3, frozen", "protocol": "EmoBox, 5-fold LOSO",
     "WA": 72.86, "UA": 73.54, "macro-F1": 73.11, "source": "EmoBox"},
    {"dataset": "IEMOCAP 4-class", "system": "wav2vec2 fine-tuned", "protocol": "speaker-independent",
     "WA": 73.01, "source": "Wang, Boumadane, Heba, arXiv 2111.02735"},
    {"dataset": "IEMOCAP 4-class", "system": "wav2vec2 fine-tuned", "protocol": "speaker-dependent (optimistic)",
     "WA": 79.58, "source": "Wang, Boumadane, Heba, arXiv 2111.02735"},
    {"dataset": "IEMOCAP 4-class", "system": "wav2vec2 + BERT, auxiliary tasks (audio + text)", "protocol": "as published",
     "WA": 78.42, "UA": 79.71, "source": "Sun et al., ICASSP 2023"},
    {"dataset": "IEMOCAP 4-class", "system": "user's earlier backend: audio only", "protocol": "train S1-3 / val S4 / test S5",
     "macro-F1": 0.622, "source": "user's backend (REFERENCE_RESULTS.md)"},
    {"dataset": "IEMOCAP 4-class", "system": "user's earlier backend: text only (sentiment models)",
     "protocol": "train S1-3 / val S4 / test S5", "macro-F1": 0.350, "source": "user's backend (REFERENCE_RESULTS.md)"},
    {"dataset": "IEMOCAP 4-class", "system": "user's earlier backend: fusion", "protocol": "train S1-3 / val S4 / test S5",
     "macro-F1": 0.632, "source": "user's backend (REFERENCE_RESULTS.md)"},
    {"dataset": "IEMOCAP 4-class", "system": "user's earlier backend: temperature scaling (T ≈ 2.05)",
     "protocol": "train S1-3 / val S4 / test S5", "other": ("test ECE before → after", "0.206 → 0.025"),
     "source": "user's backend (REFERENCE_RESULTS.md)"},
    {"dataset": "CASIA (Mandarin)", "system": "wav2vec2 base, frozen", "protocol": "EmoBox", "UA": 39.56,
     "source": "EmoBox"},
    {"dataset": "CASIA (Mandarin)", "system": "Whisper large v3, frozen", "protocol": "EmoBox", "UA": 59.58,
     "source": "EmoBox"},
]

#: the user's earlier backend per ablation mode (fractions, like our macro-F1), from PUBLISHED
EARLIER_BACKEND_MACRO_F1 = {
    mode: next(r["macro-F1"] for r in PUBLISHED if r["system"] == f"user's earlier backend: {name}")
    for mode, name in (("audio_only", "audio only"), ("text_only", "text only (sentiment models)"),
                       ("fusion", "fusion"))
}


def metric_rows() -> list[dict]:
    """PUBLISHED as rows with `WA`, `UA`, `macro-F1` columns (None where not published)."""
    return [{"system": r["system"], "dataset": r["dataset"], "protocol": r["protocol"], "WA": r.get("WA"),
             "UA": r.get("UA"), "macro-F1": r.get("macro-F1"), "source": r["source"]}
            for r in PUBLISHED if "other" not in r]


def text_rows() -> list[dict]:
    """PUBLISHED as rows with one `metric` name and one `value` string (for Markdown tables)."""
    rows = []
    for r in PUBLISHED:
        if "other" in r:
            metric, value = r["other"]
        else:
            names = [m for m in ("UA", "WA", "macro-F1") if r.get(m) is not None]
            metric = " / ".join(names)
            value = " / ".join(f"{r[m]:.3f}" if r[m] < 1 else f"{r[m]:g}" for m in names)
        rows.append({"dataset": r["dataset"], "system": r["system"], "protocol": r["protocol"],
                     "metric": metric, "value": value, "source": r["source"]})
    return rows
