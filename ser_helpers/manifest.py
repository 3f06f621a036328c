"""Manifests: turn raw corpora and label folders into `train.csv val.csv test.csv summary.json`.

Preparers for IEMOCAP (raw release layout), CASIA, RAVDESS and ESD, a generic label-folder
builder (`build_manifest`: split layout, flat layout, speaker folders holding label folders)
and `merge_manifests`. Every manifest written goes through the same checks
(`_write_manifest`): no speaker in two splits, no duplicate path, no empty split, every label
present in train; missing/unreadable audio is skipped and reported (an error with `strict`).
Rows start `path,label,source_label,duration_sec`, then the preparer's columns, then the common
columns `speaker,language,source_dataset,transcript` where known. Labels are IEMOCAP codes.
"""
from __future__ import annotations

import csv
import io
import json
import os
import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from .common import LABEL_ALIASES, LABELS, MANIFEST_HEAD, SERError, display_name, read_json, to_jsonable
from .common import write_csv_atomic, write_json_atomic

SPLITS = ("train", "val", "test")
COMMON_COLUMNS = ["speaker", "language", "source_dataset", "transcript"]
DEFAULT_EXTENSIONS = ".wav,.flac,.ogg"

# ----------------------------------------------------------------------------- presets
IEMOCAP_PRESETS = {
    "4class": {"ang": "ang", "hap": "hap", "exc": "hap", "neu": "neu", "sad": "sad"},
    "5class_fru": {"ang": "ang", "hap": "hap", "exc": "hap", "neu": "neu", "sad": "sad", "fru": "fru"},
}
CASIA_PRESETS = {
    "4class": {"angry": "ang", "happy": "hap", "neutral": "neu", "sad": "sad"},
    "6class": {"angry": "ang", "happy": "hap", "neutral": "neu", "sad": "sad", "fear": "fea", "surprise": "sur"},
}
RAVDESS_EMOTIONS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry",
                    "06": "fearful", "07": "disgust", "08": "surprised"}
RAVDESS_PRESETS = {
    "4class": {"01": "neu", "02": "neu", "03": "hap", "04": "sad", "05": "ang"},
    "6class": {"01": "neu", "02": "neu", "03": "hap", "04": "sad", "05": "ang", "06": "fea", "08": "sur"},
}
RAVDESS_STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}
ESD_PRESETS = {"4class": ["ang", "hap", "neu", "sad"], "5class": ["ang", "hap", "neu", "sad", "sur"]}
IEMOCAP_4CLASS_CODES = ("ang", "hap", "neu", "sad")
SPLIT_DIR_NAMES = {"train": ("train", "training"), "val": ("val", "valid", "validation", "dev", "evaluation"),
                   "test": ("test", "testing")}


@dataclass
class ManifestResult:
    """What a manifest stage wrote: the output folder, the four file paths and the summary dict."""
    output_dir: Path
    paths: dict
    summary: dict = field(repr=False)

    def frames(self) -> dict:
        """The three split CSVs as DataFrames (paths absolute)."""
        from .common import read_manifest
        return {s: read_manifest(self.paths[s]) for s in SPLITS}


# ----------------------------------------------------------------------------- small helpers
def _as_list(value) -> list[str]:
    """A comma string or an iterable -> list of stripped non-empty strings."""
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v).strip() for v in value if str(v).strip()]


def resolve_label(name: str) -> str | None:
    """A word or code (any case) -> canonical code, or None if unknown ('ANGRY' -> 'ang')."""
    return LABEL_ALIASES.get(str(name).strip().lower())


def parse_allowed_labels(value) -> list[str]:
    """`--allowed-labels` (comma list of words or codes, any case) -> sorted codes; empty keeps all."""
    codes = []
    for item in _as_list(value):
        code = resolve_label(item)
        if code is None:
            raise SERError(f"--allowed-labels: unknown label {item!r} (known words/codes: "
                           f"{', '.join(sorted(LABEL_ALIASES))})")
        codes.append(code)
    return sorted(set(codes))


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


def probe_audio(path: Path, min_duration_sec: float = 0.0) -> tuple[float | None, str | None, str | None]:
    """Header check of one file -> (duration, skip_reason, filter_reason).

    skip_reason: missing / unreadable / empty audio (reported, an error with strict);
    filter_reason: shorter than min_duration_sec (a normal filter).
    """
    from .audio import AudioError, audio_duration
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


def read_transcripts_csv(path: Path) -> dict[str, dict]:
    """`transcripts.csv` sidecar (`file_id,speaker,emotion,text`) -> {file_id: row}."""
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        from .common import not_utf8
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


# ----------------------------------------------------------------------------- splitting
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


def _parse_ranges(value, what: str) -> list[int]:
    """'1-18' or '1,2,5-7' -> sorted ints."""
    out = set()
    for item in _as_list(value):
        m = re.fullmatch(r"(\d+)\s*-\s*(\d+)|(\d+)", item)
        if not m:
            raise SERError(f"{what}: cannot read {item!r} (use e.g. 1-18 or 1,2,5-7)")
        if m.group(3):
            out.add(int(m.group(3)))
        else:
            lo, hi = int(m.group(1)), int(m.group(2))
            if hi < lo:
                raise SERError(f"{what}: range {item!r} runs backwards")
            out.update(range(lo, hi + 1))
    return sorted(out)


def _disjoint(groups: dict[str, list], what: str):
    seen = {}
    for split, items in groups.items():
        for it in items:
            if it in seen:
                raise SERError(f"{what} {it!r} is listed for both {seen[it]} and {split}")
            seen[it] = split
    return seen


