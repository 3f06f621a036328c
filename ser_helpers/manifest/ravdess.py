"""RAVDESS speech (`Actor_NN/03-01-EE-II-SS-RR-NN.wav`) -> actor-split manifests.

Not run in the notebooks (the corpus is not bundled); notebook 02 (`02_folder_manifest.ipynb`)
teaches the same speaker-independent manifest on label folders. CLI `ser prepare-ravdess`.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from ..common import MANIFEST_HEAD, SERError
from .base import COMMON_COLUMNS, SPLITS, ManifestConfig, ManifestResult, _as_list, _audio_files, _raw_corpus_dir
from .probe import _check_rows_audio
from .split import _disjoint
from .write import _write_manifest


RAVDESS_EMOTIONS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry",
                    "06": "fearful", "07": "disgust", "08": "surprised"}
RAVDESS_PRESETS = {
    "4class": {"01": "neu", "02": "neu", "03": "hap", "04": "sad", "05": "ang"},
    "6class": {"01": "neu", "02": "neu", "03": "hap", "04": "sad", "05": "ang", "06": "fea", "08": "sur"},
}
RAVDESS_STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}
# modality-channel-emotion-intensity-statement-repetition-actor
_RAVDESS_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")


@dataclass
class RavdessConfig(ManifestConfig):
    """Settings of `prepare_ravdess`, each default written once, here (the `ser prepare-ravdess` flags).
    Actor lists are ranges: `1-18` or `1,2,5-7`."""
    preset: str = field(default="4class", metadata={"choices": sorted(RAVDESS_PRESETS)})
    train_actors: str = "1-18"
    val_actors: str = "19-21"
    test_actors: str = "22-24"
    min_duration_sec: float = 0.2
    source_dataset: str | None = field(default=None, metadata={"cli": False})  # None: ravdess_<preset>


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


def prepare_ravdess(*, raw_dir, output_dir, config: RavdessConfig | None = None, **settings) -> ManifestResult:
    """RAVDESS speech (`Actor_NN/03-01-EE-II-SS-RR-NN.wav`, 48 kHz, some stereo) -> actor-split manifests.

    The settings are a `RavdessConfig` (`config=`), or its fields as keyword arguments, which also override a given
    config's."""
    cfg = RavdessConfig.resolve(config, settings)
    raw_dir = _raw_corpus_dir(raw_dir, cfg.preset, RAVDESS_PRESETS, "RAVDESS")
    mapping = RAVDESS_PRESETS[cfg.preset]
    groups = {s: _parse_ranges(getattr(cfg, f"{s}_actors"), f"--{s}-actors") for s in SPLITS}
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
    rows, skipped, n_short = _check_rows_audio(rows, cfg.min_duration_sec, True, cfg.strict, "RAVDESS audio")
    source_dataset = cfg.source_dataset or f"ravdess_{cfg.preset}"
    split_rows = {s: [] for s in SPLITS}
    for r in rows:
        r["language"], r["source_dataset"] = "en", source_dataset
        split_rows[where[r["actor_id"]]].append(r)
    columns = MANIFEST_HEAD + ["actor_id", "file_id"] + COMMON_COLUMNS + ["intensity"]
    warnings = ([f"{len(bad_names)} wav file(s) without a RAVDESS name ignored, e.g. {bad_names[:3]}"]
                if bad_names else [])
    summary = {"dataset": "ravdess", "preset": cfg.preset,
               "label_map": {RAVDESS_EMOTIONS[k]: v for k, v in mapping.items()},
               "source_dataset": source_dataset, "language": "en", "input_dir": str(raw_dir.resolve()),
               "created_by": "ser prepare-ravdess",
               "split_rule": {"type": "actors", **groups, "description": "speaker-independent by actor: " + " / ".join(
                   f"{s} {_as_ranges(groups[s])}" for s in SPLITS)},
               "dropped_speakers": dict(dropped_speakers)}
    return _write_manifest(output_dir, split_rows, columns, labels=sorted(set(mapping.values())), summary=summary,
                           skipped=skipped, dropped=dropped, n_short=n_short, min_duration_sec=cfg.min_duration_sec,
                           allow_speaker_overlap=cfg.allow_speaker_overlap, warnings=warnings)


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
