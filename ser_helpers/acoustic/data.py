"""Training data: manifests with source weights/languages, seeded random crops
(ClipDataset), length-grouped epoch batches (EpochBatchSampler) and their collate function.

Taught in notebook 03 (03_train_wav2vec2.ipynb).
"""
from __future__ import annotations

import math
import os
from typing import Sequence

import numpy as np

from ser_helpers.common import SERError, read_manifest
from ser_helpers.inference import MIN_SAMPLES, normalize_clip

def parse_key_values(text: str, what: str, cast=str) -> dict:
    """'a=1,b=2' -> {'a': cast('1'), ...}; clear error on a malformed item."""
    out = {}
    for item in [t.strip() for t in (text or "").split(",") if t.strip()]:
        if "=" not in item:
            raise SERError(f"{what}: item {item!r} is not KEY=VALUE (e.g. esd_4class=2.5)")
        key, value = (s.strip() for s in item.split("=", 1))
        try:
            out[key] = cast(value)
        except ValueError as exc:
            raise SERError(f"{what}: value {value!r} of {key!r} is not a number") from exc
    return out


def load_split(manifest: str | os.PathLike, labels: Sequence[str], source_weight_map: dict,
               source_language_map: dict, name: str):
    """Read a manifest; fill `language` from the source map and a `sample_weight` column from the weight map."""
    df = read_manifest(manifest, labels=labels)
    if source_weight_map or source_language_map:
        if "source_dataset" not in df.columns:
            raise SERError(f"{manifest}: --source-weight-map/--source-language-map need a 'source_dataset' column")
    if source_language_map:
        lang = df["language"].astype(object) if "language" in df.columns else None
        mapped = df["source_dataset"].map(source_language_map)
        df["language"] = mapped.where(mapped.notna(), lang) if lang is not None else mapped
    df["sample_weight"] = (df["source_dataset"].map(source_weight_map).fillna(1.0).astype(float)
                           if source_weight_map else 1.0)
    df.attrs["name"] = name
    return df


class ClipDataset:
    """Items are (index, epoch) pairs; training clips are randomly cropped to `max_samples` with an RNG seeded
    by (seed, epoch, index), evaluation clips are cut at `max_samples` from the start."""

    def __init__(self, df, label2id: dict, sample_rate: int, max_samples: int | None, train: bool, seed: int,
                 do_normalize: bool = True):
        self.paths = list(df["path"])
        self.labels = np.array([label2id[v] for v in df["label"]], dtype=np.int64)
        self.weights = np.asarray(df["sample_weight"], dtype=np.float32)
        self.durations = np.asarray(df["duration_sec"], dtype=np.float64)
        self.sample_rate, self.max_samples, self.train, self.seed = sample_rate, max_samples, train, seed
        self.do_normalize = do_normalize

    def __len__(self) -> int:
        return len(self.paths)

    def lengths(self) -> np.ndarray:
        n = np.round(self.durations * self.sample_rate)
        return np.minimum(n, self.max_samples) if self.max_samples else n

    def __getitem__(self, item):
        import torch

        from ..audio import load_audio
        index, epoch = item if isinstance(item, tuple) else (int(item), 0)
        wave = load_audio(self.paths[index], sample_rate=self.sample_rate, max_duration_sec=None)
        if self.max_samples and len(wave) > self.max_samples:
            start = 0
            if self.train:
                rng = np.random.default_rng([self.seed, epoch, index])
                start = int(rng.integers(0, len(wave) - self.max_samples + 1))
            wave = wave[start:start + self.max_samples]
        clip = normalize_clip(torch.from_numpy(np.ascontiguousarray(wave)), self.do_normalize)
        if clip.numel() < MIN_SAMPLES:
            clip = torch.nn.functional.pad(clip, (0, MIN_SAMPLES - clip.numel()))
        return {"clip": clip, "label": int(self.labels[index]), "weight": float(self.weights[index]),
                "index": index}


def collate_clips(items: list[dict]) -> dict:
    import torch
    return {"clips": [it["clip"] for it in items],
            "labels": torch.tensor([it["label"] for it in items], dtype=torch.long),
            "weights": torch.tensor([it["weight"] for it in items], dtype=torch.float32),
            "indices": torch.tensor([it["index"] for it in items], dtype=torch.long)}


class EpochBatchSampler:
    """Batches of (index, epoch) pairs. Shuffled with seed + epoch; with `length_grouped`, each mega-batch of
    50 batches is sorted by length before it is cut into batches (little padding), and batch order is shuffled.
    The number of batches is ceil(n / batch_size) every epoch."""

    def __init__(self, lengths: np.ndarray, batch_size: int, seed: int, shuffle: bool, length_grouped: bool,
                 mega: int = 50):
        self.lengths = np.asarray(lengths)
        self.batch_size, self.seed, self.shuffle, self.length_grouped = batch_size, seed, shuffle, length_grouped
        self.mega = mega * batch_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)

    def batches(self) -> list[list[int]]:
        n = len(self.lengths)
        if not self.shuffle:
            order = np.argsort(self.lengths, kind="stable") if self.length_grouped else np.arange(n)
            return [order[i:i + self.batch_size].tolist() for i in range(0, n, self.batch_size)]
        rng = np.random.default_rng([self.seed, self.epoch, 7])
        order = rng.permutation(n)
        batches = []
        for start in range(0, n, self.mega):
            chunk = order[start:start + self.mega]
            if self.length_grouped:
                chunk = chunk[np.argsort(-self.lengths[chunk], kind="stable")]
            batches += [chunk[i:i + self.batch_size].tolist() for i in range(0, len(chunk), self.batch_size)]
        if self.length_grouped:
            perm = rng.permutation(len(batches))
            batches = [batches[i] for i in perm]
        return batches

    def __iter__(self):
        for batch in self.batches():
            yield [(int(i), self.epoch) for i in batch]