# ----------------------------------------------------------------------------- writing + checks
def _write_manifest(output_dir, split_rows: dict[str, list[dict]], columns: list[str], *, labels: list[str],
                    summary: dict, skipped: list[dict], dropped: Counter, n_short: int, min_duration_sec: float,
                    allow_speaker_overlap: bool = False, warnings: list[str] | None = None) -> ManifestResult:
    """Check the split rows, then write train/val/test.csv and summary.json (each atomically)."""
    import pandas as pd
    output_dir = Path(output_dir)
    warnings = list(warnings or [])
    for split in SPLITS:
        if not split_rows.get(split):
            raise SERError(f"{output_dir}: split '{split}' is empty after filtering "
                           f"(rule: {summary.get('split_rule', {}).get('description', '?')})")
    # duplicate paths
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
    # speakers in two splits
    spk_key = summary.get("speaker_key") or (lambda r: r.get("speaker") or "")
    speakers = {s: sorted({spk_key(r) for r in split_rows[s]} - {""}) for s in SPLITS}
    overlap = {}
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1:]:
            common = sorted(set(speakers[a]) & set(speakers[b]))
            if common:
                overlap[f"{a}/{b}"] = common
    summary.pop("speaker_key", None)
    if overlap:
        msg = "; ".join(f"{k}: {v[:5]}{' ...' if len(v) > 5 else ''}" for k, v in overlap.items())
        if not allow_speaker_overlap:
            raise SERError(f"{output_dir}: speaker(s) in more than one split would leak speakers into "
                           f"evaluation ({msg}); fix the split or pass --allow-speaker-overlap")
        warnings.append(f"speaker overlap allowed by --allow-speaker-overlap: {msg}")
    # labels
    present = {s: Counter(r["label"] for r in split_rows[s]) for s in SPLITS}
    missing_train = sorted((set(labels) | set(present["val"]) | set(present["test"])) - set(present["train"]))
    if missing_train:
        raise SERError(f"{output_dir}: label(s) {missing_train} have no training rows "
                       f"(train has {dict(present['train'])})")
    all_labels = sorted(set(labels) | set(present["train"]))
    for s in ("val", "test"):
        absent = [lab for lab in all_labels if present[s].get(lab, 0) == 0]
        if absent:
            warnings.append(f"split '{s}' has no rows of label(s) {absent}")
    if not any(r.get("speaker") for s in SPLITS for r in split_rows[s]):
        warnings.append("no speaker information: speaker independence of the splits cannot be checked")

    frames = {}
    for s in SPLITS:
        df = pd.DataFrame(split_rows[s])
        for col in columns:
            if col not in df.columns:
                df[col] = ""
        frames[s] = df[columns]
    durations = {s: [float(d) for d in frames[s]["duration_sec"] if d not in ("", None) and d == d]
                 for s in SPLITS}
    all_d = [d for s in SPLITS for d in durations[s]]
    summary = dict(summary)
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


def _order_columns(first: list[str], rows: Iterable[dict], extra_order=COMMON_COLUMNS) -> list[str]:
    """`first`, then the common columns that some row knows, then any remaining keys."""
    rows = list(rows)
    known = {k for r in rows for k, v in r.items() if v not in (None, "")}
    cols = list(first)
    cols += [c for c in extra_order if c in known and c not in cols]
    cols += sorted(k for k in known if k not in cols)
    return cols


# ----------------------------------------------------------------------------- IEMOCAP
_EVAL_LINE = re.compile(r"^\[\s*(\d+(?:\.\d+)?)\s*-\s*(\d+(?:\.\d+)?)\s*\]\s+(Ses\d{2}[FM]_\S+)\s+(\w+)\s+\[")
_TRANS_LINE = re.compile(r"^(Ses\d{2}[FM]_\S+?)\s*\[[^\]]*\]\s*:\s?(.*)$")
_UTT_ID = re.compile(r"^Ses(\d{2})([FM])_(.+)_([FM])(\d{3})$")


def iemocap_speaker(utterance_id: str) -> str:
    """Speaker of an utterance: session + gender letter of the LAST id part ('Ses01F_impro01_M000' -> 'Ses01M')."""
    m = _UTT_ID.match(utterance_id)
    if not m:
        raise SERError(f"cannot read speaker from IEMOCAP utterance id {utterance_id!r}")
    return f"Ses{m.group(1)}{m.group(4)}"


def parse_iemocap_evaluation(path: Path) -> list[dict]:
    """Summary lines of one `EmoEvaluation/<dialog>.txt` -> [{utterance_id, code, start, end}].

    Header, blank and annotator (`C-E1:`, `A-F1:` ...) lines do not match the summary-line regex.
    """
    out = []
    for line in _read_text(path).splitlines():
        m = _EVAL_LINE.match(line.strip())
        if m:
            out.append({"utterance_id": m.group(3), "code": m.group(4).lower(),
                        "start": float(m.group(1)), "end": float(m.group(2))})
    return out


def parse_iemocap_transcriptions(path: Path) -> dict[str, str]:
    """`transcriptions/<dialog>.txt` -> {utterance_id: text}."""
    out = {}
    if not path.exists():
        return out
    for line in _read_text(path).splitlines():
        m = _TRANS_LINE.match(line.strip())
        if m:
            out[m.group(1)] = m.group(2).strip()
    return out


def _session_name(value: str) -> str:
    m = re.fullmatch(r"(?:ses(?:sion)?)?\s*0*(\d+)", str(value).strip(), flags=re.I)
    if not m:
        raise SERError(f"cannot read session {value!r} (use Session1 ... Session5 or 1 ... 5)")
    return f"Session{int(m.group(1))}"


def iemocap_loso_folds(sessions=("Session1", "Session2", "Session3", "Session4", "Session5")) -> list[dict]:
    """Leave-one-session-out folds: fold k tests on session k, validates on the session before it
    (cyclically) and trains on the rest; fold 5 is the default split (train 1-3, val 4, test 5)."""
    sessions = [_session_name(s) for s in _as_list(sessions)]
    folds = []
    for k, test in enumerate(sessions):
        val = sessions[k - 1]
        folds.append({"fold": k + 1, "train_sessions": [s for s in sessions if s not in (test, val)],
                      "val_sessions": [val], "test_sessions": [test]})
    return folds


def read_iemocap(raw_dir, sessions: Iterable[str]) -> list[dict]:
    """Every utterance of the given sessions (all codes): one dict per EmoEvaluation summary line."""
    raw_dir = Path(raw_dir)
    rows = []
    for session in sessions:
        sdir = raw_dir / session
        eval_dir = sdir / "dialog" / "EmoEvaluation"
        if not eval_dir.is_dir():
            raise SERError(f"{eval_dir}: not found (raw_dir must hold Session1..Session5 of the IEMOCAP release)")
        # top-level .txt only: Categorical/, Attribute/, Self-evaluation/ and ._* files are ignored
        files = sorted(p for p in eval_dir.glob("*.txt") if p.is_file() and not _is_hidden(p))
        if not files:
            raise SERError(f"{eval_dir}: no evaluation files (*.txt)")
        for ev in files:
            dialog_id = ev.stem
            trans = parse_iemocap_transcriptions(sdir / "dialog" / "transcriptions" / ev.name)
            for item in parse_iemocap_evaluation(ev):
                utt = item["utterance_id"]
                m = _UTT_ID.match(utt)
                if not m:
                    raise SERError(f"{ev}: unexpected utterance id {utt!r}")
                did = utt[: utt.rfind("_")]
                rows.append({
                    "path": str((sdir / "sentences" / "wav" / did / f"{utt}.wav").resolve()),
                    "code": item["code"], "duration_sec": round(item["end"] - item["start"], 4),
                    "session": session, "dialog_id": did, "utterance_id": utt,
                    "speaker": f"Ses{m.group(1)}{m.group(4)}",
                    "transcript": trans.get(utt, ""),
                    "dialog_type": "impro" if "_impro" in did else "script",
                    "eval_file": dialog_id,
                })
    return rows


