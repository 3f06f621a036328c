"""Soak test of the SER service (issue 12): clients on loopback mix good and hostile requests for a bounded time.

    python bench/bench_soak.py                         # 60 s, 4 clients, a tiny random model
    python bench/bench_soak.py --duration 120 --clients 6 \\
        --model-dir outputs/cpu/models/audio/multilingual/best_model [--fusion-dir outputs/cpu/fusion/models/fusion_best]

Starts the real service (`uvicorn ser_helpers.service:app`, default limits: 25 MB, 600 s) on a free 127.0.0.1 port,
measures its idle RSS after start-up, then runs the clients while one thread polls /health every 100 ms and another
samples the server's RSS every 50 ms. The mix: good clips (16 kHz mono wav, 48 kHz stereo wav, FLAC written to a
pipe, ogg), and bad ones (the 655 kHz / 599 s FLAC, not audio, overlap that would multiply work 120x, NaN samples,
text4_entropy=1e308, a heavy request whose client hangs up after 0.3 s, a 100 MB chunked upload).
Separately, before the soak: the 655 kHz FLAC's refusal latency and a 500 MB chunked upload (bytes the server read).

Prints: requests served, status counts, 5xx count (503 for a full queue counted apart), p50/p95 latency of the good
requests, idle and peak RSS (and the difference), /health p50/p95 under load. Targets (issue 12): 0 5xx besides 503,
peak <= idle + 1 GiB, 500 MB chunked refused after <= 26 MB read, 655 kHz FLAC refused in < 100 ms, /health p95 < 200 ms.
"""
from __future__ import annotations

import argparse
import io
import json
import re
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ser_helpers import service  # noqa: E402

MB = 1024 * 1024


