"""IEMOCAP: the raw release (Session1..5, EmoEvaluation, transcriptions, wavs) -> session-split manifests.

Taught in notebook 01 (`01_iemocap_manifest.ipynb`); CLI `ser prepare-iemocap`.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ..common import MANIFEST_HEAD, SERError
from .base import (COMMON_COLUMNS, SPLITS, ManifestConfig, ManifestResult, _as_list, _is_hidden, _raw_corpus_dir,
                   _read_text)
from .probe import _check_rows_audio
from .split import _disjoint
from .write import _write_manifest


IEMOCAP_PRESETS = {
    "4class": {"ang": "ang", "hap": "hap", "exc": "hap", "neu": "neu", "sad": "sad"},
    "5class_fru": {"ang": "ang", "hap": "hap", "exc": "hap", "neu": "neu", "sad": "sad", "fru": "fru"},
}



@dataclass
class IemocapConfig(ManifestConfig):
    """Settings of `prepare_iemocap`, each default written once, here (the `ser prepare-iemocap` flags; notebook 01's
    parameters). Session lists are comma strings or lists (`Session1` or `1`)."""
    preset: str = field(default="4class", metadata={"choices": sorted(IEMOCAP_PRESETS)})
    train_sessions: str | list = "Session1,Session2,Session3"
    val_sessions: str | list = "Session4"
    test_sessions: str | list = "Session5"
    min_duration_sec: float = 0.2
    fold: int | None = field(default=None, metadata={
        "argparse": {"type": int},
        "help": "leave-one-session-out fold 1-5 (test session N, val session N-1); overrides the session lists"})
    skip_audio_check: bool = field(default=False, metadata={
        "help": "do not open the wavs; durations from the evaluation timestamps"})
    source_dataset: str | None = field(default=None, metadata={"cli": False})  # None: iemocap_<preset>
    language: str = field(default="en", metadata={"cli": False})


# an EmoEvaluation summary line, a transcription line, an utterance id (Ses01F_impro01_M000)
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


def prepare_iemocap(*, raw_dir, output_dir, config: IemocapConfig | None = None, **settings) -> ManifestResult:
    """Raw IEMOCAP (Session1..5) -> session-split manifests with the preset's labels.

    The settings are an `IemocapConfig` (`config=`), or its fields as keyword arguments, which also override a given
    config's. `fold` (1-5) replaces the session lists by that leave-one-session-out fold. With
    `skip_audio_check=True` durations come from the evaluation timestamps and wavs are not opened.
    """
    cfg = IemocapConfig.resolve(config, settings)
    raw_dir = _raw_corpus_dir(raw_dir, cfg.preset, IEMOCAP_PRESETS, "IEMOCAP")
    sessions = {"train": cfg.train_sessions, "val": cfg.val_sessions, "test": cfg.test_sessions}
    if cfg.fold is not None:
        folds = iemocap_loso_folds()
        if not 1 <= int(cfg.fold) <= len(folds):
            raise SERError(f"--fold {cfg.fold}: choose 1..{len(folds)}")
        sessions = {s: folds[int(cfg.fold) - 1][f"{s}_sessions"] for s in SPLITS}
    groups = {s: [_session_name(name) for name in _as_list(sessions[s])] for s in SPLITS}
    session_split = _disjoint(groups, "session")
    mapping = IEMOCAP_PRESETS[cfg.preset]
    rows = read_iemocap(raw_dir, sorted(session_split, key=lambda s: int(s[7:])))
    all_codes = dict(sorted(Counter(r["code"] for r in rows).items()))
    dropped = Counter(r["code"] for r in rows if r["code"] not in mapping)
    kept = []
    for r in rows:
        if r["code"] in mapping:
            row = {k: v for k, v in r.items() if k not in ("code", "eval_file")}
            row.update(label=mapping[r["code"]], source_label=r["code"])
            kept.append(row)
    kept, skipped, n_short = _check_rows_audio(kept, cfg.min_duration_sec, not cfg.skip_audio_check, cfg.strict,
                                               "IEMOCAP audio")
    source_dataset = cfg.source_dataset or f"iemocap_{cfg.preset}"
    for r in kept:
        r["language"], r["source_dataset"] = cfg.language, source_dataset
    split_rows = {s: [r for r in kept if session_split[r["session"]] == s] for s in SPLITS}
    columns = MANIFEST_HEAD + ["session", "dialog_id", "utterance_id"] + COMMON_COLUMNS + ["dialog_type"]
    summary = {
        "dataset": "iemocap", "preset": cfg.preset, "label_map": mapping, "source_dataset": source_dataset,
        "language": cfg.language, "input_dir": str(raw_dir.resolve()), "created_by": "ser prepare-iemocap",
        "check_audio": not cfg.skip_audio_check,
        "split_rule": {"type": "sessions", "fold": cfg.fold, **{s: groups[s] for s in SPLITS},
                       "description": f"speaker-independent by session: train {','.join(groups['train'])} / "
                                      f"val {','.join(groups['val'])} / test {','.join(groups['test'])}"},
        "dialog_types": {s: dict(Counter(r["dialog_type"] for r in split_rows[s])) for s in SPLITS},
        "per_session": dict(sorted(Counter(r["session"] for r in kept).items(), key=lambda kv: int(kv[0][7:]))),
        "all_codes": all_codes,
    }
    labels = sorted(set(mapping.values()))
    return _write_manifest(output_dir, split_rows, columns, labels=labels, summary=summary, skipped=skipped,
                           dropped=dropped, n_short=n_short, min_duration_sec=cfg.min_duration_sec,
                           allow_speaker_overlap=cfg.allow_speaker_overlap)