def prepare_iemocap(*, raw_dir, output_dir, preset: str = "4class",
                    train_sessions="Session1,Session2,Session3", val_sessions="Session4",
                    test_sessions="Session5", min_duration_sec: float = 0.2, fold: int | None = None,
                    allow_speaker_overlap: bool = False, strict: bool = False, check_audio: bool = True,
                    source_dataset: str | None = None, language: str = "en") -> ManifestResult:
    """Raw IEMOCAP (Session1..5) -> session-split manifests with the preset's labels.

    `fold` (1-5) replaces the session lists by that leave-one-session-out fold. With
    `check_audio=False` durations come from the evaluation timestamps and wavs are not opened.
    """
    if preset not in IEMOCAP_PRESETS:
        raise SERError(f"--preset {preset!r}: choose one of {sorted(IEMOCAP_PRESETS)}")
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise SERError(f"{raw_dir}: IEMOCAP raw dir not found")
    if fold is not None:
        folds = iemocap_loso_folds()
        if not 1 <= int(fold) <= len(folds):
            raise SERError(f"--fold {fold}: choose 1..{len(folds)}")
        f = folds[int(fold) - 1]
        train_sessions, val_sessions, test_sessions = f["train_sessions"], f["val_sessions"], f["test_sessions"]
    groups = {"train": [_session_name(s) for s in _as_list(train_sessions)],
              "val": [_session_name(s) for s in _as_list(val_sessions)],
              "test": [_session_name(s) for s in _as_list(test_sessions)]}
    session_split = _disjoint(groups, "session")
    mapping = IEMOCAP_PRESETS[preset]
    rows = read_iemocap(raw_dir, sorted(session_split, key=lambda s: int(s[7:])))
    all_codes = dict(sorted(Counter(r["code"] for r in rows).items()))
    dropped = Counter(r["code"] for r in rows if r["code"] not in mapping)
    kept = []
    for r in rows:
        if r["code"] in mapping:
            row = {k: v for k, v in r.items() if k not in ("code", "eval_file")}
            row.update(label=mapping[r["code"]], source_label=r["code"])
            kept.append(row)
    kept, skipped, n_short = _check_rows_audio(kept, min_duration_sec, check_audio, strict, "IEMOCAP audio")
    source_dataset = source_dataset or f"iemocap_{preset}"
    for r in kept:
        r["language"], r["source_dataset"] = language, source_dataset
    split_rows = {s: [r for r in kept if session_split[r["session"]] == s] for s in SPLITS}
    columns = MANIFEST_HEAD + ["session", "dialog_id", "utterance_id"] + COMMON_COLUMNS + ["dialog_type"]
    summary = {
        "dataset": "iemocap", "preset": preset, "label_map": mapping, "source_dataset": source_dataset,
        "language": language, "input_dir": str(raw_dir.resolve()), "created_by": "ser prepare-iemocap",
        "check_audio": check_audio,
        "split_rule": {"type": "sessions", "fold": fold, **{s: groups[s] for s in SPLITS},
                       "description": f"speaker-independent by session: train {','.join(groups['train'])} / "
                                      f"val {','.join(groups['val'])} / test {','.join(groups['test'])}"},
        "dialog_types": {s: dict(Counter(r["dialog_type"] for r in split_rows[s])) for s in SPLITS},
        "per_session": dict(sorted(Counter(r["session"] for r in kept).items(), key=lambda kv: int(kv[0][7:]))),
        "all_codes": all_codes,
    }
    labels = sorted(set(mapping.values()))
    return _write_manifest(output_dir, split_rows, columns, labels=labels, summary=summary, skipped=skipped,
                           dropped=dropped, n_short=n_short, min_duration_sec=min_duration_sec,
                           allow_speaker_overlap=allow_speaker_overlap)


# ----------------------------------------------------------------------------- label folders (generic)
def _split_dirs(input_dir: Path) -> dict[str, Path]:
    """train/val/test subfolders of input_dir (case-insensitive; val also valid/validation/dev)."""
    children = {p.name.lower(): p for p in input_dir.iterdir() if p.is_dir() and not _is_hidden(p)}
    out = {}
    for split, names in SPLIT_DIR_NAMES.items():
        for n in names:
            if n in children:
                out[split] = children[n]
                break
    return out


class _LabelResolver:
    """Folder name -> (code or None, reason); label-map JSON first, then the alias table."""

    def __init__(self, label_map: dict | None, use_iemocap_map: bool, allowed: list[str]):
        self.label_map = {str(k).strip().lower(): v for k, v in (label_map or {}).items()}
        for k, v in list(self.label_map.items()):
            code = resolve_label(v) or (v if v in LABELS else None)
            if code is None:
                raise SERError(f"--label-map-json: {k!r} maps to {v!r}, which is not a known label word or code")
            self.label_map[k] = code
        self.use_iemocap_map = use_iemocap_map
        self.allowed = allowed

    def code(self, name: str) -> str | None:
        key = name.strip().lower()
        if key in self.label_map:
            return self.label_map[key]
        return resolve_label(key)

    def keep(self, code: str) -> str | None:
        """None if kept, else why it is dropped."""
        if self.use_iemocap_map and code not in IEMOCAP_4CLASS_CODES:
            return "not in the IEMOCAP 4-class map"
        if self.allowed and code not in self.allowed:
            return "not in --allowed-labels"
        return None


def _scan_label_tree(root: Path, exts, resolver: _LabelResolver, speaker_re, transcripts: dict,
                     dropped: Counter, unlabelled: list) -> list[dict]:
    """Files under root -> rows with label, source_label, speaker (folder or pattern), transcript."""
    rows = []
    for path in _audio_files(root, exts):
        parts = path.relative_to(root).parts[:-1]
        label_idx, code = None, None
        for i in range(len(parts) - 1, -1, -1):
            code = resolver.code(parts[i])
            if code is not None:
                label_idx = i
                break
        if label_idx is None:
            if parts:
                dropped[parts[-1]] += 1
            else:
                unlabelled.append(str(path))
            continue
        source_label = parts[label_idx]
        why = resolver.keep(code)
        if why:
            dropped[source_label] += 1
            continue
        speaker = ""
        if speaker_re is not None:
            m = speaker_re.search(path.name)
            if not m:
                raise SERError(f"{path}: --speaker-pattern {speaker_re.pattern!r} does not match the file name")
            speaker = m.groupdict().get("speaker") or (m.group(1) if m.groups() else m.group(0)) or ""
        elif label_idx > 0:
            speaker = parts[label_idx - 1]
        elif label_idx + 1 < len(parts):
            speaker = parts[label_idx + 1]
        meta = transcripts.get(path.stem, {})
        if not speaker and meta.get("speaker"):
            speaker = meta["speaker"].strip()
        rows.append({"path": str(path.resolve()), "label": code, "source_label": source_label,
                     "duration_sec": None, "speaker": speaker, "transcript": (meta.get("text") or "").strip(),
                     "file_id": path.stem})
    return rows


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


