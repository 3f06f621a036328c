"""CASIA (`<speaker>/<emotion>/<id>.wav`, optional `transcripts.csv`) -> speaker-split manifests.

Taught in notebook 02 (`02_folder_manifest.ipynb` builds the same CASIA layout with `build_manifest`
and names this preparer, CLI `ser prepare-casia`, as the fixed-split alternative).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ..common import MANIFEST_HEAD, SERError
from .base import DEFAULT_EXTENSIONS, SPLITS, ManifestConfig, ManifestResult, _as_list, _audio_files, _extensions
from .base import _is_hidden, _raw_corpus_dir, read_transcripts_csv
from .probe import _check_rows_audio
from .split import _disjoint
from .write import _write_manifest


CASIA_PRESETS = {
    "4class": {"angry": "ang", "happy": "hap", "neutral": "neu", "sad": "sad"},
    "6class": {"angry": "ang", "happy": "hap", "neutral": "neu", "sad": "sad", "fear": "fea", "surprise": "sur"},
}


@dataclass
class CasiaConfig(ManifestConfig):
    """Settings of `prepare_casia`, each default written once, here (the `ser prepare-casia` flags).
    Speaker lists are comma strings or lists."""
    preset: str = field(default="4class", metadata={"choices": sorted(CASIA_PRESETS)})
    train_speakers: str | list = "liuchanhg,wangzhe"
    val_speakers: str | list = "zhaoquanyin"
    test_speakers: str | list = "ZhaoZuoxiang"
    min_duration_sec: float = 0.2
    extensions: str = field(default=DEFAULT_EXTENSIONS, metadata={"cli": False})
    source_dataset: str | None = field(default=None, metadata={"cli": False})  # None: casia_<preset>
    language: str = field(default="zh", metadata={"cli": False})


def prepare_casia(*, raw_dir, output_dir, config: CasiaConfig | None = None, **settings) -> ManifestResult:
    """CASIA (`<speaker>/<emotion>/<id>.wav`, optional `transcripts.csv`) -> speaker-split manifests.

    The settings are a `CasiaConfig` (`config=`), or its fields as keyword arguments, which also override a given
    config's."""
    cfg = CasiaConfig.resolve(config, settings)
    raw_dir = _raw_corpus_dir(raw_dir, cfg.preset, CASIA_PRESETS, "CASIA")
    mapping = CASIA_PRESETS[cfg.preset]
    groups = {"train": _as_list(cfg.train_speakers), "val": _as_list(cfg.val_speakers),
              "test": _as_list(cfg.test_speakers)}
    where = _disjoint(groups, "speaker")
    transcripts = read_transcripts_csv(raw_dir / "transcripts.csv") if (raw_dir / "transcripts.csv").exists() else {}
    exts = _extensions(cfg.extensions)
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
    rows, skipped, n_short = _check_rows_audio(rows, cfg.min_duration_sec, True, cfg.strict, "CASIA audio")
    source_dataset = cfg.source_dataset or f"casia_{cfg.preset}"
    for r in rows:
        r["language"], r["source_dataset"] = cfg.language, source_dataset
        split_rows[where[r["speaker"]]].append(r)
    columns = MANIFEST_HEAD + ["speaker", "file_id", "language", "source_dataset", "transcript"]
    summary = {"dataset": "casia", "preset": cfg.preset, "label_map": mapping, "source_dataset": source_dataset,
               "language": cfg.language, "input_dir": str(raw_dir.resolve()), "created_by": "ser prepare-casia",
               "split_rule": {"type": "speaker_lists", **groups, "description": "speaker-independent: " + " / ".join(
                   f"{s} {','.join(groups[s])}" for s in SPLITS)},
               "dropped_speakers": dict(dropped_speakers)}
    return _write_manifest(output_dir, split_rows, columns, labels=sorted(set(mapping.values())), summary=summary,
                           skipped=skipped, dropped=dropped, n_short=n_short, min_duration_sec=cfg.min_duration_sec,
                           allow_speaker_overlap=cfg.allow_speaker_overlap)
