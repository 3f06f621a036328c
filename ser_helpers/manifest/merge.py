"""Merge manifest folders (e.g. English + Mandarin -> multilingual); each input keeps its own split.

Taught in notebook 02 (`02_folder_manifest.ipynb`); CLI `ser merge-manifests`.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..common import MANIFEST_HEAD, SERError
from .base import SPLITS, ManifestConfig, ManifestResult, _as_list
from .write import _write_manifest


MERGE_COLUMNS = ["source_dataset", "language", "speaker", "file_id", "text", "transcript"]


@dataclass
class MergeManifestsConfig(ManifestConfig):
    """Settings of `merge_manifests`, each default written once, here (the `ser merge-manifests` flags)."""
    deduplicate_by_path: bool = False
    languages: str | list = field(default="", metadata={
        "help": "comma list, one per input dir: fills a missing language"})


def merge_manifests(*, input_dirs, output_dir, config: MergeManifestsConfig | None = None,
                    **settings) -> ManifestResult:
    """Concatenate the train/val/test manifests of several folders (e.g. en + zh -> multilingual).

    The settings are a `MergeManifestsConfig` (`config=`), or its fields as keyword arguments, which also override a
    given config's. Adds `source_dataset,language,speaker,file_id,text,transcript` where known (`source_dataset`
    defaults to the input folder's name; `languages` optionally fills an input's missing language).
    Duplicate paths are an error unless `deduplicate_by_path` (later copies in the same split are
    dropped; a path in two splits is always an error). Speakers are compared per source dataset.
    """
    cfg = MergeManifestsConfig.resolve(config, settings)
    dirs = [Path(d) for d in _as_list(input_dirs)]
    if len(dirs) < 1:
        raise SERError("--input-dirs: give at least one manifest folder (comma list)")
    langs = _as_list(cfg.languages)
    if langs and len(langs) != len(dirs):
        raise SERError(f"--languages: {len(langs)} value(s) for {len(dirs)} input dir(s)")
    split_rows, first_cols = _read_inputs(dirs, langs)
    n_dedup = _deduplicate(split_rows, cfg.deduplicate_by_path)
    skipped_all = _drop_missing(split_rows, cfg.strict)
    rest = [c for c in first_cols if c not in MANIFEST_HEAD and c not in MERGE_COLUMNS]
    columns = MANIFEST_HEAD + MERGE_COLUMNS + rest
    labels = sorted({r["label"] for s in SPLITS for r in split_rows[s]})
    summary = {"dataset": "merged", "created_by": "ser merge-manifests", "input_dirs": [str(d.resolve()) for d in dirs],
               "deduplicate_by_path": cfg.deduplicate_by_path, "n_deduplicated": n_dedup,
               "split_rule": {"type": "merged", "description": "each input keeps its own split: " + ", ".join(
                   d.name for d in dirs)},
               "by_source": {s: dict(Counter(r["source_dataset"] for r in split_rows[s])) for s in SPLITS},
               "speaker_key": lambda r: f"{r.get('source_dataset', '')}/{r['speaker']}" if r.get("speaker") else ""}
    return _write_manifest(output_dir, split_rows, columns, labels=labels, summary=summary, skipped=skipped_all,
                           dropped=Counter(), n_short=0, min_duration_sec=0.0,
                           allow_speaker_overlap=cfg.allow_speaker_overlap)


def _read_inputs(dirs: list[Path], langs: list[str]) -> tuple[dict[str, list[dict]], list[str]]:
    """Rows of every input's train/val/test.csv (common columns filled, `_origin` = file:line) and all columns."""
    from ..common import read_manifest
    split_rows = {s: [] for s in SPLITS}
    first_cols: list[str] = list(MANIFEST_HEAD)
    for k, d in enumerate(dirs):
        for s in SPLITS:
            csv_path = d / f"{s}.csv"
            if not csv_path.exists():
                raise SERError(f"{csv_path}: not found (each input dir needs train.csv, val.csv, test.csv)")
            df = read_manifest(csv_path)
            missing = [c for c in MANIFEST_HEAD if c not in df.columns]
            if missing:
                raise SERError(f"{csv_path}: lacks column(s) {missing}")
            df = df.fillna("")
            for c in df.columns:
                if c not in first_cols:
                    first_cols.append(c)
            for i, rec in enumerate(df.to_dict("records")):
                rec = {c: ("" if v is None else v) for c, v in rec.items()}
                rec["source_dataset"] = rec.get("source_dataset") or d.name
                if not rec.get("language") and langs:
                    rec["language"] = langs[k]
                rec["file_id"] = rec.get("file_id") or rec.get("utterance_id") or Path(rec["path"]).stem
                rec["transcript"] = rec.get("transcript") or rec.get("text") or ""
                rec["text"] = rec.get("text") or rec["transcript"]
                rec["_origin"] = f"{csv_path}:{i + 2}"
                split_rows[s].append(rec)
    return split_rows, first_cols


def _deduplicate(split_rows: dict[str, list[dict]], deduplicate_by_path: bool) -> int:
    """Drop later copies of a path within a split (in place; an error unless `deduplicate_by_path`);
    a path in two splits is always an error. Removes `_origin`; returns the number dropped."""
    n_dedup = 0
    first_split: dict[str, tuple[str, str]] = {}
    for s in SPLITS:
        kept = []
        for rec in split_rows[s]:
            key = os.path.normpath(rec["path"])
            if key in first_split:
                prev_split, origin = first_split[key]
                if prev_split != s:
                    raise SERError(f"{rec['_origin']}: path {rec['path']} is also in {prev_split} ({origin}): "
                                   f"a file in two splits leaks into evaluation")
                if not deduplicate_by_path:
                    raise SERError(f"{rec['_origin']}: duplicate path {rec['path']} (first at {origin}); "
                                   f"pass --deduplicate-by-path to keep the first copy")
                n_dedup += 1
                continue
            first_split[key] = (s, rec["_origin"])
            kept.append(rec)
        split_rows[s] = kept
    for s in SPLITS:
        for rec in split_rows[s]:
            rec.pop("_origin", None)
    return n_dedup


def _drop_missing(split_rows: dict[str, list[dict]], strict: bool) -> list[dict]:
    """Drop rows whose file is missing (in place; an error with `strict`); returns them as skipped entries."""
    skipped_all = []
    for s in SPLITS:
        present, sk = [], []
        for rec in split_rows[s]:
            if os.path.exists(rec["path"]):
                present.append(rec)
            elif strict:
                raise SERError(f"{rec['path']}: missing file (strict mode)")
            else:
                sk.append({"path": rec["path"], "reason": "missing file"})
        split_rows[s] = present
        skipped_all += sk
    return skipped_all