def build_manifest(*, input_dir, output_dir, mode: str = "auto", train_ratio: float = 0.8,
                   val_ratio: float = 0.1, test_ratio: float = 0.1, seed: int = 42, label_map_json: str = "",
                   use_iemocap_map: bool = False, allowed_labels="", extensions=DEFAULT_EXTENSIONS,
                   min_duration_sec: float = 0.0, speaker_pattern: str = "", train_speakers="",
                   val_speakers="", test_speakers="", language: str = "", source_dataset: str = "",
                   allow_speaker_overlap: bool = False, strict: bool = False) -> ManifestResult:
    """Label folders -> manifests.

    Layouts: split (`train/ val/ test/` holding label folders), flat (label folders) and speaker
    folders holding label folders (CASIA). `mode='auto'` uses the split layout when train/val/test
    folders exist. Flat layouts are split speaker-independently when speakers are known (explicit
    lists, else assigned near the ratios, stratified by label), else stratified random with a
    warning. A `transcripts.csv` sidecar (`file_id,speaker,emotion,text`) fills `transcript`.
    """
    input_dir = Path(input_dir)
    if not input_dir.is_dir():
        raise SERError(f"{input_dir}: input dir not found")
    if mode not in ("auto", "pre_split", "flat"):
        raise SERError(f"--mode {mode!r}: choose auto, pre_split or flat")
    ratios = _check_ratios(train_ratio, val_ratio, test_ratio)
    label_map = None
    if label_map_json:
        lm_path = Path(label_map_json)
        try:
            label_map = read_json(lm_path) if lm_path.exists() else json.loads(label_map_json)
        except (json.JSONDecodeError, OSError) as exc:
            raise SERError(f"--label-map-json {label_map_json!r}: not a JSON file or JSON object ({exc})") from exc
        if not isinstance(label_map, dict):
            raise SERError(f"--label-map-json {label_map_json!r}: expected a JSON object source label -> label")
    allowed = parse_allowed_labels(allowed_labels)
    resolver = _LabelResolver(label_map, use_iemocap_map, allowed)
    speaker_re = None
    if speaker_pattern:
        try:
            speaker_re = re.compile(speaker_pattern)
        except re.error as exc:
            raise SERError(f"--speaker-pattern {speaker_pattern!r}: invalid regex ({exc})") from exc
    exts = _extensions(extensions)
    speaker_lists = {"train": _as_list(train_speakers), "val": _as_list(val_speakers),
                     "test": _as_list(test_speakers)}
    split_dirs = _split_dirs(input_dir)
    if mode == "pre_split" or (mode == "auto" and split_dirs):
        missing = [s for s in SPLITS if s not in split_dirs]
        if missing:
            raise SERError(f"{input_dir}: split layout needs train/ val/ test/ folders; missing {missing}")
        layout = "pre_split"
    else:
        layout = "flat"
    transcripts = {}
    for sidecar in [input_dir / "transcripts.csv"] + [d / "transcripts.csv" for d in split_dirs.values()]:
        if sidecar.exists():
            transcripts.update(read_transcripts_csv(sidecar))
    dropped, unlabelled, warnings, dropped_speakers = Counter(), [], [], Counter()
    if layout == "pre_split":
        split_rows = {s: _scan_label_tree(split_dirs[s], exts, resolver, speaker_re, transcripts, dropped,
                                          unlabelled) for s in SPLITS}
        rule = {"type": "pre_split", **{s: str(split_dirs[s]) for s in SPLITS},
                "description": "given by the train/ val/ test/ folders"}
    else:
        rows = _scan_label_tree(input_dir, exts, resolver, speaker_re, transcripts, dropped, unlabelled)
        if not rows:
            raise SERError(f"{input_dir}: no audio files ({', '.join(exts)}) in label folders "
                           f"(dropped label folders: {dict(dropped)})")
        # filter bad audio before splitting so the split sees the real rows
        rows, skipped, n_short = _check_rows_audio(rows, min_duration_sec, True, strict, "audio")
        split_rows, rule = _split_flat(rows, ratios, seed, speaker_lists, warnings, dropped_speakers,
                                       speakers_from_pattern=speaker_re is not None)
    skipped_all, short_all = [], 0
    if layout == "pre_split":
        for s in SPLITS:
            split_rows[s], sk, sh = _check_rows_audio(split_rows[s], min_duration_sec, True, strict, f"audio {s}")
            skipped_all += sk
            short_all += sh
    else:
        skipped_all, short_all = skipped, n_short
    if unlabelled:
        warnings.append(f"{len(unlabelled)} audio file(s) outside any label folder were ignored, "
                        f"e.g. {unlabelled[:3]}")
    source_dataset = source_dataset or Path(output_dir).name
    for s in SPLITS:
        for r in split_rows[s]:
            r["source_dataset"] = source_dataset
            if language:
                r["language"] = language
    all_rows = [r for s in SPLITS for r in split_rows[s]]
    columns = _order_columns(MANIFEST_HEAD, all_rows)
    if "file_id" in columns:  # keep file_id last, after the common columns
        columns = [c for c in columns if c != "file_id"] + ["file_id"]
    summary = {"dataset": "label_folders", "layout": layout, "mode": mode, "source_dataset": source_dataset,
               "language": language or None, "input_dir": str(input_dir.resolve()),
               "created_by": "ser build-manifest", "use_iemocap_map": use_iemocap_map,
               "allowed_labels": allowed, "label_map_json": label_map, "speaker_pattern": speaker_pattern or None,
               "transcripts_sidecar": bool(transcripts), "split_rule": rule,
               "dropped_speakers": dict(dropped_speakers)}
    expected = allowed or sorted({r["label"] for r in all_rows})
    return _write_manifest(output_dir, split_rows, columns, labels=expected, summary=summary,
                           skipped=skipped_all, dropped=dropped, n_short=short_all, min_duration_sec=min_duration_sec,
                           allow_speaker_overlap=allow_speaker_overlap, warnings=warnings)


