"""Shared plumbing: label vocabulary, atomic writes, seeding, device choice, manifest reading.
Stage configs: `add_dataclass_flags` / `dataclass_from` make a config dataclass the one source of a stage's
CLI flags and notebook call (see fusion.FusionConfig).
Taught in notebook 00 (00_make_demo_corpus) onwards: every notebook's plumbing.
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

# Canonical labels are the IEMOCAP codes, sorted; label_id follows this order everywhere.
LABELS: list[str] = ["ang", "hap", "neu", "sad"]
DISPLAY_NAMES: dict[str, str] = {"ang": "angry", "hap": "happy", "neu": "neutral", "sad": "sad",
                                 "fru": "frustrated", "fea": "fear", "sur": "surprise", "dis": "disgust",
                                 "exc": "excited", "cal": "calm"}
SERVICE_CODES: dict[str, str] = {"ang": "ANGRY", "hap": "HAPPY", "neu": "NEUTRAL", "sad": "SAD"}
SAMPLE_RATE = 16000

# Words and codes that name a canonical label (case-insensitive), for folders and --allowed-labels.
LABEL_ALIASES: dict[str, str] = {
    "ang": "ang", "angry": "ang", "anger": "ang", "mad": "ang",
    "hap": "hap", "happy": "hap", "happiness": "hap", "joy": "hap", "exc": "hap", "excited": "hap",
    "neu": "neu", "neutral": "neu", "calm": "neu", "cal": "neu",
    "sad": "sad", "sadness": "sad",
    "fru": "fru", "frustrated": "fru", "frustration": "fru",
    "fea": "fea", "fear": "fea", "fearful": "fea",
    "sur": "sur", "surprise": "sur", "surprised": "sur",
    "dis": "dis", "disgust": "dis", "disgusted": "dis",
}


class SERError(Exception):
    """Base class for clear, user-facing errors of this package."""


def display_name(code: str) -> str:
    return DISPLAY_NAMES.get(code, code)


def label_map(labels: Iterable[str] = LABELS) -> dict:
    """The `label_map.json` payload: labels (sorted codes), label2id, id2label."""
    labels = sorted(labels)
    return {"labels": labels,
            "label2id": {lab: i for i, lab in enumerate(labels)},
            "id2label": {str(i): lab for i, lab in enumerate(labels)}}


# ----------------------------------------------------------------------------- atomic writes
@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temp path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or path.suffix or ".tmp",
                               dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        if tmp.exists():
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; artifacts get the usual mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json_atomic(path: str | os.PathLike, obj) -> Path:
    return write_text_atomic(path, json.dumps(to_jsonable(obj), indent=2, ensure_ascii=False) + "\n")


def write_csv_atomic(path: str | os.PathLike, df) -> Path:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
    return Path(path)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Build a directory in a temp sibling; on success replace `path` with it (old one removed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp.", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; the finished dir gets the usual mode
    try:
        yield tmp
        if path.exists():
            old = path.parent / f".{path.name}.old.{os.getpid()}"
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def to_jsonable(obj):
    """Convert numpy/pandas/Path values to plain JSON types (NaN -> None)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def read_json(path: str | os.PathLike):
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


# ----------------------------------------------------------------------------- seeds, devices
def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    try:
        import torch
        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover
        pass


def resolve_device(device: str = "auto") -> str:
    """'auto' -> 'cuda' when available else 'cpu'; 'cuda' without a GPU falls back to cpu with a warning."""
    import torch
    device = (device or "auto").lower()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        warnings.warn(f"device {device!r} requested but CUDA is not available; using cpu", stacklevel=2)
        return "cpu"
    return device


def count_parameters(model) -> int:
    """Number of parameters of a torch module (trainable or not)."""
    return int(sum(p.numel() for p in model.parameters()))


# ----------------------------------------------------------------------------- stage configs (dataclass -> CLI)
def add_dataclass_flags(parser, cls, skip: Iterable[str] = ()) -> None:
    """One `--field-name` flag per field of the config dataclass `cls` (its defaults written once, in `cls`).

    A field's `metadata` may hold `choices`, `help` and `cli=False` (no flag). The type is the default's; a
    bool field defaulting to True becomes `--no-field-name` (store_false), one defaulting to False `--field-name`.
    """
    import dataclasses
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if f.name in skip or not meta.get("cli", True):
            continue
        flag = "--" + f.name.replace("_", "-")
        extra = {"help": meta["help"]} if meta.get("help") else {}
        if isinstance(f.default, bool):
            if f.default:
                parser.add_argument("--no-" + flag[2:], dest=f.name, action="store_false", **extra)
            else:
                parser.add_argument(flag, action="store_true", **extra)
            continue
        if "choices" in meta:
            extra["choices"] = tuple(meta["choices"])
        if not isinstance(f.default, str):
            extra["type"] = type(f.default)
        parser.add_argument(flag, default=f.default, **extra)


def dataclass_params(cls, params) -> dict:
    """The entries of `params` (a dict, `vars(args)`, a notebook's `globals()`) named like fields of `cls`."""
    import dataclasses
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in dict(params).items() if k in names}


def dataclass_from(cls, params, **overrides):
    """`cls(**dataclass_params(cls, params))` with `overrides` winning: the one short call from a notebook's
    parameters or a CLI's flags to a stage config."""
    return cls(**(dataclass_params(cls, params) | overrides))


# ----------------------------------------------------------------------------- manifests
MANIFEST_HEAD = ["path", "label", "source_label", "duration_sec"]


def read_manifest(path: str | os.PathLike, labels: Iterable[str] | None = None):
    """Read a manifest CSV; make `path` absolute (relative paths are relative to the CSV's folder).

    Checks the leading columns and, if `labels` is given, that every label is known.
    """
    import pandas as pd
    path = Path(path)
    if not path.exists():
        raise SERError(f"{path}: manifest not found")
    try:
        df = pd.read_csv(path, dtype={"path": str, "label": str, "source_label": str}, keep_default_na=False,
                         na_values=[""])
    except Exception as exc:  # noqa: BLE001
        raise SERError(f"{path}: cannot read manifest CSV ({exc})") from exc
    missing = [c for c in ("path", "label") if c not in df.columns]
    if missing:
        raise SERError(f"{path}: manifest lacks column(s) {missing}; columns are {list(df.columns)}")
    if df.empty:
        raise SERError(f"{path}: manifest has no rows")
    base = path.resolve().parent
    df["path"] = [str(p if Path(p).is_absolute() else (base / p).resolve()) for p in df["path"]]
    if labels is not None:
        unknown = sorted(set(df["label"]) - set(labels))
        if unknown:
            raise SERError(f"{path}: unknown label(s) {unknown} in column 'label' (expected {sorted(labels)})")
    return df
