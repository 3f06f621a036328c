"""The `ser synth-corpus` subcommand (flags as in shared/CLI_CONTRACT.md).

Taught in notebook 00 (`00_make_demo_corpus.ipynb`, which shows the CLI line beside the call).
"""
from __future__ import annotations

import argparse
import json

from .settings import SIZES
from .synth import synth_corpus


def _cli_synth(args: argparse.Namespace) -> int:
    res = synth_corpus(args.output_dir, size=args.size, seed=args.seed, workers=args.workers)
    print(json.dumps({"output_dir": str(res.output_dir), "reused": res.reused, "seconds": round(res.seconds, 2),
                      "en_clips": res.counts.get("en_clips"), "zh_clips": res.counts.get("zh_clips")}))
    return 0


def register_cli(subparsers) -> None:
    p = subparsers.add_parser("synth-corpus", help="generate the embedded emotional-speech corpus "
                              "(IEMOCAP + CASIA layouts) with espeak-ng")
    p.add_argument("--output-dir", required=True, help="corpus folder (gets iemocap_raw/, casia_raw/, corpus_info.json)")
    p.add_argument("--size", default="default", choices=list(SIZES), help="corpus size (default: default)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--workers", type=int, default=None, help="parallel processes (default: all CPUs)")
    p.set_defaults(func=_cli_synth)
