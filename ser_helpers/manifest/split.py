"""Speaker-independent splitting: whole speakers to train/val/test near the ratios, stratified by label.

Taught in notebook 01 (`01_iemocap_manifest.ipynb`, sessions as speaker groups) and notebook 02
(`02_folder_manifest.ipynb`, speaker split of flat label folders against the stratified random split).
"""
from __future__ import annotations

import random
from collections import Counter, defaultdict

import numpy as np

from ..common import SERError
from .base import SPLITS


def speaker_split(speaker_labels: dict[str, Counter], ratios=(0.8, 0.1, 0.1), seed: int = 42,
                  tries: int = 400) -> dict[str, str]:
    """Assign whole speakers to train/val/test, near the ratios and stratified by label.

    `speaker_labels` maps speaker -> Counter(label -> n). Each split gets at least one speaker;
    among `tries` seeded shuffles the one whose per-label split shares are closest to the
    ratios wins. Returns {speaker: split}.
    """
    speakers = sorted(speaker_labels)
    if len(speakers) < 3:
        raise SERError(f"a speaker-independent split needs at least 3 speakers, found {len(speakers)} "
                       f"({speakers}); give explicit speaker lists or a layout without speakers")
    ratios = np.asarray(ratios, dtype=float)
    labels = sorted({lab for c in speaker_labels.values() for lab in c})
    mat = np.array([[speaker_labels[s].get(lab, 0) for lab in labels] for s in speakers], dtype=float)
    totals = mat.sum(axis=0)
    rng = random.Random(seed)
    best, best_cost = None, float("inf")
    for _ in range(tries):
        order = list(range(len(speakers)))
        rng.shuffle(order)
        # greedy: give each speaker to the split most below its target, keeping one speaker per split
        assign = np.full(len(speakers), -1)
        load = np.zeros((3, len(labels)))
        for k, idx in enumerate(order[:3]):
            assign[idx] = k if ratios[k] > 0 else 0
            load[assign[idx]] += mat[idx]
        for idx in order[3:]:
            deficit = ratios * mat.sum() - load.sum(axis=1)
            k = int(np.argmax(deficit))
            assign[idx] = k
            load[k] += mat[idx]
        share = load / np.maximum(totals, 1)
        cost = float(np.abs(share - ratios[:, None]).sum() + 0.5 * np.abs(share.mean(axis=1) - ratios).sum())
        if any((load[k].sum() == 0) for k in range(3) if ratios[k] > 0):
            cost += 100.0
        if cost < best_cost - 1e-12:
            best, best_cost = assign.copy(), cost
    return {s: SPLITS[int(best[i])] for i, s in enumerate(speakers)}


def stratified_random_split(rows: list[dict], ratios=(0.8, 0.1, 0.1), seed: int = 42) -> dict[int, str]:
    """Split row indices per label by the ratios (no speaker information) -> {index: split}."""
    rng = random.Random(seed)
    by_label = defaultdict(list)
    for i, row in enumerate(rows):
        by_label[row["label"]].append(i)
    out = {}
    for lab in sorted(by_label):
        idx = by_label[lab]
        rng.shuffle(idx)
        n = len(idx)
        n_val = int(round(n * ratios[1]))
        n_test = int(round(n * ratios[2]))
        if n >= 3:
            n_val = max(n_val, 1 if ratios[1] > 0 else 0)
            n_test = max(n_test, 1 if ratios[2] > 0 else 0)
        for j, i in enumerate(idx):
            out[i] = "val" if j < n_val else "test" if j < n_val + n_test else "train"
    return out


def _check_ratios(train_ratio, val_ratio, test_ratio):
    ratios = (float(train_ratio), float(val_ratio), float(test_ratio))
    if any(r < 0 for r in ratios) or abs(sum(ratios) - 1.0) > 1e-6:
        raise SERError(f"split ratios must be >= 0 and sum to 1; got train={ratios[0]} val={ratios[1]} "
                       f"test={ratios[2]}")
    return ratios


def _disjoint(groups: dict[str, list], what: str):
    seen = {}
    for split, items in groups.items():
        for it in items:
            if it in seen:
                raise SERError(f"{what} {it!r} is listed for both {seen[it]} and {split}")
            seen[it] = split
    return seen


def _explicit_speaker_split(rows, speaker_lists: dict[str, list[str]], dropped_speakers: Counter):
    """Rows -> split by explicit speaker lists (case-sensitive names); unlisted speakers dropped."""
    where = _disjoint(speaker_lists, "speaker")
    out = {s: [] for s in SPLITS}
    found = {r["speaker"] for r in rows}
    unknown = sorted(set(where) - found)
    if unknown:
        raise SERError(f"speaker(s) {unknown} listed for a split but not found (speakers found: {sorted(found)})")
    for r in rows:
        split = where.get(r["speaker"])
        if split is None:
            dropped_speakers[r["speaker"] or "<unknown>"] += 1
        else:
            out[split].append(r)
    return out


def _split_flat(rows, ratios, seed, speaker_lists, warnings, dropped_speakers, speakers_from_pattern=False):
    """Speaker-independent (explicit lists, else stratified by label) or stratified random split."""
    if any(speaker_lists.values()):
        return (_explicit_speaker_split(rows, speaker_lists, dropped_speakers),
                {"type": "speaker_lists", **speaker_lists,
                 "description": "speaker-independent by explicit speaker lists: " + " / ".join(
                     f"{s} {','.join(speaker_lists[s])}" for s in SPLITS)})
    n_spk = len({r["speaker"] for r in rows if r["speaker"]})
    if rows and all(r["speaker"] for r in rows) and (n_spk >= 3 or speakers_from_pattern):
        per_spk = defaultdict(Counter)
        for r in rows:
            per_spk[r["speaker"]][r["label"]] += 1
        assign = speaker_split(per_spk, ratios, seed)
        groups = {s: sorted(k for k, v in assign.items() if v == s) for s in SPLITS}
        return ({s: [r for r in rows if assign[r["speaker"]] == s] for s in SPLITS},
                {"type": "speaker_stratified", "ratios": list(ratios), "seed": seed, **groups,
                 "description": f"speaker-independent, speakers assigned near ratios {list(ratios)} "
                                f"stratified by label (seed {seed})"})
    n_unknown = sum(1 for r in rows if not r["speaker"])
    if n_unknown == 0:
        warnings.append(f"only {n_spk} speaker folder(s) found, too few for a speaker split (need 3); "
                        f"the folder above the label folders is not taken as a speaker")
        for r in rows:
            r["speaker"] = ""
        n_unknown = len(rows)
    warnings.append(f"{n_unknown} of {len(rows)} files have no speaker (no speaker folder, --speaker-pattern or "
                    f"sidecar speaker): stratified RANDOM split, so the same speaker may be in train and test; "
                    f"scores will be optimistic")
    idx = stratified_random_split(rows, ratios, seed)
    out = {s: [] for s in SPLITS}
    for i, r in enumerate(rows):
        out[idx[i]].append(r)
    return out, {"type": "stratified_random", "ratios": list(ratios), "seed": seed,
                 "description": f"stratified random by label, ratios {list(ratios)} (seed {seed}); "
                                f"NOT speaker-independent"}
