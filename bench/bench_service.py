"""Load test of the SER service on loopback: N requests, C at a time -> errors, p50/p95 latency, requests/s.

    python bench/bench_service.py                              # 200 requests, 16 concurrent, a tiny random model
    python bench/bench_service.py --model-dir outputs/cpu/models/audio/multilingual/best_model --clip some.wav

Starts the real service (`uvicorn ser_helpers.service:app`) as a subprocess on a free 127.0.0.1 port, sends one
sequential warm-up pass (the baseline), then the concurrent load, and prints both side by side with their ratio.
Every answer under load is also compared with the sequential answer for the same clip (they must be equal).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ser_helpers import service  # noqa: E402


def synthetic_clip(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.4 * t)
    x = np.sin(2 * np.pi * np.cumsum(f0) / 16000) * (0.5 + 0.5 * np.sin(2 * np.pi * 2 * t) ** 2)
    return (0.2 * x + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


async def run_load(url: str, payloads: list[bytes], n_requests: int, concurrency: int, form: dict) -> dict:
    import httpx
    latencies, errors, answers = [], [], {}
    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=300, limits=limits, trust_env=False) as client:
        async def one(i: int):
            k = i % len(payloads)
            async with sem:
                t0 = time.perf_counter()
                try:
                    r = await client.post(f"{url}/ser/analyze", files={"file": (f"clip{k}.wav", payloads[k], "audio/wav")},
                                          data=form)
                    dt = time.perf_counter() - t0
                    if r.status_code != 200:
                        errors.append(f"{r.status_code}: {r.text[:200]}")
                        return
                    latencies.append(dt)
                    body = r.json()
                    answers.setdefault(k, []).append(json.dumps(body["segments"], sort_keys=True))
                except Exception as exc:  # noqa: BLE001 - counted as an error
                    errors.append(f"{exc.__class__.__name__}: {exc}")

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n_requests)))
        wall = time.perf_counter() - t0
    lat = np.array(latencies) if latencies else np.array([np.nan])
    return {"requests": n_requests, "concurrency": concurrency, "errors": len(errors), "error_samples": errors[:3],
            "p50_ms": float(np.percentile(lat, 50) * 1000), "p95_ms": float(np.percentile(lat, 95) * 1000),
            "req_per_s": len(latencies) / wall, "wall_s": wall, "answers": answers}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", default="", help="a best_model dir (default: a tiny random-init model)")
    p.add_argument("--clip", action="append", default=[], help="wav file(s) to post (default: synthetic 3 s clips)")
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--baseline-requests", type=int, default=16, help="sequential requests for the baseline")
    p.add_argument("--segment-ms", type=int, default=8000)
    p.add_argument("--device", default="cpu")
    p.add_argument("--output-json", default="", help="also write the figures here")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model_dir
        if not model_dir:
            from ser_helpers.acoustic import make_base_model
            model_dir = str(make_base_model(Path(tmp) / "model", size="tiny", seed=0))
        payloads = [Path(c).read_bytes() for c in args.clip] or \
            [service.wav_bytes(synthetic_clip(3.0, seed=s)) for s in range(4)]
        form = {"segment_ms": str(args.segment_ms)}
        with service.ServerProcess({"SER_ENGINE": "hf_wav2vec2", "SER_HF_MODEL_DIR": str(Path(model_dir).resolve()),
                                    "SER_HF_DEVICE": args.device}) as server:
            service.get_json(server.url + "/warmup")
            base = asyncio.run(run_load(server.url, payloads, args.baseline_requests, 1, form))
            load = asyncio.run(run_load(server.url, payloads, args.requests, args.concurrency, form))
    mismatched = sum(len(set(load["answers"].get(k, []) + base["answers"].get(k, [])[:1])) > 1
                     for k in range(len(payloads)))
    print(f"model: {model_dir}\nclips: {len(payloads)}; loopback only\n")
    print(f"{'':22s}{'sequential (1)':>16s}{f'concurrent ({args.concurrency})':>18s}{'ratio':>8s}")
    for key, label in (("requests", "requests"), ("errors", "errors (target 0)"), ("p50_ms", "p50 latency ms"),
                       ("p95_ms", "p95 latency ms"), ("req_per_s", "requests/s")):
        b, c = base[key], load[key]
        ratio = f"{c / b:8.2f}" if isinstance(b, float) and b else f"{'':8s}"
        print(f"{label:22s}{b:16.1f}{c:18.1f}{ratio}" if isinstance(b, float) else f"{label:22s}{b:16d}{c:18d}")
    print(f"answers under load equal to the sequential answers: {'yes' if mismatched == 0 else f'NO ({mismatched} clips differ)'}")
    if load["error_samples"]:
        print("error samples:", *load["error_samples"], sep="\n  ")
    if args.output_json:
        from ser_helpers.common import write_json_atomic
        write_json_atomic(args.output_json, {"baseline": {k: v for k, v in base.items() if k != "answers"},
                                             "load": {k: v for k, v in load.items() if k != "answers"},
                                             "answers_equal": mismatched == 0})
    return 0 if load["errors"] == 0 and mismatched == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
