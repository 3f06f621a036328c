"""Write a manifest: check the split rows, then `train.csv val.csv test.csv summary.json`, each atomically.

Every preparer ends here, so every manifest gets the same checks: no speaker in two splits, no
duplicate path, no empty split, every label present in train. Taught in notebook 01
(`01_iemocap_manifest.ipynb`, the written files and their summary).
"""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Iterable

import numpy as np

from ..common import SERError, display_name, to_jsonable, write_csv_atomic, write_json_atomic
from .base import COMMON_COLUMNS, SPLITS, ManifestResult


def _write_manifest(output_dir, split_rows: dict[str, list[dict]], columns: list[str], *, labels: list[str],
                    summary: dict, skipped: list[dict], dropped: Counter, n_short: int, min_duration_sec: float,
                    allow_speaker_overlap: bool = False, warnings: list[str] | None = None) -> ManifestResult:
    """Check the split rows, then write train/val/test.csv and summary.json (each atomically)."""
    output_dir = Path(output_dir)
    warnings = list(warnings or [])
    _check_not_empty(output_dir, split_rows, summary)
    _check_no_duplicate_paths(output_dir, split_rows)
    spk_key = summary.get("speaker_key") or (lambda r: r.get("speaker") or "")
    speakers = {s: sorted({spk_key(r) for r in split_rows[s]} - {""}) for s in SPLITS}
    summary.pop("speaker_key", None)
    _check_speaker_overlap(output_dir, speakers, allow_speaker_overlap, warnings)
    present = {s: Counter(r["label"] for r in split_rows[s]) for s in SPLITS}
    all_labels = _check_labels(output_dir, labels, present, warnings)
    if not any(r.get("speaker") for s in SPLITS for r in split_rows[s]):
        warnings.append("no speaker information: speaker independence of the splits cannot be checked")

    frames = _frames(split_rows, columns)
    summary = _summarise(dict(summary), output_dir, split_rows, frames, columns, all_labels, present, speakers)
    summary.update({
        "dropped": dict(sorted(dropped.items())),
        "n_dropped": int(sum(dropped.values())),
        "filtered_short": {"count": int(n_short), "min_duration_sec": min_duration_sec},
        "skipped": skipped,
        "n_skipped": len(skipped),
        "warnings": warnings,
    })
    if "language" in columns:
        summary["languages"] = {s: dict(Counter(str(x) for x in frames[s]["language"])) for s in SPLITS}
    paths = {s: output_dir / f"{s}.csv" for s in SPLITS}
    paths["summary"] = output_dir / "summary.json"
    output_dir.mkdir(parents=True, exist_ok=True)
    for s in SPLITS:
        write_csv_atomic(paths[s], frames[s])
    write_json_atomic(paths["summary"], summary)
    return ManifestResult(output_dir=output_dir, paths=paths, summary=to_jsonable(summary))


def _check_not_empty(output_dir: Path, split_rows: dict[str, list[dict]], summary: dict) -> None:
    for split in SPLITS:
        if not split_rows.get(split):
            raise SERError(f"{output_dir}: split '{split}' is empty after filtering "
                           f"(rule: {summary.get('split_rule', {}).get('description', '?')})")


def _check_no_duplicate_paths(output_dir: Path, split_rows: dict[str, list[dict]]) -> None:
    seen: dict[str, str] = {}
    dups = []
    for split in SPLITS:
        for row in split_rows[split]:
            key = os.path.normpath(os.path.abspath(row["path"]))
            if key in seen:
                dups.append(f"{row['path']} ({seen[key]} and {split})")
            seen[key] = split
    if dups:
        raise SERError(f"{output_dir}: {len(dups)} duplicate path(s) in the manifest, e.g. {dups[:3]}")


def _check_speaker_overlap(output_dir: Path, speakers: dict[str, list[str]], allow_speaker_overlap: bool,
                           warnings: list[str]) -> None:
    """A speaker in two splits is an error (a warning with `allow_speaker_overlap`)."""
    overlap = {}
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1:]:
            common = sorted(set(speakers[a]) & set(speakers[b]))
            if common:
                overlap[f"{a}/{b}"] = common
    if overlap:
        msg = "; ".join(f"{k}: {v[:5]}{' ...' if len(v) > 5 else ''}" for k, v in overlap.items())
        if not allow_speaker_overlap:
            raise SERError(f"{output_dir}: speaker(s) in more than one split would leak speakers into "
                           f"evaluation ({msg}); fix the split or pass --allow-speaker-overlap")
        warnings.append(f"speaker overlap allowed by --allow-speaker-overlap: {msg}")


def _check_labels(output_dir: Path, labels: list[str], present: dict[str, Counter], warnings: list[str]) -> list[str]:
    """Every label needs training rows; a label absent from val/test is a warning. Returns all labels."""
    missing_train = sorted((set(labels) | set(present["val"]) | set(present["test"])) - set(present["train"]))
    if missing_train:
        raise SERError(f"{output_dir}: label(s) {missing_train} have no training rows "
                       f"(train has {dict(present['train'])})")
    all_labels = sorted(set(labels) | set(present["train"]))
    for s in ("val", "test"):
        absent = [lab for lab in all_labels if present[s].get(lab, 0) == 0]
        if absent:
            warnings.append(f"split '{s}' has no rows of label(s) {absent}")
    return all_labels


def _frames(split_rows: dict[str, list[dict]], columns: list[str]) -> dict:
    """One DataFrame per split with exactly `columns` (missing ones empty)."""
    import pandas as pd
    frames = {}
    for s in SPLITS:
        df = pd.DataFrame(split_rows[s])
        for col in columns:
            if col not in df.columns:
                df[col] = ""
        frames[s] = df[columns]
    return frames


def _summarise(summary: dict, output_dir: Path, split_rows, frames, columns, all_labels, present, speakers) -> dict:
    """Add the counts, speakers, hours and durations of the written splits to the preparer's summary."""
    durations = {s: [float(d) for d in frames[s]["duration_sec"] if d not in ("", None) and d == d]
                 for s in SPLITS}
    all_d = [d for s in SPLITS for d in durations[s]]
    summary.update({
        "output_dir": str(output_dir.resolve()),
        "labels": all_labels,
        "display_names": {lab: display_name(lab) for lab in all_labels},
        "columns": columns,
        "counts": {s: {lab: int(present[s].get(lab, 0)) for lab in all_labels} for s in SPLITS},
        "totals": {**{s: len(split_rows[s]) for s in SPLITS}, "all": sum(len(split_rows[s]) for s in SPLITS)},
        "source_label_counts": {s: dict(sorted(Counter(r["source_label"] for r in split_rows[s]).items()))
                                for s in SPLITS},
        "speakers": speakers,
        "n_speakers": {s: len(speakers[s]) for s in SPLITS},
        "hours": {**{s: round(sum(durations[s]) / 3600, 4) for s in SPLITS}, "all": round(sum(all_d) / 3600, 4)},
        "duration_sec": ({"median": round(float(np.median(all_d)), 3), "max": round(float(np.max(all_d)), 3),
                          "over_15s": int(sum(d > 15 for d in all_d))} if all_d else {}),
    })
    return summary


def _order_columns(first: list[str], rows: Iterable[dict], extra_order=COMMON_COLUMNS) -> list[str]:
    """`first`, then the common columns that some row knows, then any remaining keys."""
    rows = list(rows)
    known = {k for r in rows for k, v in r.items() if v not in (None, "")}
    cols = list(first)
    cols += [c for c in extra_order if c in known and c not in cols]
    cols += sorted(k for k in known if k not in cols)
    return cols
