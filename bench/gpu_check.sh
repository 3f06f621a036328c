#!/usr/bin/env bash
# One short GPU check of wav2vec2 training + evaluation (bf16): samples/s, peak memory, batch invariance.
#   bash bench/gpu_check.sh            (writes $OUT/gpu_check.json, or /tmp/gpu_check/gpu_check.json)
# Needs a Python with this package's dependencies (PYTHON=..., default .venv/bin/python, then python).
# Offline-safe: generates its own tone clips and a random-init model with the wav2vec2-base architecture
# (95 M parameters), so the numbers measure throughput, not accuracy. About 2-4 minutes on one H100.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [ -z "$PY" ]; then if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python; fi; fi
OUTDIR="${OUT:-/tmp/gpu_check}"
WORK="$(mktemp -d)"
mkdir -p "$OUTDIR"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
STEPS="${STEPS:-300}" BATCH="${BATCH:-8}" "$PY" - "$WORK" "$OUTDIR" <<'PYEOF'
import json, os, sys, time
from pathlib import Path
import numpy as np, pandas as pd, soundfile as sf, torch
from ser_helpers import acoustic, inference
from ser_helpers.common import LABELS

work, out = Path(sys.argv[1]), Path(sys.argv[2])
steps, batch = int(os.environ["STEPS"]), int(os.environ["BATCH"])
assert torch.cuda.is_available(), "no CUDA device visible"
rng = np.random.default_rng(0)
pitch = {"ang": 300.0, "hap": 250.0, "neu": 160.0, "sad": 110.0}
for split, n in (("train", 96), ("val", 24), ("test", 24)):
    rows = []
    for lab in LABELS:
        for k in range(n // 4):
            dur = float(rng.uniform(1.0, 12.0)); t = np.arange(int(dur * 16000)) / 16000
            w = 0.3 * np.sin(2 * np.pi * pitch[lab] * (1 + 0.05 * rng.standard_normal()) * t) + 0.01 * rng.standard_normal(t.size)
            p = work / split / f"{lab}_{k}.wav"; p.parent.mkdir(parents=True, exist_ok=True)
            sf.write(p, w.astype(np.float32), 16000)
            rows.append({"path": str(p), "label": lab, "source_label": lab, "duration_sec": dur})
    pd.DataFrame(rows).to_csv(work / f"{split}.csv", index=False)
base = acoustic.make_base_model(work / "base", "base")
report = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
torch.cuda.reset_peak_memory_stats()
t = time.time()
res = acoustic.train_wav2vec2(work / "train.csv", work / "val.csv", work / "run", test_manifest=work / "test.csv",
                              base_model=str(base), max_steps=steps, batch_size=batch, learning_rate=5e-5,
                              max_duration_sec=6.0, bf16=True, device="cuda", progress=False, patience=0,
                              lr_scheduler="cosine", warmup_ratio=0.1)
report["train"] = {"steps": res.report["global_step"], "batch_size": batch, "bf16": True,
                   "wall_sec": round(time.time() - t, 1), "train_wall_sec": res.report["train_wall_time_sec"],
                   "samples_per_sec": res.report["train_samples_per_sec"],
                   "peak_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
                   "final_val": res.report["best_val_metrics"], "test_macro_f1": res.report["test_metrics"]["macro_f1"]}
clf = inference.AudioClassifier.load(res.best_model_dir, device="cuda")
waves = [np.asarray(sf.read(p, dtype="float32")[0]) for p in pd.read_csv(work / "test.csv")["path"]] * 8
torch.cuda.reset_peak_memory_stats(); torch.cuda.synchronize(); t = time.time()
clf.predict_proba(waves, batch_size=16, max_duration_sec=15.0); torch.cuda.synchronize()
report["eval"] = {"clips": len(waves), "samples_per_sec": round(len(waves) / (time.time() - t), 1),
                  "peak_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)}
report["batch_invariance_max_abs_diff"] = inference.batch_invariance_gap(clf, waves[:12], batch_size=12)
(out / "gpu_check.json").write_text(json.dumps(report, indent=2))
print(json.dumps(report, indent=2))
PYEOF
rm -rf "$WORK"
