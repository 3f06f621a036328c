"""Bench: stage 06 with the Whisper backend, cold (empty ASR cache) vs warm (cache full).

    .venv/bin/python bench/bench_asr_cache.py [--run-dir outputs/dev] [--max-samples 0] [--whisper-size tiny]

Uses `{run_dir}/manifests/multilingual_4class` and `{run_dir}/models/audio/multilingual/best_model` when they
exist (else a random-init tiny audio model), and a small RANDOM whisper checkpoint
(real decoding code path, nonsense text; `--whisper-size tiny` for whisper-tiny's real dimensions). Prints both runs' total and ASR-stage times, their ratios (target:
ASR stage warm >= 10x faster than cold) and the absolute cost of one cache hit (hash + lookup).
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZES = {  # random checkpoints; n_text_ctx bounds the greedy decode length
    "toy": dict(n_state=64, n_layer=1, n_head=2, n_text_ctx=32),
    "mini": dict(n_state=128, n_layer=2, n_head=4, n_text_ctx=48),
    "tiny": dict(n_state=384, n_layer=4, n_head=6, n_text_ctx=64),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", default="outputs/dev")
    ap.add_argument("--manifest-name", default="multilingual_4class")
    ap.add_argument("--audio-model-name", default="multilingual")
    ap.add_argument("--max-samples", type=int, default=0, help="rows per split (0 = all)")
    ap.add_argument("--whisper-size", choices=sorted(SIZES), default="mini",
                    help="random checkpoint size; 'tiny' = whisper-tiny's dimensions (about 1 s per clip on a free core)")
    ap.add_argument("--whisper-cpu-threads", type=int, default=2)
    ap.add_argument("--min-ratio", type=float, default=10.0)
    args = ap.parse_args(argv)

    import numpy as np

    from ser_helpers import asr, features
    from ser_helpers.audio import load_audio

    run_dir = (ROOT / args.run_dir) if not Path(args.run_dir).is_absolute() else Path(args.run_dir)
    man = run_dir / "manifests" / args.manifest_name
    if not (man / "train.csv").exists():
        print(f"no manifests at {man}: run stages 00-02 first (e.g. `ser pipeline --only ...`)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="bench_asr_"))
    try:
        model = run_dir / "models" / "audio" / args.audio_model_name / "best_model"
        if not (model / "config.json").exists():
            from ser_helpers.acoustic import make_base_model
            model = make_base_model(work / "audio_model", size="tiny")
            print(f"(no trained audio model under {run_dir}; using a random tiny one)")
        ckpt = asr.make_tiny_whisper_checkpoint(work / "whisper_random.pt", **SIZES[args.whisper_size])
        kw = dict(train_manifest=str(man / "train.csv"), val_manifest=str(man / "val.csv"),
                  test_manifest=str(man / "test.csv"), output_dir=str(work / "features"),
                  audio_model_en=str(model), audio_model_zh=str(model), asr_backend="whisper",
                  whisper_model=str(ckpt), whisper_device="cpu", whisper_cpu_threads=args.whisper_cpu_threads,
                  max_samples=args.max_samples, audio_device="cpu", text_device="cpu")
        runs = {}
        for name in ("cold", "warm"):
            t = time.perf_counter()
            res = features.build_fusion_features(**kw)
            runs[name] = {"total": time.perf_counter() - t, "asr": res.summary["timings"]["asr_sec"],
                          "hits": res.summary["asr_cache"]["hits"], "misses": res.summary["asr_cache"]["misses"],
                          "rows": sum(res.summary["rows_total"].values())}
        # absolute cost of a hit: hash the decoded clip + look it up (audio already in memory)
        df = res.frames["val"]
        clips = [load_audio(p, max_duration_sec=None) for p in df["path"]]
        cache = asr.ASRCache(work / "features" / "asr_cache.json")
        tr = asr.get_transcriber("whisper", str(ckpt), cpu_threads=args.whisper_cpu_threads)
        t = time.perf_counter()
        reps = 20
        for _ in range(reps):
            for clip, lang in zip(clips, df["language"]):
                cache.get_or_transcribe(clip, lang, tr)
        hit_ms = (time.perf_counter() - t) / (reps * len(clips)) * 1e3
        assert cache.misses == 0, "warm cache should hit every clip"
        t = time.perf_counter()
        for clip, lang in zip(clips[:5], df["language"][:5]):
            tr.transcribe(clip, lang)
        miss_ms = (time.perf_counter() - t) / min(5, len(clips)) * 1e3
        mean_sec = float(np.mean([len(c) for c in clips]) / 16000)

        c, w = runs["cold"], runs["warm"]
        asr_ratio = c["asr"] / max(w["asr"], 1e-9)
        print(f"rows: {c['rows']} (train+val+test), mean clip {mean_sec:.2f} s; whisper: random "
              f"{args.whisper_size}-sized checkpoint on cpu")
        print(f"{'':10s}{'cold':>12s}{'warm':>12s}{'ratio':>10s}")
        print(f"{'ASR stage':10s}{c['asr']:11.3f}s{w['asr']:11.3f}s{asr_ratio:9.1f}x")
        print(f"{'total':10s}{c['total']:11.3f}s{w['total']:11.3f}s{c['total'] / max(w['total'], 1e-9):9.1f}x")
        print(f"cache: cold hits/misses {c['hits']}/{c['misses']}, warm {w['hits']}/{w['misses']}")
        print(f"one cache hit (sha256 of the clip + lookup): {hit_ms:.3f} ms; one whisper transcription: "
              f"{miss_ms:.1f} ms ({miss_ms / max(hit_ms, 1e-9):.0f}x)")
        print(f"(total includes audio loading, the audio model and the text head, which a cache cannot save)")
        ok = asr_ratio >= args.min_ratio and w["misses"] == 0
        print(("PASS" if ok else "FAIL") + f": ASR stage warm/cold speed-up {asr_ratio:.1f}x (target >= {args.min_ratio:g}x)")
        return 0 if ok else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
