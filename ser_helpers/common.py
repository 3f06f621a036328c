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
#: longest clip the models see, in seconds: longer audio is cropped (training, evaluation, features, inference)
MAX_DURATION_SEC = 15.0
#: clips per forward pass when a trained audio model scores clips (evaluation, features, inference)
SCORING_BATCH_SIZE = 8
#: bootstrap resamples behind every reported 95% interval
N_BOOTSTRAP = 1000

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


def not_utf8(path, exc: UnicodeDecodeError, what: str = "file") -> "SERError":
    """The one clear error for a text file that is not UTF-8 (names the file, the byte and where)."""
    bad = exc.object[exc.start:exc.start + 1].hex() if isinstance(exc.object, (bytes, bytearray)) else "?"
    return SERError(f"{path}: {what} is not UTF-8 text (byte 0x{bad} at offset {exc.start}); "
                    f"re-save it as UTF-8")


def read_json(path: str | os.PathLike):
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except UnicodeDecodeError as exc:
        raise not_utf8(path, exc, "JSON file") from None
    except json.JSONDecodeError as exc:
        raise SERError(f"{path}: not valid JSON ({exc})") from None


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

    A field's `metadata` may hold `choices`, `help`, `cli=False` (no flag) and `flag` (a contract flag named unlike
    the field, e.g. `--bootstrap` for `n_bootstrap`: it sets the field, its help shows the flag's own metavar). The
    type is the default's; a bool field defaulting to True becomes `--no-field-name` (store_false), one defaulting to
    False `--field-name`. `metadata["argparse"]` (a dict) is passed to `add_argument` as is, instead: e.g.
    `{"type": int}` for a field whose default is None, `{"action": argparse.BooleanOptionalAction}`.
    """
    import dataclasses
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if f.name in skip or not meta.get("cli", True):
            continue
        flag = meta.get("flag", "--" + f.name.replace("_", "-"))
        extra = {"help": meta["help"]} if meta.get("help") else {}
        if "flag" in meta:
            extra["dest"] = f.name
            if not isinstance(f.default, bool) and "choices" not in meta:
                extra["metavar"] = flag[2:].replace("-", "_").upper()
        if "argparse" in meta:
            parser.add_argument(flag, default=f.default, **(extra | meta["argparse"]))
            continue
        if isinstance(f.default, bool):
            if f.default:
                parser.add_argument("--no-" + flag[2:], action="store_false", **({"dest": f.name} | extra))
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


class StageConfig:
    """What every stage config dataclass (TrainConfig, EvaluateConfig, BaselineConfig, TextEmotionConfig,
    FeaturesConfig, FusionConfig, the manifest configs) can do: come from a notebook's parameters or a CLI's flags
    in one call."""

    @classmethod
    def from_params(cls, params, **overrides):
        """The config from a notebook's `globals()`, `vars(args)` or a dict: every entry named like a field, with
        `overrides` winning."""
        return dataclass_from(cls, params, **overrides)

    @classmethod
    def params_in(cls, params) -> dict:
        """Just those entries, as keyword arguments (e.g. for `ablation.run_fusion_ablation`)."""
        return dataclass_params(cls, params)


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
    except UnicodeDecodeError as exc:
        raise not_utf8(path, exc, "manifest CSV") from None
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


# ----------------------------------------------------------------------------- split hygiene
def _speaker_keys(df) -> set:
    """(source_dataset, speaker) pairs of a split (speaker ids are only unique within a dataset)."""
    if "speaker" not in df.columns:
        return set()
    spk = df["speaker"].astype(str).str.strip()
    src = df["source_dataset"].astype(str) if "source_dataset" in df.columns else [""] * len(df)
    return {(s_, k) for s_, k in zip(src, spk) if k and k.lower() not in ("nan", "none", "unknown")}


def check_splits(frames, allow_overlap: bool = False, sources=None, what: str = "manifest",
                 only: str | None = None) -> dict:
    """Refuse splits that share files (`path`) or speakers; warn about duplicate rows inside a split.

    `frames` maps split name -> DataFrame (with `path`, optionally `speaker`/`source_dataset`). With
    `allow_overlap` the overlap is only warned about; `only` limits the cross-split checks to pairs with that
    split (e.g. the evaluated set against the model's training splits). Returns the record for the command's report json:
    {"allow_split_overlap", "shared_files", "shared_speakers", "duplicate_rows", "ok"}. Used by every
    training and evaluation command (train-wav2vec2, adapt-wav2vec2-head, train-baseline, evaluate-wav2vec2,
    build-fusion-features, train-late-fusion, run-fusion-ablation, train-text-emotion)."""
    sources = dict(sources or {})
    names = [n for n, df in frames.items() if df is not None]
    dup_rows, shared_files, shared_spk = {}, {}, {}
    for n in names:
        df = frames[n]
        if "path" in df.columns:
            dups = int(df.duplicated(subset=["path"]).sum())
            if dups:
                dup_rows[n] = dups
                ex = df.loc[df.duplicated(subset=["path"], keep=False), "path"].iloc[0]
                warnings.warn(f"{sources.get(n, n)}: {dups} duplicate row(s) in the {n} {what} "
                              f"(same path, e.g. {ex}); each counts again in training and metrics", stacklevel=2)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if only is not None and only not in (a, b):
                continue
            pa = set(frames[a]["path"]) if "path" in frames[a].columns else set()
            pb = set(frames[b]["path"]) if "path" in frames[b].columns else set()
            common = sorted(pa & pb)
            if common:
                shared_files[f"{a}/{b}"] = len(common)
            spk = sorted(_speaker_keys(frames[a]) & _speaker_keys(frames[b]))
            if spk:
                shared_spk[f"{a}/{b}"] = [k for _, k in spk][:20]
    record = {"allow_split_overlap": bool(allow_overlap), "shared_files": shared_files,
              "shared_speakers": shared_spk, "duplicate_rows": dup_rows,
              "ok": not (shared_files or shared_spk)}
    if shared_files or shared_spk:
        parts = []
        for pair, n in shared_files.items():
            a, b = pair.split("/")
            parts.append(f"{sources.get(a, a)} ({a}) and {sources.get(b, b)} ({b}) share {n} file(s)")
        for pair, spk in shared_spk.items():
            a, b = pair.split("/")
            parts.append(f"{a} and {b} share speaker(s) {spk[:5]}{' ...' if len(spk) > 5 else ''}")
        msg = "; ".join(parts)
        if not allow_overlap:
            raise SERError(f"splits are not independent: {msg}. Metrics on such splits are inflated; fix the "
                           f"{what}s (speaker-independent splits) or pass --allow-split-overlap to go on anyway")
        warnings.warn(f"--allow-split-overlap: going on although {msg}", stacklevel=2)
    return record


#: metadata of an `n_bootstrap` config field whose contract flag is `--bootstrap` (evaluate-wav2vec2, train-baseline)
BOOTSTRAP_FLAG = {"flag": "--bootstrap", "help": "bootstrap resamples for 95%% intervals (0: none)"}


def add_split_overlap_flag(parser) -> None:
    """`--allow-split-overlap` on a training/evaluation command (see `check_splits`)."""
    parser.add_argument("--allow-split-overlap", action="store_true",
                        help="go on (with a warning, recorded in the report) when the splits share files or "
                             "speakers; refused by default")
