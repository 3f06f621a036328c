"""Build the generated corpus and measure it: build time against the budget, and how well audio alone,
text alone and their late fusion separate the 4 classes on the default test split.

    .venv/bin/python bench/bench_synth.py [--size default] [--seed 0] [--output-dir DIR] [--workers N]

Targets (issue 2, section 3): default builds in under 120 s on 2 cores; on the test split (Session5 +
ZhaoZuoxiang) audio-only and text-only macro-F1 each in [0.45, 0.75] and fusion >= 0.05 above both.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ser_helpers import synth  # noqa: E402

BUDGET_SEC = {"smoke": 20.0, "default": 120.0, "large": 600.0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="default", choices=list(synth.SIZES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--output-dir", default="", help="build here (kept); default: a temp dir, removed after")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--no-measure", action="store_true", help="only time the build")
    args = ap.parse_args()
    tmp = None if args.output_dir else tempfile.mkdtemp(prefix="bench_synth.")
    out = Path(args.output_dir or tmp) / "corpus"
    try:
        t0 = time.perf_counter()
        res = synth.synth_corpus(out, size=args.size, seed=args.seed, workers=args.workers)
        build = time.perf_counter() - t0
        cpu = sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
                  for f in ("ru_utime", "ru_stime"))
        n = res.counts["en_clips"] + res.counts["zh_clips"]
        budget = BUDGET_SEC[args.size]
        print(f"cores available: {len(os.sched_getaffinity(0))}; load average: {os.getloadavg()[0]:.1f}")
        print(f"build {args.size} (seed {args.seed}): {build:.1f} s for {n} clips ({1000 * build / n:.1f} ms/clip)"
              f"{' [reused]' if res.reused else ''}")
        print(f"budget {budget:.0f} s -> ratio build/budget = {build / budget:.2f} (target <= 1)")
        print(f"CPU time {cpu:.1f} s -> on 2 idle cores about {cpu / 2:.1f} s, ratio {cpu / 2 / budget:.2f} "
              "(the wall time above includes waiting for other processes on a busy machine)")
        print(f"durations: {res.counts['duration_sec']}")
        if not args.no_measure:
            t1 = time.perf_counter()
            sep = synth.measure_corpus_separability(out)
            print(f"measured in {time.perf_counter() - t1:.1f} s")
            a, t, f = sep["audio"]["all"], sep["text"]["all"], sep["fusion"]["all"]
            ok = 0.45 <= a <= 0.75 and 0.45 <= t <= 0.75 and f >= max(a, t) + 0.05
            print(f"targets: audio {a:.3f}, text {t:.3f} in [0.45, 0.75]; fusion {f:.3f} - best single "
                  f"{max(a, t):.3f} = {f - max(a, t):+.3f} (>= +0.05) -> {'OK' if ok else 'MISSED'}")
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
