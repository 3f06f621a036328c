"""Evaluation throughput, measured side by side in one run (prints ratios; not a test).

1. length-bucketed batches (AudioClassifier.predict_proba sorts clips by length) vs random batches of the same size,
   on full-length clips of mixed length (target: bucketed >= 1.5x faster);
2. our batched path vs `transformers.pipeline("audio-classification")` one clip at a time vs our own one-clip loop,
   checking that all give the same predictions (target: >= 3x over pipeline()).

    .venv/bin/python bench/bench_eval.py                      # outputs/dev corpus + model if present
    .venv/bin/python bench/bench_eval.py --manifest M.csv --model-dir D --n-clips 48

Clips come from the manifest (default: outputs/dev/manifests/multilingual_4class/test.csv, else any manifest under
outputs/dev) or, when none exists, are synthesised (1-15 s). The model is the dev run's audio model if present,
else a random-init `small` wav2vec2 from make_base_model (same architecture and cost).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def find_manifest(run_dir: Path) -> Path | None:
    preferred = run_dir / "manifests" / "multilingual_4class" / "test.csv"
    if preferred.exists():
        return preferred
    found = sorted(run_dir.glob("manifests/*/test.csv"))
    return found[0] if found else None


def load_waves(manifest: Path | None, n: int, seed: int, max_duration_sec: float):
    from ser_helpers.audio import load_audio
    from ser_helpers.baseline import toy_clip
    from ser_helpers.common import LABELS, read_manifest
    rng = np.random.default_rng(seed)
    if manifest is not None:
        df = read_manifest(manifest)
        # prefer a spread of lengths: sort by duration, take evenly spaced rows
        if "duration_sec" in df.columns:
            df = df.sort_values("duration_sec", kind="stable")
        idx = np.linspace(0, len(df) - 1, min(n, len(df))).round().astype(int)
        paths = list(df["path"].iloc[np.unique(idx)])
        waves = [load_audio(p, max_duration_sec=None)[: int(max_duration_sec * 16000)] for p in paths]
        return waves, f"{len(waves)} clips from {manifest}"
    durs = rng.uniform(1.0, 15.0, n)
    waves = [toy_clip(LABELS[i % 4], float(d), seed=seed + i) for i, d in enumerate(durs)]
    return waves, f"{n} synthesised clips (1-15 s)"


def interleaved(methods: dict, rounds: int) -> dict:
    """Run every method once per round, in turn (so load changes on a shared machine hit all alike);
    keep each method's best time."""
    best = {name: (float("inf"), None) for name in methods}
    for _ in range(rounds):
        for name, fn in methods.items():
            t0 = time.perf_counter()
            out = fn()
            sec = time.perf_counter() - t0
            if sec < best[name][0]:
                best[name] = (sec, out)
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", default=str(ROOT / "outputs" / "dev"))
    ap.add_argument("--manifest", default="")
    ap.add_argument("--synth", action="store_true", help="use synthesised 1-15 s clips even if a manifest exists")
    ap.add_argument("--model-dir", default="")
    ap.add_argument("--n-clips", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-duration-sec", type=float, default=15.0)
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds; timing = best round per method")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    ap.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import torch
    from transformers import pipeline

    from ser_helpers.acoustic import make_base_model
    from ser_helpers.common import resolve_device
    from ser_helpers.inference import AudioClassifier

    run_dir = Path(args.run_dir)
    manifest = None if args.synth else Path(args.manifest) if args.manifest else find_manifest(run_dir)
    model_dir = Path(args.model_dir) if args.model_dir else run_dir / "models" / "audio" / "multilingual" / "best_model"
    tmp = None
    if not (model_dir / "config.json").exists():
        tmp = tempfile.TemporaryDirectory()
        model_dir = make_base_model(Path(tmp.name) / "small", size="small", seed=args.seed)
        model_note = "random-init `small` wav2vec2 (make_base_model)"
    else:
        model_note = str(model_dir)
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    waves, data_note = load_waves(manifest, args.n_clips, args.seed, args.max_duration_sec)
    lengths = np.array([len(w) / 16000 for w in waves])
    print(f"model: {model_note}\ndata: {data_note}; durations {lengths.min():.1f}-{lengths.max():.1f} s "
          f"(mean {lengths.mean():.1f} s, total {lengths.sum():.0f} s)\ndevice: {device}, torch threads "
          f"{torch.get_num_threads()}, batch size {args.batch_size}\n")

    clf = AudioClassifier.load(model_dir, device=device)
    bs = args.batch_size
    clf.predict_proba(waves[:2], batch_size=2)  # warm-up

    def bucketed():
        return clf.predict_proba(waves, batch_size=bs, max_duration_sec=args.max_duration_sec)

    order = np.random.default_rng(args.seed).permutation(len(waves))

    def random_batches():
        out = np.zeros((len(waves), len(clf.labels)), dtype=np.float32)
        for i in range(0, len(order), bs):
            idx = order[i:i + bs]
            out[idx] = clf.predict_proba([waves[j] for j in idx], batch_size=len(idx),
                                         max_duration_sec=args.max_duration_sec)
        return out

    def one_by_one():
        return np.vstack([clf.predict_proba([w], batch_size=1, max_duration_sec=args.max_duration_sec) for w in waves])

    pipe = pipeline("audio-classification", model=str(model_dir), device=0 if device.startswith("cuda") else -1)
    pipe(waves[0], top_k=None)  # warm-up

    def with_pipeline():
        out = np.zeros((len(waves), len(clf.labels)), dtype=np.float32)
        for i, w in enumerate(waves):
            for r in pipe({"raw": w, "sampling_rate": 16000}, top_k=None):
                out[i, clf.labels.index(r["label"])] = r["score"]
        return out

    def pipeline_batched():  # zero-pads clips to the longest in the batch: predictions change (the trap)
        out = np.zeros((len(waves), len(clf.labels)), dtype=np.float32)
        res = pipe([{"raw": w, "sampling_rate": 16000} for w in waves], top_k=None, batch_size=bs)
        for i, rows in enumerate(res):
            for r in rows:
                out[i, clf.labels.index(r["label"])] = r["score"]
        return out

    methods = {"bucketed batches (ours)": bucketed, "random batches (ours)": random_batches,
               "one clip at a time (ours)": one_by_one, "pipeline() one clip at a time": with_pipeline,
               f"pipeline(batch_size={bs}) (zero-pads)": pipeline_batched}
    results = interleaved(methods, args.rounds)
    for name, (sec, _) in results.items():
        print(f"  {name:36s} {sec:8.2f} s  {len(waves) / sec:7.2f} clips/s")

    ref_sec, ref = results["bucketed batches (ours)"]
    print("\nmethod                                time / bucketed   same predictions   max |dp|")
    for name, (sec, probs) in results.items():
        same = bool((probs.argmax(1) == ref.argmax(1)).all())
        print(f"  {name:36s} {sec / ref_sec:8.2f}x {'':6s} {str(same):18s} {np.abs(probs - ref).max():.2e}")
    r_random = results["random batches (ours)"][0] / ref_sec
    r_pipe = results["pipeline() one clip at a time"][0] / ref_sec
    r_loop = results["one clip at a time (ours)"][0] / ref_sec
    print(f"\nbucketed vs random batches: {r_random:.2f}x (target >= 1.5x) {'OK' if r_random >= 1.5 else 'MISSED'}")
    print(f"batched vs pipeline() one at a time: {r_pipe:.2f}x (target >= 3x) {'OK' if r_pipe >= 3 else 'MISSED'}")
    print(f"batched vs our one-clip loop: {r_loop:.2f}x")
    print("\nnote: our padding-invariant path runs the conv feature encoder per clip (unpadded) in every mode, so\n"
          "random batches only pay padding in the transformer; on CPU the conv encoder dominates and batching\n"
          "buys little. pipeline(batch_size>1) pads the raw audio: faster than one at a time, different answers.")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
