"""The manifest subcommands of `ser`: prepare-iemocap, prepare-casia, prepare-ravdess, prepare-esd,
build-manifest, merge-manifests (flags as in shared/CLI_CONTRACT.md).

Taught in notebooks 01 and 02, which show the CLI line beside each library call.
"""
from __future__ import annotations

from .base import DEFAULT_EXTENSIONS, SPLITS, ManifestResult
from .casia import CASIA_PRESETS, prepare_casia
from .esd import ESD_PRESETS, prepare_esd
from .folders import build_manifest
from .iemocap import IEMOCAP_PRESETS, prepare_iemocap
from .merge import merge_manifests
from .ravdess import RAVDESS_PRESETS, prepare_ravdess


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
    _add_prepare_iemocap(subparsers)
    _add_prepare_casia(subparsers)
    _add_prepare_ravdess(subparsers)
    _add_prepare_esd(subparsers)
    _add_build_manifest(subparsers)
    _add_merge_manifests(subparsers)


def _add_prepare_iemocap(subparsers) -> None:
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


def _add_prepare_casia(subparsers) -> None:
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


def _add_prepare_ravdess(subparsers) -> None:
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


def _add_prepare_esd(subparsers) -> None:
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


def _add_build_manifest(subparsers) -> None:
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


def _add_merge_manifests(subparsers) -> None:
    p = subparsers.add_parser("merge-manifests", help="concatenate manifest folders (e.g. en + zh)")
    p.add_argument("--input-dirs", required=True, help="comma list of folders holding train/val/test.csv")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--deduplicate-by-path", action="store_true")
    p.add_argument("--languages", default="", help="comma list, one per input dir: fills a missing language")
    _common_flags(p)
    p.set_defaults(func=lambda a: _print_result(merge_manifests(
        input_dirs=a.input_dirs, output_dir=a.output_dir, deduplicate_by_path=a.deduplicate_by_path,
        languages=a.languages, allow_speaker_overlap=a.allow_speaker_overlap, strict=a.strict)))
