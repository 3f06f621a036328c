"""ESD (`<speaker 0001-0020>/<Emotion>/[train|evaluation|test/]*.wav`) -> speaker-split manifests.

Not run in the notebooks (the corpus is not bundled); notebook 02 (`02_folder_manifest.ipynb`)
teaches the same speaker split of label folders. CLI `ser prepare-esd`.
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..common import MANIFEST_HEAD, SERError
from .base import (DEFAULT_EXTENSIONS, SPLITS, ManifestConfig, ManifestResult, _audio_files, _extensions,
                   _raw_corpus_dir)
from .labels import _LabelResolver
from .probe import _check_rows_audio
from .split import _check_ratios, speaker_split
from .write import _write_manifest


ESD_PRESETS = {"4class": ["ang", "hap", "neu", "sad"], "5class": ["ang", "hap", "neu", "sad", "sur"]}
_ESD_SPEAKER = re.compile(r"^\d{4}$")


@dataclass
class EsdConfig(ManifestConfig):
    """Settings of `prepare_esd`, each default written once, here (the `ser prepare-esd` flags)."""
    preset: str = field(default="4class", metadata={"choices": sorted(ESD_PRESETS)})
    train_ratio: float = 0.8
    val_ratio: float = 0.1
    test_ratio: float = 0.1
    seed: int = 42
    min_duration_sec: float = 0.2
    extensions: str = field(default=DEFAULT_EXTENSIONS, metadata={"help": "comma list of audio file extensions"})
    force_speaker_split: bool = field(default=False, metadata={
        "help": "accepted for compatibility: speaker-independent splits are always used"})
    allow_unknown_speaker: bool = field(default=False, metadata={
        "help": "files outside a speaker folder go to train instead of being an error"})
    source_dataset: str | None = field(default=None, metadata={"cli": False})  # None: esd_<preset>


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


def prepare_esd(*, raw_dir, output_dir, config: EsdConfig | None = None, **settings) -> ManifestResult:
    """ESD (`<speaker 0001-0020>/<Emotion>/[train|evaluation|test/]*.wav`) -> speaker-split manifests.

    The settings are an `EsdConfig` (`config=`), or its fields as keyword arguments, which also override a given
    config's. Speakers 0001-0010 are Mandarin, 0011-0020 English. Speakers are assigned to splits near the
    ratios (stratified by label); `force_speaker_split` is accepted for compatibility (speaker
    splits are always used). Files outside a speaker folder are an error unless
    `allow_unknown_speaker`, which puts them in train (never in val/test).
    """
    cfg = EsdConfig.resolve(config, settings)
    raw_dir = _raw_corpus_dir(raw_dir, cfg.preset, ESD_PRESETS, "ESD")
    ratios = _check_ratios(cfg.train_ratio, cfg.val_ratio, cfg.test_ratio)
    codes = ESD_PRESETS[cfg.preset]
    exts = _extensions(cfg.extensions)
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
    if unknown_speaker and not cfg.allow_unknown_speaker:
        raise SERError(f"{raw_dir}: {len(unknown_speaker)} file(s) are not under a 4-digit speaker folder, e.g. "
                       f"{unknown_speaker[:3]}; pass --allow-unknown-speaker to put them in train")
    rows, skipped, n_short = _check_rows_audio(rows, cfg.min_duration_sec, True, cfg.strict, "ESD audio")
    known = [r for r in rows if r["speaker"]]
    per_spk = defaultdict(Counter)
    for r in known:
        per_spk[r["speaker"]][r["label"]] += 1
    assign = speaker_split(per_spk, ratios, cfg.seed)
    split_rows = {s: [r for r in known if assign[r["speaker"]] == s] for s in SPLITS}
    split_rows["train"] += [r for r in rows if not r["speaker"]]
    source_dataset = cfg.source_dataset or f"esd_{cfg.preset}"
    for r in rows:
        r["source_dataset"] = source_dataset
    warnings = ([f"{len(unknown_speaker)} file(s) without a speaker folder put in train"] if unknown_speaker else [])
    groups = {s: sorted(k for k, v in assign.items() if v == s) for s in SPLITS}
    summary = {"dataset": "esd", "preset": cfg.preset, "source_dataset": source_dataset,
               "input_dir": str(raw_dir.resolve()), "created_by": "ser prepare-esd",
               "force_speaker_split": cfg.force_speaker_split,
               "split_rule": {"type": "speaker_stratified", "ratios": list(ratios), "seed": cfg.seed, **groups,
                              "description": f"speaker-independent, speakers assigned near ratios {list(ratios)} "
                                             f"stratified by label (seed {cfg.seed})"}}
    columns = MANIFEST_HEAD + ["speaker", "file_id", "language", "source_dataset", "transcript"]
    return _write_manifest(output_dir, split_rows, columns, labels=codes, summary=summary, skipped=skipped,
                           dropped=dropped, n_short=n_short, min_duration_sec=cfg.min_duration_sec,
                           allow_speaker_overlap=cfg.allow_speaker_overlap, warnings=warnings)
