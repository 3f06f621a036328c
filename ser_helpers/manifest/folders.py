"""Label folders -> manifests (`build_manifest`): split layout, flat layout, speaker folders; `--mode auto`.

Taught in notebook 02 (`02_folder_manifest.ipynb`); CLI `ser build-manifest`.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..common import MANIFEST_HEAD, SERError, read_json
from .base import DEFAULT_EXTENSIONS, SPLITS, ManifestConfig, ManifestResult, _as_list, _audio_files, _extensions
from .base import _is_hidden, read_transcripts_csv
from .labels import _LabelResolver, parse_allowed_labels
from .probe import _check_rows_audio
from .split import _check_ratios, _split_flat
from .write import _order_columns, _write_manifest


SPLIT_DIR_NAMES = {"train": ("train", "training"), "val": ("val", "valid", "validation", "dev", "evaluation"),
                   "test": ("test", "testing")}
LAYOUT_MODES = ("auto", "pre_split", "flat")


@dataclass
class BuildManifestConfig(ManifestConfig):
    """Settings of `build_manifest`, each default written once, here (the `ser build-manifest` flags; notebook 02's
    parameters). Speaker lists are comma strings or lists; `allowed_labels` a comma string or a list."""
    mode: str = field(default="auto", metadata={
        "choices": LAYOUT_MODES, "help": "auto: train/val/test subfolders first, else flat"})
    train_ratio: float = 0.8
    val_ratio: float = 0.1
    test_ratio: float = 0.1
    seed: int = 42
    label_map_json: str = field(default="", metadata={
        "help": "JSON file (or inline JSON): source label -> canonical"})
    use_iemocap_map: bool = field(default=False, metadata={
        "help": "keep only the IEMOCAP 4-class labels ang/hap(+exc)/neu/sad"})
    allowed_labels: str | list = field(default="", metadata={"help": "comma list of words or codes; empty keeps all"})
    extensions: str = field(default=DEFAULT_EXTENSIONS, metadata={"help": "comma list of audio file extensions"})
    min_duration_sec: float = 0.0
    speaker_pattern: str = field(default="", metadata={
        "help": "regex on the file name giving the speaker (group 'speaker', else group 1, else the match)"})
    train_speakers: str | list = field(default="", metadata={
        "help": "explicit speaker split (flat layouts); empty = automatic"})
    val_speakers: str | list = ""
    test_speakers: str | list = ""
    language: str = field(default="", metadata={"help": "value of the language column (e.g. en, zh)"})
    source_dataset: str = field(default="", metadata={
        "help": "value of the source_dataset column (default: output folder name)"})


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


def build_manifest(*, input_dir, output_dir, config: BuildManifestConfig | None = None,
                   **settings) -> ManifestResult:
    """Label folders -> manifests. The settings are a `BuildManifestConfig` (`config=`), or its fields as keyword
    arguments, which also override a given config's.

    Layouts: split (`train/ val/ test/` holding label folders), flat (label folders) and speaker
    folders holding label folders (CASIA). `mode='auto'` uses the split layout when train/val/test
    folders exist. Flat layouts are split speaker-independently when speakers are known (explicit
    lists, else assigned near the ratios, stratified by label), else stratified random with a
    warning. A `transcripts.csv` sidecar (`file_id,speaker,emotion,text`) fills `transcript`.
    """
    cfg = BuildManifestConfig.resolve(config, settings)
    input_dir = Path(input_dir)
    if not input_dir.is_dir():
        raise SERError(f"{input_dir}: input dir not found")
    if cfg.mode not in LAYOUT_MODES:
        raise SERError(f"--mode {cfg.mode!r}: choose auto, pre_split or flat")
    ratios = _check_ratios(cfg.train_ratio, cfg.val_ratio, cfg.test_ratio)
    label_map = _read_label_map(cfg.label_map_json)
    allowed = parse_allowed_labels(cfg.allowed_labels)
    resolver = _LabelResolver(label_map, cfg.use_iemocap_map, allowed)
    speaker_re = _speaker_regex(cfg.speaker_pattern)
    exts = _extensions(cfg.extensions)
    speaker_lists = {s: _as_list(getattr(cfg, f"{s}_speakers")) for s in SPLITS}
    split_dirs = _split_dirs(input_dir)
    layout = _layout(input_dir, cfg.mode, split_dirs)
    transcripts = {}
    for sidecar in [input_dir / "transcripts.csv"] + [d / "transcripts.csv" for d in split_dirs.values()]:
        if sidecar.exists():
            transcripts.update(read_transcripts_csv(sidecar))
    dropped, unlabelled, warnings, dropped_speakers = Counter(), [], [], Counter()
    if layout == "pre_split":
        split_rows, rule, skipped_all, short_all = _scan_pre_split(split_dirs, exts, resolver, speaker_re, transcripts,
                                                                   dropped, unlabelled, cfg.min_duration_sec,
                                                                   cfg.strict)
    else:
        rows = _scan_label_tree(input_dir, exts, resolver, speaker_re, transcripts, dropped, unlabelled)
        if not rows:
            raise SERError(f"{input_dir}: no audio files ({', '.join(exts)}) in label folders "
                           f"(dropped label folders: {dict(dropped)})")
        # filter bad audio before splitting so the split sees the real rows
        rows, skipped_all, short_all = _check_rows_audio(rows, cfg.min_duration_sec, True, cfg.strict, "audio")
        split_rows, rule = _split_flat(rows, ratios, cfg.seed, speaker_lists, warnings, dropped_speakers,
                                       speakers_from_pattern=speaker_re is not None)
    if unlabelled:
        warnings.append(f"{len(unlabelled)} audio file(s) outside any label folder were ignored, "
                        f"e.g. {unlabelled[:3]}")
    source_dataset = cfg.source_dataset or Path(output_dir).name
    for s in SPLITS:
        for r in split_rows[s]:
            r["source_dataset"] = source_dataset
            if cfg.language:
                r["language"] = cfg.language
    all_rows = [r for s in SPLITS for r in split_rows[s]]
    columns = _order_columns(MANIFEST_HEAD, all_rows)
    if "file_id" in columns:  # keep file_id last, after the common columns
        columns = [c for c in columns if c != "file_id"] + ["file_id"]
    summary = {"dataset": "label_folders", "layout": layout, "mode": cfg.mode, "source_dataset": source_dataset,
               "language": cfg.language or None, "input_dir": str(input_dir.resolve()),
               "created_by": "ser build-manifest", "use_iemocap_map": cfg.use_iemocap_map,
               "allowed_labels": allowed, "label_map_json": label_map, "speaker_pattern": cfg.speaker_pattern or None,
               "transcripts_sidecar": bool(transcripts), "split_rule": rule,
               "dropped_speakers": dict(dropped_speakers)}
    expected = allowed or sorted({r["label"] for r in all_rows})
    return _write_manifest(output_dir, split_rows, columns, labels=expected, summary=summary,
                           skipped=skipped_all, dropped=dropped, n_short=short_all,
                           min_duration_sec=cfg.min_duration_sec, allow_speaker_overlap=cfg.allow_speaker_overlap,
                           warnings=warnings)


def _read_label_map(label_map_json: str) -> dict | None:
    """`--label-map-json`: a JSON file or inline JSON object (source label -> label); None when empty."""
    if not label_map_json:
        return None
    lm_path = Path(label_map_json)
    try:
        label_map = read_json(lm_path) if lm_path.exists() else json.loads(label_map_json)
    except (json.JSONDecodeError, OSError) as exc:
        raise SERError(f"--label-map-json {label_map_json!r}: not a JSON file or JSON object ({exc})") from exc
    if not isinstance(label_map, dict):
        raise SERError(f"--label-map-json {label_map_json!r}: expected a JSON object source label -> label")
    return label_map


def _speaker_regex(speaker_pattern: str):
    """`--speaker-pattern` compiled, or None when empty."""
    if not speaker_pattern:
        return None
    try:
        return re.compile(speaker_pattern)
    except re.error as exc:
        raise SERError(f"--speaker-pattern {speaker_pattern!r}: invalid regex ({exc})") from exc


def _layout(input_dir: Path, mode: str, split_dirs: dict[str, Path]) -> str:
    """'pre_split' (train/ val/ test/ folders, all three needed) or 'flat'."""
    if mode == "pre_split" or (mode == "auto" and split_dirs):
        missing = [s for s in SPLITS if s not in split_dirs]
        if missing:
            raise SERError(f"{input_dir}: split layout needs train/ val/ test/ folders; missing {missing}")
        return "pre_split"
    return "flat"


def _scan_pre_split(split_dirs, exts, resolver, speaker_re, transcripts, dropped, unlabelled, min_duration_sec,
                    strict):
    """Rows of the split layout: each of train/ val/ test/ scanned and audio-checked on its own."""
    split_rows = {s: _scan_label_tree(split_dirs[s], exts, resolver, speaker_re, transcripts, dropped,
                                      unlabelled) for s in SPLITS}
    rule = {"type": "pre_split", **{s: str(split_dirs[s]) for s in SPLITS},
            "description": "given by the train/ val/ test/ folders"}
    skipped_all, short_all = [], 0
    for s in SPLITS:
        split_rows[s], sk, sh = _check_rows_audio(split_rows[s], min_duration_sec, True, strict, f"audio {s}")
        skipped_all += sk
        short_all += sh
    return split_rows, rule, skipped_all, short_all
