"""Training throughput: length-grouped vs random batches, same clips, same model, side by side.

    .venv/bin/python bench/bench_train.py [--manifest outputs/cpu/manifests/multilingual_4class/train.csv]
        [--size small] [--batch-size 8] [--max-duration-sec 15] [--steps 12]

Clips are full length (up to --max-duration-sec) so lengths differ; without a manifest, clips of 1-12 s
are synthesised. Each step is one forward + backward + AdamW update of the padding-invariant forward
(conv encoder per clip, masked transformer). Prints samples/s of both samplers and their ratio.
"""
from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from ser_helpers import acoustic, inference
from ser_helpers.audio import load_audio
from ser_helpers.common import read_manifest

SR = 16000


def load_clips(manifest: str | None, n: int, max_sec: float, seed: int) -> list[np.ndarray]:
    if manifest:
        paths = list(read_manifest(manifest)["path"])[:n]
        return [load_audio(p, max_duration_sec=None)[: int(max_sec * SR)] for p in paths]
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(int(rng.uniform(1.0, min(12.0, max_sec)) * SR))).astype(np.float32)
            for _ in range(n)]


def run(model, clips, batches, lr=1e-4) -> float:
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    seen, t0 = 0, time.perf_counter()
    for batch in batches:
        xs = [inference.normalize_clip(torch.from_numpy(clips[i])) for i in batch]
        loss = inference.padding_invariant_logits(model, xs).logsumexp(-1).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
        seen += len(batch)
    return seen / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--manifest", default="")
    ap.add_argument("--size", default="small", choices=sorted(acoustic.BASE_SIZES))
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-duration-sec", type=float, default=15.0)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from transformers import AutoModelForAudioClassification
    n = args.steps * args.batch_size * 4
    clips = load_clips(args.manifest or None, n, args.max_duration_sec, args.seed)
    lengths = np.array([len(c) for c in clips])
    with tempfile.TemporaryDirectory() as tmp:
        base = acoustic.make_base_model(f"{tmp}/base", args.size, seed=args.seed)
        results = {}
        for name, grouped in (("random", False), ("length-grouped", True)):
            sampler = acoustic.EpochBatchSampler(lengths, args.batch_size, args.seed, True, grouped, mega=4)
            batches = sampler.batches()[: args.steps]
            pad = np.mean([1 - lengths[b].sum() / (len(b) * lengths[b].max()) for b in batches])
            torch.manual_seed(args.seed)
            model = AutoModelForAudioClassification.from_pretrained(base)
            run(model, clips, batches[:1])  # warm-up
            results[name] = (run(model, clips, batches[1:]), pad)
    print(f"{len(clips)} clips, {lengths.mean() / SR:.1f} s mean ({lengths.min() / SR:.1f}-{lengths.max() / SR:.1f} s), "
          f"batch {args.batch_size}, {args.steps - 1} timed steps, {args.size} model, {torch.get_num_threads()} threads")
    for name, (rate, pad) in results.items():
        print(f"  {name:15s} {rate:7.2f} samples/s   padding {100 * pad:4.1f} % of frames")
    print(f"  ratio length-grouped / random: {results['length-grouped'][0] / results['random'][0]:.2f}x")


if __name__ == "__main__":
    main()