# ----------------------------------------------------------------------------- CASIA
def prepare_casia(*, raw_dir, output_dir, preset: str = "4class", train_speakers="liuchanhg,wangzhe",
                  val_speakers="zhaoquanyin", test_speakers="ZhaoZuoxiang", min_duration_sec: float = 0.2,
                  extensions=DEFAULT_EXTENSIONS, allow_speaker_overlap: bool = False, strict: bool = False,
                  source_dataset: str | None = None, language: str = "zh") -> ManifestResult:
    """CASIA (`<speaker>/<emotion>/<id>.wav`, optional `transcripts.csv`) -> speaker-split manifests."""
    if preset not in CASIA_PRESETS:
        raise SERError(f"--preset {preset!r}: choose one of {sorted(CASIA_PRESETS)}")
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise SERError(f"{raw_dir}: CASIA raw dir not found")
    mapping = CASIA_PRESETS[preset]
    groups = {"train": _as_list(train_speakers), "val": _as_list(val_speakers), "test": _as_list(test_speakers)}
    where = _disjoint(groups, "speaker")
    transcripts = read_transcripts_csv(raw_dir / "transcripts.csv") if (raw_dir / "transcripts.csv").exists() else {}
    exts = _extensions(extensions)
    split_rows = {s: [] for s in SPLITS}
    dropped, dropped_speakers, found = Counter(), Counter(), set()
    rows = []
    for spk_dir in sorted(p for p in raw_dir.iterdir() if p.is_dir() and not _is_hidden(p)):
        found.add(spk_dir.name)
        for emo_dir in sorted(p for p in spk_dir.iterdir() if p.is_dir() and not _is_hidden(p)):
            files = _audio_files(emo_dir, exts)
            code = mapping.get(emo_dir.name.lower())
            if code is None:
                dropped[emo_dir.name.lower()] += len(files)
                continue
            if spk_dir.name not in where:
                dropped_speakers[spk_dir.name] += len(files)
                continue
            for f in files:
                rows.append({"path": str(f.resolve()), "label": code, "source_label": emo_dir.name.lower(),
                             "duration_sec": None, "speaker": spk_dir.name, "file_id": f.stem,
                             "transcript": (transcripts.get(f.stem, {}).get("text") or "").strip()})
    missing = sorted(set(where) - found)
    if missing:
        raise SERError(f"{raw_dir}: speaker folder(s) {missing} not found (found {sorted(found)})")
    rows, skipped, n_short = _check_rows_audio(rows, min_duration_sec, True, strict, "CASIA audio")
    source_dataset = source_dataset or f"casia_{preset}"
    for r in rows:
        r["language"], r["source_dataset"] = language, source_dataset
        split_rows[where[r["speaker"]]].append(r)
    columns = MANIFEST_HEAD + ["speaker", "file_id", "language", "source_dataset", "transcript"]
    summary = {"dataset": "casia", "preset": preset, "label_map": mapping, "source_dataset": source_dataset,
               "language": language, "input_dir": str(raw_dir.resolve()), "created_by": "ser prepare-casia",
               "split_rule": {"type": "speaker_lists", **groups, "description": "speaker-independent: " + " / ".join(
                   f"{s} {','.join(groups[s])}" for s in SPLITS)},
               "dropped_speakers": dict(dropped_speakers)}
    return _write_manifest(output_dir, split_rows, columns, labels=sorted(set(mapping.values())), summary=summary,
                           skipped=skipped, dropped=dropped, n_short=n_short, min_duration_sec=min_duration_sec,
                           allow_speaker_overlap=allow_speaker_overlap)


# ----------------------------------------------------------------------------- RAVDESS
_RAVDESS_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")


def prepare_ravdess(*, raw_dir, output_dir, preset: str = "4class", train_actors="1-18", val_actors="19-21",
                    test_actors="22-24", min_duration_sec: float = 0.2, allow_speaker_overlap: bool = False,
                    strict: bool = False, source_dataset: str | None = None) -> ManifestResult:
    """RAVDESS speech (`Actor_NN/03-01-EE-II-SS-RR-NN.wav`, 48 kHz, some stereo) -> actor-split manifests."""
    if preset not in RAVDESS_PRESETS:
        raise SERError(f"--preset {preset!r}: choose one of {sorted(RAVDESS_PRESETS)}")
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise SERError(f"{raw_dir}: RAVDESS raw dir not found")
    mapping = RAVDESS_PRESETS[preset]
    groups = {"train": _parse_ranges(train_actors, "--train-actors"),
              "val": _parse_ranges(val_actors, "--val-actors"), "test": _parse_ranges(test_actors, "--test-actors")}
    where = _disjoint(groups, "actor")
    rows, dropped, dropped_speakers, bad_names = [], Counter(), Counter(), []
    for f in _audio_files(raw_dir, (".wav",)):
        m = _RAVDESS_NAME.match(f.stem)
        if not m:
            bad_names.append(str(f))
            continue
        modality, channel, emo, intensity, statement, _rep, actor = m.groups()
        word = RAVDESS_EMOTIONS.get(emo, emo)
        if modality != "03" or channel != "01":
            dropped[f"not audio-only speech (modality {modality}, channel {channel})"] += 1
            continue
        if emo not in mapping:
            dropped[word] += 1
            continue
        if int(actor) not in where:
            dropped_speakers[f"Actor_{actor}"] += 1
            continue
        rows.append({"path": str(f.resolve()), "label": mapping[emo], "source_label": word, "duration_sec": None,
                     "actor_id": int(actor), "file_id": f.stem, "speaker": f"Actor_{actor}",
                     "intensity": "normal" if intensity == "01" else "strong",
                     "transcript": RAVDESS_STATEMENTS.get(statement, "")})
    if not rows:
        raise SERError(f"{raw_dir}: no RAVDESS speech files (Actor_NN/03-01-EE-II-SS-RR-NN.wav) found")
    rows, skipped, n_short = _check_rows_audio(rows, min_duration_sec, True, strict, "RAVDESS audio")
    source_dataset = source_dataset or f"ravdess_{preset}"
    split_rows = {s: [] for s in SPLITS}
    for r in rows:
        r["language"], r["source_dataset"] = "en", source_dataset
        split_rows[where[r["actor_id"]]].append(r)
    columns = MANIFEST_HEAD + ["actor_id", "file_id"] + COMMON_COLUMNS + ["intensity"]
    warnings = ([f"{len(bad_names)} wav file(s) without a RAVDESS name ignored, e.g. {bad_names[:3]}"]
                if bad_names else [])
    summary = {"dataset": "ravdess", "preset": preset,
               "label_map": {RAVDESS_EMOTIONS[k]: v for k, v in mapping.items()},
               "source_dataset": source_dataset, "language": "en", "input_dir": str(raw_dir.resolve()),
               "created_by": "ser prepare-ravdess",
               "split_rule": {"type": "actors", **groups, "description": "speaker-independent by actor: " + " / ".join(
                   f"{s} {_as_ranges(groups[s])}" for s in SPLITS)},
               "dropped_speakers": dict(dropped_speakers)}
    return _write_manifest(output_dir, split_rows, columns, labels=sorted(set(mapping.values())), summary=summary,
                           skipped=skipped, dropped=dropped, n_short=n_short, min_duration_sec=min_duration_sec,
                           allow_speaker_overlap=allow_speaker_overlap, warnings=warnings)


