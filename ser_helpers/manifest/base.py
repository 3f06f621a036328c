"""Names every manifest module shares: the splits, the common columns, `ManifestResult`, `ManifestConfig`
(the settings every manifest subcommand has), file finding.

Taught in notebook 01 (`01_iemocap_manifest.ipynb`), where the first manifest is written; the
folder walking and the `transcripts.csv` sidecar come back in notebook 02.
"""
from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from ..common import SERError, StageConfig, not_utf8


SPLITS = ("train", "val", "test")
COMMON_COLUMNS = ["speaker", "language", "source_dataset", "transcript"]
DEFAULT_EXTENSIONS = ".wav,.flac,.ogg"


@dataclass
class ManifestResult:
    """What a manifest stage wrote: the output folder, the four file paths and the summary dict."""
    output_dir: Path
    paths: dict
    summary: dict = field(repr=False)

    def frames(self) -> dict:
        """The three split CSVs as DataFrames (paths absolute)."""
        from ..common import read_manifest
        return {s: read_manifest(self.paths[s]) for s in SPLITS}


@dataclass
class ManifestConfig(StageConfig):
    """The settings every manifest subcommand shares: how the checks every manifest passes (`write`) end.

    Each subcommand's config (`IemocapConfig`, `CasiaConfig`, `RavdessConfig`, `EsdConfig`, `BuildManifestConfig`,
    `MergeManifestsConfig`) adds its own settings; every default is written once, in those classes. The `ser`
    flags are generated from the fields (`common.add_dataclass_flags`; these two come last in each `--help`), and
    notebooks 01/02 build one with `XConfig.from_params(globals())`."""
    allow_speaker_overlap: bool = field(default=False, metadata={
        "help": "write the manifests even if a speaker is in two splits (leaks speakers; not recommended)"})
    strict: bool = field(default=False, metadata={"help": "missing/unreadable audio is an error, not skipped"})

    @classmethod
    def resolve(cls, config, settings: dict):
        """`config` (default: the defaults) with `settings`, keyword arguments named like fields, replacing its
        values: what a preparer runs with."""
        unknown = set(settings) - {f.name for f in fields(cls)}
        if unknown:
            raise SERError(f"unknown setting(s) {sorted(unknown)}; known: {sorted(f.name for f in fields(cls))}")
        return replace(config or cls(), **settings)


def _raw_corpus_dir(raw_dir, preset: str, presets: dict, corpus: str) -> Path:
    """`raw_dir` as a Path, once the preset is known to be one of `presets` and the folder to exist."""
    if preset not in presets:
        raise SERError(f"--preset {preset!r}: choose one of {sorted(presets)}")
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise SERError(f"{raw_dir}: {corpus} raw dir not found")
    return raw_dir


def _as_list(value) -> list[str]:
    """A comma string or an iterable -> list of stripped non-empty strings."""
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v).strip() for v in value if str(v).strip()]


def _extensions(value) -> tuple[str, ...]:
    exts = tuple("." + e.lower().lstrip(".") for e in _as_list(value or DEFAULT_EXTENSIONS))
    if not exts:
        raise SERError("--extensions: no extension given")
    return exts


def _read_text(path: Path) -> str:
    """Decode a metadata file: UTF-8 (with or without BOM), else latin-1 (never fails)."""
    raw = path.read_bytes()
    for enc in ("utf-8-sig",):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            pass
    return raw.decode("latin-1")


def _is_hidden(path: Path) -> bool:
    return path.name.startswith(".")  # '._*' AppleDouble files and dot files


def _audio_files(root: Path, exts: tuple[str, ...]) -> list[Path]:
    """Audio files under root (recursive, sorted, hidden files and folders skipped)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and name.lower().endswith(exts):
                out.append(Path(dirpath) / name)
    return out


def read_transcripts_csv(path: Path) -> dict[str, dict]:
    """`transcripts.csv` sidecar (`file_id,speaker,emotion,text`) -> {file_id: row}."""
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise not_utf8(path, exc, "transcript sidecar") from None
    with io.StringIO(text, newline="") as fh:
        reader = csv.DictReader(fh)
        need = {"file_id", "text"}
        if not reader.fieldnames or not need <= set(reader.fieldnames):
            raise SERError(f"{path}: transcript sidecar needs columns file_id,speaker,emotion,text; "
                           f"found {reader.fieldnames}")
        out = {}
        for i, row in enumerate(reader, start=2):
            fid = (row.get("file_id") or "").strip()
            if not fid:
                raise SERError(f"{path}: row {i}: empty file_id")
            if fid in out:
                raise SERError(f"{path}: row {i}: duplicate file_id {fid!r}")
            out[fid] = row
    return out