def synthetic_clip(seconds: float, seed: int = 0, sr: int = 16000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.4 * t + seed)
    x = np.sin(2 * np.pi * np.cumsum(f0) / sr) * (0.5 + 0.5 * np.sin(2 * np.pi * 2 * t) ** 2)
    return (0.2 * x + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def enc(x, sr=16000, fmt="WAV", subtype="PCM_16") -> bytes:
    import soundfile as sf
    buf = io.BytesIO()
    sf.write(buf, x, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def pipe_flac(data: bytes) -> bytes:
    d = bytearray(data)
    v = int.from_bytes(d[18:26], "big") & ~((1 << 36) - 1)
    d[18:26] = v.to_bytes(8, "big")
    d[26:42] = bytes(16)
    return bytes(d)


def flac_655k_599s(cache: Path) -> bytes:
    """An honest FLAC at 655350 Hz lasting 599 s (near-silence compresses to a few MB); cached."""
    import soundfile as sf
    if cache.exists():
        return cache.read_bytes()
    sr, n = 655350, 599 * 655350
    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", sr, 1, format="FLAC", subtype="PCM_16") as f:
        block = np.zeros(sr * 10, np.int16)
        block[::sr // 15] = 1  # 15 clicks a second: about 5 MB, like the file of the issue
        done = 0
        while done < n:
            k = min(block.size, n - done)
            f.write(block[:k])
            done += k
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(buf.getvalue())
    return buf.getvalue()


def chunked_upload(host: str, port: int, total_mb: int, timeout: float = 60.0) -> tuple[int | None, str, int]:
    """POST a multipart body of `total_mb` MB with Transfer-Encoding: chunked on a raw socket; stop when the
    server answers. Returns (status, detail, bytes sent)."""
    status, body, sent = service.client.chunked_upload(host, port, total_mb, boundary="soakboundary",
                                                       timeout=timeout)
    try:
        detail = json.loads(body)["detail"]
    except Exception:  # noqa: BLE001
        detail = body[:200]
    return status, detail, sent


def pct(values, q):
    return float(np.percentile(values, q)) if len(values) else float("nan")


def rss_of(pid: int) -> int:
    """Resident set size in bytes (/proc on Linux, else psutil)."""
    status = Path(f"/proc/{pid}/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    import psutil
    return psutil.Process(pid).memory_info().rss


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of soak (default 60)")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--model-dir", default=None, help="a best_model dir (default: a tiny random model)")
    ap.add_argument("--fusion-dir", default=None)
    ap.add_argument("--workers", type=int, default=2, help="SER_WORKERS")
    ap.add_argument("--max-queue", type=int, default=8, help="SER_MAX_QUEUE")
    ap.add_argument("--json", default="outputs/bench/soak.json", help="write the figures here too ('' = no)")
    args = ap.parse_args(argv)
    import httpx

    root = Path(__file__).resolve().parents[1]
    work = Path(tempfile.mkdtemp(prefix="ser_soak_"))
    model_dir = args.model_dir
    if not model_dir:
        from ser_helpers.acoustic import make_base_model
        model_dir = str(make_base_model(work / "tiny_model", size="tiny", seed=0))
    server_tmp = work / "server_tmp"
    server_tmp.mkdir()
    env = {"SER_ENGINE": "hf_wav2vec2", "SER_HF_MODEL_DIR": str(Path(model_dir).resolve()), "SER_HF_DEVICE": "cpu",
           "SER_WORKERS": str(args.workers), "SER_MAX_QUEUE": str(args.max_queue), "TMPDIR": str(server_tmp)}
    if args.fusion_dir:
        env["SER_FUSION_DIR"] = str(Path(args.fusion_dir).resolve())

    print("preparing payloads ...", flush=True)
    f655 = flac_655k_599s(root / "outputs" / "bench" / "flac_655350hz_599s.flac")
    x48 = synthetic_clip(10.0, seed=2, sr=48000)
    nan_clip = synthetic_clip(2.0, seed=3)
    nan_clip[100] = np.nan
    good = [("wav16k_4s", enc(synthetic_clip(4.0, seed=1)), {}),
            ("wav48k_stereo_10s", enc(np.stack([x48, 0.5 * x48], 1), 48000), {}),
            ("flac_pipe_6s", pipe_flac(enc(synthetic_clip(6.0, seed=4), fmt="FLAC")), {"language_hint": "zh"}),
            ("ogg_3s", enc(synthetic_clip(3.0, seed=5), fmt="OGG", subtype="VORBIS"), {"segment_ms": "1000"})]
    bad = [("flac_655khz_599s", f655, {}, 400),
           ("not_audio", b"%PDF-1.4 nothing to hear" * 50, {}, 400),
           ("overlap_x120", enc(synthetic_clip(60.0, seed=6)), {"segment_ms": "30000", "overlap_ms": "29750"}, 400),
           ("nan_samples", enc(nan_clip, subtype="FLOAT"), {}, 400),
           ("entropy_1e308", enc(synthetic_clip(2.0, seed=7)), {"text4_entropy": "1e308"}, 400)]
    heavy = enc(synthetic_clip(120.0, seed=8))

    with service.ServerProcess(env, startup_timeout=300) as proc:
        pid = proc.proc.pid
        url = proc.url
        time.sleep(1.0)
        at_start = {p.name for p in server_tmp.iterdir()}  # e.g. torch's own cache dir, made at start-up
        idle_rss = rss_of(pid)
        # -- the two single-shot targets, measured before the soak
        refusals = []
        with httpx.Client(timeout=60, trust_env=False) as client:
            for _ in range(7):
                t0 = time.perf_counter()
                r = client.post(url + "/ser/analyze", files={"file": ("f655.flac", f655, "audio/flac")})
                refusals.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 400, r.text
        f655_detail = r.json()["detail"]
        status500, detail500, sent500 = chunked_upload(proc.host, proc.port, 500)
        m = re.search(r"refused after reading ([\d.]+) MB", str(detail500))
        read500 = float(m.group(1)) if m else float("nan")
        idle_rss_after_probes = rss_of(pid)

        # -- the soak
        stop = time.monotonic() + args.duration
        lock = threading.Lock()
        statuses: Counter = Counter()
        by_kind: dict[str, Counter] = {}
        good_lat, health_lat, rss_samples = [], [], []
        unexpected = []

        def record(kind, status, ms=None):
            with lock:
                statuses[status] += 1
                by_kind.setdefault(kind, Counter())[status] += 1
                if ms is not None:
                    good_lat.append(ms)

        def client_loop(k: int):
            i = k
            with httpx.Client(timeout=300, trust_env=False) as client:
                while time.monotonic() < stop:
                    i += 1
                    slot = i % 12
                    try:
                        if slot < 6:
                            name, data, form = good[i % len(good)]
                            t0 = time.perf_counter()
                            r = client.post(url + "/ser/analyze", files={"file": (name, data, "audio/wav")}, data=form)
                            ms = (time.perf_counter() - t0) * 1000
                            record(name, r.status_code, ms if r.status_code == 200 else None)
                            if r.status_code not in (200, 503):
                                unexpected.append((name, r.status_code, r.text[:200]))
                        elif slot < 11:
                            name, data, form, want = bad[i % len(bad)]
                            r = client.post(url + "/ser/analyze", files={"file": (name, data, "audio/wav")}, data=form)
                            record(name, r.status_code)
                            if r.status_code not in (want, 503):
                                unexpected.append((name, r.status_code, r.text[:200]))
                        elif k % 2 == 0:
                            try:  # a heavy request whose client hangs up
                                httpx.post(url + "/ser/analyze", files={"file": ("heavy.wav", heavy, "audio/wav")},
                                           data={"segment_ms": "500", "overlap_ms": "250"}, timeout=0.3,
                                           trust_env=False)
                            except httpx.TimeoutException:
                                pass
                            record("hangup_after_0.3s", "client gone")
                        else:
                            st, detail, _ = chunked_upload(proc.host, proc.port, 100)
                            record("chunked_100mb", st)
                            if st not in (413, 503):
                                unexpected.append(("chunked_100mb", st, str(detail)[:200]))
                    except httpx.HTTPError as exc:
                        record("client_error", exc.__class__.__name__)

        def health_loop():
            with httpx.Client(timeout=10, trust_env=False) as client:
                while time.monotonic() < stop:
                    t0 = time.perf_counter()
                    r = client.get(url + "/health")
                    with lock:
                        health_lat.append((time.perf_counter() - t0) * 1000)
                    if r.status_code != 200:
                        unexpected.append(("health", r.status_code, r.text[:200]))
                    time.sleep(0.1)

        def rss_loop():
            while time.monotonic() < stop + 1:
                try:
                    rss_samples.append(rss_of(pid))
                except Exception:  # noqa: BLE001
                    break
                time.sleep(0.05)

        print(f"soak: {args.duration:g} s, {args.clients} clients ...", flush=True)
        threads = [threading.Thread(target=client_loop, args=(k,)) for k in range(args.clients)]
        threads += [threading.Thread(target=health_loop), threading.Thread(target=rss_loop)]
        t_start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t_start
        adm = httpx.get(url + "/health", timeout=10, trust_env=False).json().get("admission")
        leftovers = sorted({p.name for p in server_tmp.iterdir()} - at_start)

    peak = max(rss_samples) if rss_samples else float("nan")
    n5xx = sum(c for s, c in statuses.items() if isinstance(s, int) and s >= 500 and s != 503)
    n503 = statuses.get(503, 0)
    served = sum(c for s, c in statuses.items() if isinstance(s, int))
    res = {
        "duration_s": round(wall, 1), "clients": args.clients, "model_dir": Path(model_dir).name,
        "requests_served": served, "status_counts": {str(k): v for k, v in sorted(statuses.items(), key=str)},
        "by_kind": {k: {str(s): c for s, c in v.items()} for k, v in by_kind.items()},
        "5xx_besides_503": n5xx, "503_busy": n503,
        "good_latency_ms": {"p50": round(pct(good_lat, 50), 1), "p95": round(pct(good_lat, 95), 1), "n": len(good_lat)},
        "health_latency_ms": {"p50": round(pct(health_lat, 50), 1), "p95": round(pct(health_lat, 95), 1),
                              "n": len(health_lat)},
        "rss_mb": {"idle": round(idle_rss / MB, 1), "idle_after_probes": round(idle_rss_after_probes / MB, 1),
                   "peak": round(peak / MB, 1), "peak_minus_idle": round((peak - idle_rss) / MB, 1)},
        "flac_655khz_599s": {"bytes": len(f655), "refusal_ms_p50": round(pct(refusals, 50), 1),
                             "refusal_ms_max": round(max(refusals), 1), "detail": f655_detail},
        "chunked_500mb": {"status": status500, "server_read_mb": read500, "client_sent_mb": round(sent500 / MB, 1),
                          "detail": detail500},
        "admission": adm, "unexpected": unexpected[:20], "temp_files_left": leftovers,
    }
    print(json.dumps(res, indent=2))
    checks = {
        "0 5xx (503 aside)": n5xx == 0 and not unexpected,
        "peak RSS <= idle + 1 GiB": peak - idle_rss <= 1024 * MB,
        "500 MB chunked refused after <= 26 MB read": status500 == 413 and read500 <= 26.0,
        "655 kHz FLAC refused < 100 ms (p50)": pct(refusals, 50) < 100,
        "/health p95 < 200 ms under load": pct(health_lat, 95) < 200,
        "no temp file left": not leftovers,
    }
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    if args.json:
        from ser_helpers.common import write_json_atomic
        write_json_atomic(root / args.json if not Path(args.json).is_absolute() else args.json,
                          {**res, "checks": checks})
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
