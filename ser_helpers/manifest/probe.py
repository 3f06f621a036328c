"""Audio checks before a manifest is written: header probe, missing/unreadable/short files.

Taught in notebook 01 (`01_iemocap_manifest.ipynb`, the `skipped` and `filtered_short` entries of the summary).
"""
from __future__ import annotations

from pathlib import Path

from ..common import SERError


def probe_audio(path: Path, min_duration_sec: float = 0.0) -> tuple[float | None, str | None, str | None]:
    """Header check of one file -> (duration, skip_reason, filter_reason).

    skip_reason: missing / unreadable / empty audio (reported, an error with strict);
    filter_reason: shorter than min_duration_sec (a normal filter).
    """
    from ..audio import AudioError, audio_duration
    if not path.exists():
        return None, "missing file", None
    if path.stat().st_size == 0:
        return None, "empty file (0 bytes)", None
    try:
        dur = audio_duration(path)
    except AudioError as exc:
        return None, f"unreadable audio: {str(exc).split(': ', 1)[-1]}", None
    if dur <= 0:
        return dur, "zero-length audio", None
    if dur < min_duration_sec:
        return dur, None, f"shorter than min_duration_sec ({dur:.3f} s < {min_duration_sec:g} s)"
    return dur, None, None


def _progress(items, desc: str):
    if len(items) < 200:  # small jobs: no bar
        return items
    import warnings
    with warnings.catch_warnings():  # without ipywidgets tqdm.auto warns and falls back to a text bar
        warnings.filterwarnings("ignore", message="IProgress not found")
        from tqdm.auto import tqdm
    return tqdm(items, desc=desc, leave=False)


def _check_rows_audio(rows: list[dict], min_duration_sec: float, check_audio: bool, strict: bool, desc: str):
    """Fill duration_sec from the header; return (kept, skipped[{path, reason}], n_short)."""
    kept, skipped, short = [], [], 0
    for row in (_progress(rows, desc) if check_audio else rows):
        if not check_audio:
            dur = row.get("duration_sec")
            if dur is not None and dur < min_duration_sec:
                short += 1
                continue
            kept.append(row)
            continue
        dur, skip, filt = probe_audio(Path(row["path"]), min_duration_sec)
        if skip:
            if strict:
                raise SERError(f"{row['path']}: {skip} (strict mode; drop --strict to skip and report it)")
            skipped.append({"path": row["path"], "reason": skip})
            continue
        if filt:
            short += 1
            continue
        row["duration_sec"] = round(float(dur), 4)
        kept.append(row)
    return kept, skipped, short
