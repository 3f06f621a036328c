"""Synthetic stage-06 feature CSVs for the fusion tests (and the service, predictor, ablation and demo tests).

Moved out of ser_helpers/fusion (issue 13): test-only data generators live with the tests. The library code they
exercise is taught in notebook 07 (07_train_late_fusion.ipynb).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from ser_helpers.common import LABELS
from ser_helpers.fusion import DEFAULT_FEATURE_COLUMNS
from ser_helpers.metrics import entropy, softmax


def make_synthetic_features(output_dir, n_per_speaker: int = 40, seed: int = 0, train_overconfidence: float = 3.0,
                            labels: Sequence[str] = LABELS) -> dict:
    """Write `{train,val,test}_features.csv` + `summary.json` with the stage-06 columns, made up.

    Audio probabilities separate arousal (ang/hap vs neu/sad), text probabilities valence (ang/sad vs hap/neu),
    so fusion beats either alone. Train rows' audio probabilities are sharpened by `train_overconfidence`
    (as an audio model's in-sample predictions are). Speakers: train 6 en + 2 zh, val 2 en + 1 zh, test 2 en + 1 zh.
    """
    import pandas as pd
    rng = np.random.default_rng(seed)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    arousal = {"ang": 1, "hap": 1, "neu": 0, "sad": 0}
    valence = {"ang": 0, "sad": 0, "hap": 1, "neu": 1}
    speakers = {"train": [("en", 6), ("zh", 2)], "val": [("en", 2), ("zh", 1)], "test": [("en", 2), ("zh", 1)]}
    paths = {}
    counts = {}
    for split, spk in speakers.items():
        rows = []
        for lang, n_spk in spk:
            for s in range(n_spk):
                speaker = f"{split}_{lang}_spk{s}"
                for i in range(n_per_speaker):
                    lab = labels[int(rng.integers(len(labels)))]
                    za = np.array([2.2 * (arousal[l] == arousal[lab]) + 0.5 * (l == lab) for l in labels])
                    za = za + rng.normal(0, 1.0, len(labels)) + rng.normal(0, 0.3)
                    if split == "train":
                        za = za * train_overconfidence + 2.0 * np.array([l == lab for l in labels])
                    pa = softmax(za[None])[0]
                    zt = np.array([2.0 * (valence[l] == valence[lab]) + 0.4 * (l == lab) for l in labels])
                    zt = zt + rng.normal(0, 1.1, len(labels))
                    pt = softmax(zt[None])[0]
                    neg = pt[labels.index("ang")] + pt[labels.index("sad")]
                    sent = np.array([neg * 0.8, 0.2, (1 - neg) * 0.8]); sent /= sent.sum()
                    text = f"utterance {i} of {speaker}"
                    rows.append({
                        "path": f"/data/{split}/{speaker}/{i}.wav", "label": lab, "label_id": labels.index(lab),
                        "language": lang, "transcript": text,
                        **{f"audio_prob_{l}": pa[j] for j, l in enumerate(labels)},
                        "audio_confidence": pa.max(), "audio_entropy": float(entropy(pa[None])[0]),
                        "text_negative": sent[0], "text_neutral": sent[1], "text_positive": sent[2],
                        "text_negative_score": sent[0] - sent[2],
                        "text_top_label_raw": ["negative", "neutral", "positive"][int(sent.argmax())],
                        "text_top_conf_raw": sent.max(), "text_length": len(text),
                        "text_length_norm": min(1.0, len(text) / 256),
                        **{f"text4_prob_{l}": pt[j] for j, l in enumerate(labels)},
                        "text4_confidence": pt.max(), "text4_entropy": float(entropy(pt[None])[0]),
                        "text4_ready": 1.0, "lang_is_zh": float(lang == "zh"),
                        "speaker": speaker, "dialog_type": "impro" if lang == "en" else "",
                        "source_dataset": "iemocap_4class" if lang == "en" else "casia_4class"})
        df = pd.DataFrame(rows)
        paths[split] = out / f"{split}_features.csv"
        df.to_csv(paths[split], index=False)
        counts[split] = df["language"].value_counts().sort_index().to_dict()
    head = out / "text4_head"
    head.mkdir(exist_ok=True)
    (head / "head.json").write_text(json.dumps({"labels": list(labels), "kind": "synthetic"}))
    conf = {s: float(pd.read_csv(paths[s])["audio_confidence"].mean()) for s in ("train", "val")}
    summary = {"rows": counts, "feature_columns": {m: list(c) for m, c in DEFAULT_FEATURE_COLUMNS.items()},
               "components": {"audio_models": {"en": str(out / "audio_en"), "zh": str(out / "audio_zh")},
                              "default_language": "en",
                              "asr": {"backend": "reference", "model": "oracle", "oracle": True},
                              "text_models": {"en": None, "zh": None}, "text4_head": str(head.resolve())},
               "audio_confidence": {"train_mean": conf["train"], "val_mean": conf["val"]}, "synthetic": True}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return {**{s: p for s, p in paths.items()}, "summary": out / "summary.json"}