def _as_ranges(nums: list[int]) -> str:
    if not nums:
        return "-"
    out, start, prev = [], nums[0], nums[0]
    for n in nums[1:] + [None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        out.append(f"{start}-{prev}" if prev != start else f"{start}")
        if n is not None:
            start = prev = n
    return ",".join(out)


# ----------------------------------------------------------------------------- ESD
_ESD_SPEAKER = re.compile(r"^\d{4}$")


def _read_esd_transcripts(spk_dir: Path) -> dict[str, str]:
    """`<spk>/<spk>.txt` lines `0011_000001<TAB>text<TAB>Emotion` -> {file_id: text}."""
    out = {}
    txt = spk_dir / f"{spk_dir.name}.txt"
    if not txt.exists():
        return out
    raw = txt.read_bytes()
    for enc in ("utf-8-sig", "utf-16", "gb18030", "latin-1"):
        try:
            text = raw.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    for line in text.splitlines():
        parts = line.strip().split("\t")
        if len(parts) >= 2 and parts[0]:
            out[parts[0].strip()] = parts[1].strip()
    return out


def prepare_esd(*, raw_dir, output_dir, preset: str = "4class", train_ratio: float = 0.8, val_ratio: float = 0.1,
                test_ratio: float = 0.1, seed: int = 42, min_duration_sec: float = 0.2,
                extensions=DEFAULT_EXTENSIONS, force_speaker_split: bool = False,
                allow_unknown_speaker: bool = False, allow_speaker_overlap: bool = False, strict: bool = False,
                source_dataset: str | None = None) -> ManifestResult:
    """ESD (`<speaker 0001-0020>/<Emotion>/[train|evaluation|test/]*.wav`) -> speaker-split manifests.

    Speakers 0001-0010 are Mandarin, 0011-0020 English. Speakers are assigned to splits near the
    ratios (stratified by label); `force_speaker_split` is accepted for compatibility (speaker
    splits are always used). Files outside a speaker folder are an error unless
    `allow_unknown_speaker`, which puts them in train (never in val/test).
    """
    if preset not in ESD_PRESETS:
        raise SERError(f"--preset {preset!r}: choose one of {sorted(ESD_PRESETS)}")
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise SERError(f"{raw_dir}: ESD raw dir not found")
    ratios = _check_ratios(train_ratio, val_ratio, test_ratio)
    codes = ESD_PRESETS[preset]
    exts = _extensions(extensions)
    resolver = _LabelResolver(None, False, codes)
    rows, dropped, unknown_speaker = [], Counter(), []
    transcripts_by_spk = {}
    for f in _audio_files(raw_dir, exts):
        parts = f.relative_to(raw_dir).parts[:-1]
        spk = next((p for p in parts if _ESD_SPEAKER.match(p)), "")
        label_part = next((p for p in reversed(parts) if resolver.code(p)), None)
        if label_part is None:
            dropped[parts[-1] if parts else "<no folder>"] += 1
            continue
        code = resolver.code(label_part)
        if resolver.keep(code):
            dropped[label_part.lower()] += 1
            continue
        if spk and spk not in transcripts_by_spk:
            transcripts_by_spk[spk] = _read_esd_transcripts(raw_dir / spk) if (raw_dir / spk).is_dir() else {}
        if not spk:
            unknown_speaker.append(str(f))
        rows.append({"path": str(f.resolve()), "label": code, "source_label": label_part.lower(),
                     "duration_sec": None, "speaker": spk, "file_id": f.stem,
                     "language": ("zh" if int(spk) <= 10 else "en") if spk else "",
                     "transcript": transcripts_by_spk.get(spk, {}).get(f.stem, "")})
    if not rows:
        raise SERError(f"{raw_dir}: no ESD audio found (<speaker>/<Emotion>/*.wav)")
    if unknown_speaker and not allow_unknown_speaker:
        raise SERError(f"{raw_dir}: {len(unknown_speaker)} file(s) are not under a 4-digit speaker folder, e.g. "
                       f"{unknown_speaker[:3]}; pass --allow-unknown-speaker to put them in train")
    rows, skipped, n_short = _check_rows_audio(rows, min_duration_sec, True, strict, "ESD audio")
    known = [r for r in rows if r["speaker"]]
    per_spk = defaultdict(Counter)
    for r in known:
        per_spk[r["speaker"]][r["label"]] += 1
    assign = speaker_split(per_spk, ratios, seed)
    split_rows = {s: [r for r in known if assign[r["speaker"]] == s] for s in SPLITS}
    split_rows["train"] += [r for r in rows if not r["speaker"]]
    source_dataset = source_dataset or f"esd_{preset}"
    for r in rows:
        r["source_dataset"] = source_dataset
    warnings = ([f"{len(unknown_speaker)} file(s) without a speaker folder put in train"] if unknown_speaker else [])
    groups = {s: sorted(k for k, v in assign.items() if v == s) for s in SPLITS}
    summary = {"dataset": "esd", "preset": preset, "source_dataset": source_dataset,
               "input_dir": str(raw_dir.resolve()), "created_by": "ser prepare-esd",
               "force_speaker_split": force_speaker_split,
               "split_rule": {"type": "speaker_stratified", "ratios": list(ratios), "seed": seed, **groups,
                              "description": f"speaker-independent, speakers assigned near ratios {list(ratios)} "
                                             f"stratified by label (seed {seed})"}}
    columns = MANIFEST_HEAD + ["speaker", "file_id", "language", "source_dataset", "transcript"]
    return _write_manifest(output_dir, split_rows, columns, labels=codes, summary=summary, skipped=skipped,
                           dropped=dropped, n_short=n_short, min_duration_sec=min_duration_sec,
                           allow_speaker_overlap=allow_speaker_overlap, warnings=warnings)


# ----------------------------------------------------------------------------- merge
MERGE_COLUMNS = ["source_dataset", "language", "speaker", "file_id", "text", "transcript"]


def merge_manifests(*, input_dirs, output_dir, deduplicate_by_path: bool = False, languages="",
                    allow_speaker_overlap: bool = False, strict: bool = False,
                    check_audio: bool = True) -> ManifestResult:
    """Concatenate the train/val/test manifests of several folders (e.g. en + zh -> multilingual).

    Adds `source_dataset,language,speaker,file_id,text,transcript` where known (`source_dataset`
    defaults to the input folder's name; `languages` optionally fills an input's missing language).
    Duplicate paths are an error unless `deduplicate_by_path` (later copies in the same split are
    dropped; a path in two splits is always an error). Speakers are compared per source dataset.
    """
    from .common import read_manifest
    dirs = [Path(d) for d in _as_list(input_dirs)]
    if len(dirs) < 1:
        raise SERError("--input-dirs: give at least one manifest folder (comma list)")
    langs = _as_list(languages)
    if langs and len(langs) != len(dirs):
        raise SERError(f"--languages: {len(langs)} value(s) for {len(dirs)} input dir(s)")
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
    skipped_all, short_all = [], 0
    for s in SPLITS:
        if check_audio:
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
    rest = [c for c in first_cols if c not in MANIFEST_HEAD and c not in MERGE_COLUMNS]
    columns = MANIFEST_HEAD + MERGE_COLUMNS + rest
    labels = sorted({r["label"] for s in SPLITS for r in split_rows[s]})
    summary = {"dataset": "merged", "created_by": "ser merge-manifests", "input_dirs": [str(d.resolve()) for d in dirs],
               "deduplicate_by_path": deduplicate_by_path, "n_deduplicated": n_dedup,
               "split_rule": {"type": "merged", "description": "each input keeps its own split: " + ", ".join(
                   d.name for d in dirs)},
               "by_source": {s: dict(Counter(r["source_dataset"] for r in split_rows[s])) for s in SPLITS},
               "speaker_key": lambda r: f"{r.get('source_dataset', '')}/{r['speaker']}" if r.get("speaker") else ""}
    return _write_manifest(output_dir, split_rows, columns, labels=labels, summary=summary, skipped=skipped_all,
                           dropped=Counter(), n_short=short_all, min_duration_sec=0.0,
                           allow_speaker_overlap=allow_speaker_overlap)


# ----------------------------------------------------------------------------- notebook views
def counts_table(summary: dict):
    """Split x label counts (display names as columns) with totals, from a summary dict or path."""
    import pandas as pd
    summary = _summary(summary)
    labels = summary["labels"]
    df = pd.DataFrame({display_name(lab): [summary["counts"][s][lab] for s in SPLITS] for lab in labels},
                      index=list(SPLITS))
    df["total"] = df.sum(axis=1)
    df.loc["all"] = df.sum(axis=0)
    return df


def speakers_table(summary: dict):
    """One row per split: number of speakers, the speakers, hours."""
    import pandas as pd
    summary = _summary(summary)
    return pd.DataFrame({"speakers": [summary["n_speakers"][s] for s in SPLITS],
                         "names": [", ".join(summary["speakers"][s]) for s in SPLITS],
                         "hours": [summary["hours"][s] for s in SPLITS]}, index=list(SPLITS))


def dropped_table(summary: dict):
    """Dropped source labels / codes with counts (largest first)."""
    import pandas as pd
    summary = _summary(summary)
    items = sorted(summary.get("dropped", {}).items(), key=lambda kv: -kv[1])
    return pd.DataFrame(items, columns=["source_label", "count"])


def source_label_table(summary: dict):
    """Split x source label counts (e.g. IEMOCAP hap and exc before the merge)."""
    import pandas as pd
    summary = _summary(summary)
    df = pd.DataFrame({s: summary["source_label_counts"][s] for s in SPLITS}).fillna(0).astype(int)
    df["all"] = df.sum(axis=1)
    return df


def language_table(summary: dict):
    """Split x (source_dataset, language) counts of a merged manifest."""
    import pandas as pd
    summary = _summary(summary)
    return pd.DataFrame({"by_source": [summary.get("by_source", {}).get(s, {}) for s in SPLITS],
                         "by_language": [summary.get("languages", {}).get(s, {}) for s in SPLITS],
                         "total": [summary["totals"][s] for s in SPLITS]}, index=list(SPLITS))


def make_demo_layouts(manifest_dir, work_dir, per_label: int = 3) -> dict:
    """Copy a few clips of a manifest into the seed's two layouts, for a demonstration.

    `work_dir/split_layout/{train,val,test}/<LABEL WORD>/` keeps the manifest's (speaker-independent)
    splits; `work_dir/flat_layout/<label word>/<file_id>.wav` has label folders only. Returns both paths.
    """
    import shutil
    from .common import read_manifest
    manifest_dir, work_dir = Path(manifest_dir), Path(work_dir)
    out = {"split_layout": work_dir / "split_layout", "flat_layout": work_dir / "flat_layout"}
    for s in SPLITS:
        df = read_manifest(manifest_dir / f"{s}.csv")
        for lab, grp in df.groupby("label"):
            picks = np.unique(np.linspace(0, len(grp) - 1, min(per_label, len(grp))).round().astype(int))
            for _, row in grp.iloc[picks].iterrows():  # spread over the split's speakers
                src = Path(row["path"])
                name = f"{row['file_id']}{src.suffix}" if "file_id" in row and row["file_id"] else src.name
                for dst in (out["split_layout"] / s / display_name(lab).upper() / name,
                            out["flat_layout"] / display_name(lab) / name):
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(src, dst)
    return out


def plot_counts(summary: dict, path=None, title: str | None = None):
    """Grouped bar chart of label counts per split; written as PNG when `path` is given."""
    from . import plots
    plt = plots.plt
    summary = _summary(summary)
    labels = summary["labels"]
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    width = 0.8 / len(SPLITS)
    x = np.arange(len(labels))
    for k, s in enumerate(SPLITS):
        vals = [summary["counts"][s][lab] for lab in labels]
        bars = ax.bar(x + (k - 1) * width, vals, width, label=f"{s} ({sum(vals)})")
        ax.bar_label(bars, fontsize=7)
    ax.set_xticks(x, [display_name(lab) for lab in labels])
    ax.set_ylabel("utterances")
    name = summary.get("source_dataset") or Path(summary.get("output_dir", "")).name
    ax.set_title(title or f"{name}: utterances per split and label")
    ax.legend()
    fig.tight_layout()
    return plots.save_figure(fig, path)


def _summary(summary):
    if isinstance(summary, ManifestResult):
        return summary.summary
    if isinstance(summary, (str, os.PathLike)):
        p = Path(summary)
        return read_json(p / "summary.json" if p.is_dir() else p)
    return summary


# ----------------------------------------------------------------------------- CLI
def _print_result(res: ManifestResult) -> int:
    s = res.summary
    print(f"wrote {res.output_dir}: " + ", ".join(f"{k} {v}" for k, v in s["totals"].items()))
    for split in SPLITS:
        print(f"  {split:5s} " + " ".join(f"{lab}={n}" for lab, n in s["counts"][split].items())
              + f"  speakers={s['n_speakers'][split]}")
    if s.get("dropped"):
        print(f"  dropped: {s['dropped']}")
    if s.get("n_skipped"):
        print(f"  skipped {s['n_skipped']} file(s) (see summary.json)")
    for w in s.get("warnings", []):
        print(f"  warning: {w}")
    return 0


def _common_flags(p, strict=True):
    p.add_argument("--allow-speaker-overlap", action="store_true",
                   help="write the manifests even if a speaker is in two splits (leaks speakers; not recommended)")
    if strict:
        p.add_argument("--strict", action="store_true", help="missing/unreadable audio is an error, not skipped")


def register_cli(subparsers) -> None:
    p = subparsers.add_parser("prepare-iemocap", help="raw IEMOCAP (Session1..5) -> session-split manifests")
    p.add_argument("--raw-dir", required=True)
    p.add_argument("--output-dir", required=True)
    p.add_argument("--preset", choices=sorted(IEMOCAP_PRESETS), default="4class")
    p.add_argument("--train-sessions", default="Session1,Session2,Session3")
    p.add_argument("--val-sessions", default="Session4")
    p.add_argument("--test-sessions", default="Session5")
    p.add_argument("--min-duration-sec", type=float, default=0.2)
    p.add_argument("--fold", type=int, default=None,
                   help="leave-one-session-out fold 1-5 (test session N, val session N-1); overrides the session lists")
    p.add_argument("--skip-audio-check", action="store_true",
                   help="do not open the wavs; durations from the evaluation timestamps")
    _common_flags(p)
    p.set_defaults(func=lambda a: _print_result(prepare_iemocap(
        raw_dir=a.raw_dir, output_dir=a.output_dir, preset=a.preset, train_sessions=a.train_sessions,
        val_sessions=a.val_sessions, test_sessions=a.test_sessions, min_duration_sec=a.min_duration_sec,
        fold=a.fold, check_audio=not a.skip_audio_check, allow_speaker_overlap=a.allow_speaker_overlap,
        strict=a.strict)))

    p = subparsers.add_parser("prepare-casia", help="CASIA <speaker>/<emotion>/*.wav -> speaker-split manifests")
    p.add_argument("--raw-dir", required=True)
    p.add_argument("--output-dir", required=True)
    p.add_argument("--preset", choices=sorted(CASIA_PRESETS), default="4class")
    p.add_argument("--train-speakers", default="liuchanhg,wangzhe")
    p.add_argument("--val-speakers", default="zhaoquanyin")
    p.add_argument("--test-speakers", default="ZhaoZuoxiang")
    p.add_argument("--min-duration-sec", type=float, default=0.2)
    _common_flags(p)
    p.set_defaults(func=lambda a: _print_result(prepare_casia(
        raw_dir=a.raw_dir, output_dir=a.output_dir, preset=a.preset, train_speakers=a.train_speakers,
        val_speakers=a.val_speakers, test_speakers=a.test_speakers, min_duration_sec=a.min_duration_sec,
        allow_speaker_overlap=a.allow_speaker_overlap, strict=a.strict)))

    p = subparsers.add_parser("prepare-ravdess", help="RAVDESS Actor_01..Actor_24 -> actor-split manifests")
    p.add_argument("--raw-dir", required=True, help="folder holding Actor_01..Actor_24")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--preset", choices=sorted(RAVDESS_PRESETS), default="4class")
    p.add_argument("--train-actors", default="1-18")
    p.add_argument("--val-actors", default="19-21")
    p.add_argument("--test-actors", default="22-24")
    p.add_argument("--min-duration-sec", type=float, default=0.2)
    _common_flags(p)
    p.set_defaults(func=lambda a: _print_result(prepare_ravdess(
        raw_dir=a.raw_dir, output_dir=a.output_dir, preset=a.preset, train_actors=a.train_actors,
        val_actors=a.val_actors, test_actors=a.test_actors, min_duration_sec=a.min_duration_sec,
        allow_speaker_overlap=a.allow_speaker_overlap, strict=a.strict)))

    p = subparsers.add_parser("prepare-esd", help="ESD <speaker>/<Emotion>/*.wav -> speaker-split manifests")
    p.add_argument("--raw-dir", required=True)
    p.add_argument("--output-dir", required=True)
    p.add_argument("--preset", choices=sorted(ESD_PRESETS), default="4class")
    p.add_argument("--train-ratio", type=float, default=0.8)
    p.add_argument("--val-ratio", type=float, default=0.1)
    p.add_argument("--test-ratio", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--min-duration-sec", type=float, default=0.2)
    p.add_argument("--extensions", default=DEFAULT_EXTENSIONS, help="comma list of audio file extensions")
    p.add_argument("--force-speaker-split", action="store_true",
                   help="accepted for compatibility: speaker-independent splits are always used")
    p.add_argument("--allow-unknown-speaker", action="store_true",
                   help="files outside a speaker folder go to train instead of being an error")
    _common_flags(p)
    p.set_defaults(func=lambda a: _print_result(prepare_esd(
        raw_dir=a.raw_dir, output_dir=a.output_dir, preset=a.preset, train_ratio=a.train_ratio,
        val_ratio=a.val_ratio, test_ratio=a.test_ratio, seed=a.seed, min_duration_sec=a.min_duration_sec,
        extensions=a.extensions, force_speaker_split=a.force_speaker_split,
        allow_unknown_speaker=a.allow_unknown_speaker, allow_speaker_overlap=a.allow_speaker_overlap,
        strict=a.strict)))

    p = subparsers.add_parser("build-manifest", help="label folders (split, flat or speaker layout) -> manifests")
    p.add_argument("--input-dir", required=True)
    p.add_argument("--output-dir", required=True)
    p.add_argument("--mode", choices=["auto", "pre_split", "flat"], default="auto",
                   help="auto: train/val/test subfolders first, else flat")
    p.add_argument("--train-ratio", type=float, default=0.8)
    p.add_argument("--val-ratio", type=float, default=0.1)
    p.add_argument("--test-ratio", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--label-map-json", default="", help="JSON file (or inline JSON): source label -> canonical")
    p.add_argument("--use-iemocap-map", action="store_true",
                   help="keep only the IEMOCAP 4-class labels ang/hap(+exc)/neu/sad")
    p.add_argument("--allowed-labels", default="", help="comma list of words or codes; empty keeps all")
    p.add_argument("--extensions", default=DEFAULT_EXTENSIONS, help="comma list of audio file extensions")
    p.add_argument("--min-duration-sec", type=float, default=0.0)
    p.add_argument("--speaker-pattern", default="",
                   help="regex on the file name giving the speaker (group 'speaker', else group 1, else the match)")
    p.add_argument("--train-speakers", default="", help="explicit speaker split (flat layouts); empty = automatic")
    p.add_argument("--val-speakers", default="")
    p.add_argument("--test-speakers", default="")
    p.add_argument("--language", default="", help="value of the language column (e.g. en, zh)")
    p.add_argument("--source-dataset", default="",
                   help="value of the source_dataset column (default: output folder name)")
    _common_flags(p)
    p.set_defaults(func=lambda a: _print_result(build_manifest(
        input_dir=a.input_dir, output_dir=a.output_dir, mode=a.mode, train_ratio=a.train_ratio,
        val_ratio=a.val_ratio, test_ratio=a.test_ratio, seed=a.seed, label_map_json=a.label_map_json,
        use_iemocap_map=a.use_iemocap_map, allowed_labels=a.allowed_labels, extensions=a.extensions,
        min_duration_sec=a.min_duration_sec, speaker_pattern=a.speaker_pattern,
        train_speakers=a.train_speakers, val_speakers=a.val_speakers, test_speakers=a.test_speakers,
        language=a.language, source_dataset=a.source_dataset, allow_speaker_overlap=a.allow_speaker_overlap,
        strict=a.strict)))

    p = subparsers.add_parser("merge-manifests", help="concatenate manifest folders (e.g. en + zh)")
    p.add_argument("--input-dirs", required=True, help="comma list of folders holding train/val/test.csv")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--deduplicate-by-path", action="store_true")
    p.add_argument("--languages", default="", help="comma list, one per input dir: fills a missing language")
    _common_flags(p)
    p.set_defaults(func=lambda a: _print_result(merge_manifests(
        input_dirs=a.input_dirs, output_dir=a.output_dir, deduplicate_by_path=a.deduplicate_by_path,
        languages=a.languages, allow_speaker_overlap=a.allow_speaker_overlap, strict=a.strict)))
