"""The manifest subcommands of `ser`: prepare-iemocap, prepare-casia, prepare-ravdess, prepare-esd,
build-manifest, merge-manifests (flags as in shared/CLI_CONTRACT.md, generated from each preparer's config).

Taught in notebooks 01 and 02, which show the CLI line beside each library call.
"""
from __future__ import annotations

from dataclasses import fields

from ..common import add_dataclass_flags
from .base import SPLITS, ManifestConfig, ManifestResult
from .casia import CasiaConfig, prepare_casia
from .esd import EsdConfig, prepare_esd
from .folders import BuildManifestConfig, build_manifest
from .iemocap import IemocapConfig, prepare_iemocap
from .merge import MergeManifestsConfig, merge_manifests
from .ravdess import RavdessConfig, prepare_ravdess


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


def _add_subcommand(subparsers, name: str, help_text: str, run, config_cls, input_flag: str,
                    input_help: str | None = None) -> None:
    """`ser <name> <input_flag> ... --output-dir ...` and the flags of `config_cls` (ManifestConfig's last):
    calls `run(<input>=..., output_dir=..., config=config_cls(...))`."""
    p = subparsers.add_parser(name, help=help_text)
    p.add_argument(input_flag, required=True, **({"help": input_help} if input_help else {}))
    p.add_argument("--output-dir", required=True)
    shared = [f.name for f in fields(ManifestConfig)]
    add_dataclass_flags(p, config_cls, skip=shared)
    add_dataclass_flags(p, ManifestConfig)
    input_name = input_flag[2:].replace("-", "_")
    p.set_defaults(func=lambda a: _print_result(run(**{input_name: getattr(a, input_name)}, output_dir=a.output_dir,
                                                    config=config_cls.from_params(vars(a)))))


def register_cli(subparsers) -> None:
    _add_subcommand(subparsers, "prepare-iemocap", "raw IEMOCAP (Session1..5) -> session-split manifests",
                    prepare_iemocap, IemocapConfig, "--raw-dir")
    _add_subcommand(subparsers, "prepare-casia", "CASIA <speaker>/<emotion>/*.wav -> speaker-split manifests",
                    prepare_casia, CasiaConfig, "--raw-dir")
    _add_subcommand(subparsers, "prepare-ravdess", "RAVDESS Actor_01..Actor_24 -> actor-split manifests",
                    prepare_ravdess, RavdessConfig, "--raw-dir", "folder holding Actor_01..Actor_24")
    _add_subcommand(subparsers, "prepare-esd", "ESD <speaker>/<Emotion>/*.wav -> speaker-split manifests",
                    prepare_esd, EsdConfig, "--raw-dir")
    _add_subcommand(subparsers, "build-manifest", "label folders (split, flat or speaker layout) -> manifests",
                    build_manifest, BuildManifestConfig, "--input-dir")
    _add_subcommand(subparsers, "merge-manifests", "concatenate manifest folders (e.g. en + zh)",
                    merge_manifests, MergeManifestsConfig, "--input-dirs",
                    "comma list of folders holding train/val/test.csv")
