"""Fusion ablation (stage 08): audio_only, text_only and fusion trained with the same settings and seeds.

`run_fusion_ablation(...)` calls `fusion.train_late_fusion` once per mode and seed (runs in
`{output_root}/<mode>[_seed<k>]/`), then writes `ablation_summary.csv/.json` (mean and std over seeds of
the calibrated val/test metrics, per-language test macro-F1, bootstrap intervals) and `ablation.png`.
Taught in notebook 08 (08_fusion_ablation).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np

from .common import SERError, write_csv_atomic, write_json_atomic
from .fusion import MODES, TRAINING_KEYS, FusionConfig, add_training_flags, train_late_fusion

ABLATION_MODES = ("audio_only", "text_only", "fusion")
RUN_METRICS = ("val_macro_f1", "val_accuracy", "val_ua", "val_ece", "test_macro_f1", "test_accuracy", "test_ua",
               "test_ece", "test_ece_uncalibrated", "test_nll", "test_brier")
PLOT_METRICS = ("val_macro_f1", "test_macro_f1", "test_accuracy", "test_ua", "test_ece")


def parse_seeds(seeds, default_seed: int = FusionConfig.seed) -> list[int]:
    """'42,43,44' / [42, 43] / '' (-> [default_seed])."""
    if seeds is None or seeds == "" or seeds == []:
        return [int(default_seed)]
    if isinstance(seeds, (int, float)) and not isinstance(seeds, bool):
        seeds = [int(seeds)]  # papermill -p seeds 42 passes an int
    items = seeds.split(",") if isinstance(seeds, str) else list(seeds)
    try:
        out = [int(str(s).strip()) for s in items if str(s).strip()]
    except ValueError as exc:
        raise SERError(f"seeds={seeds!r}: expected a comma list of integers") from exc
    if not out or len(set(out)) != len(out):
        raise SERError(f"seeds={seeds!r}: expected distinct integers")
    return out


def _run_row(mode: str, seed: int, report: dict, run_dir: Path) -> dict:
    row = {"mode": mode, "seed": seed, "run_dir": str(run_dir), "fusion_arch": report["fusion_arch"],
           "temperature": report["calibration"]["temperature"]}
    row.update({k: report[k] for k in RUN_METRICS})
    for lang, m in report["calibrated"]["test"]["per_language"].items():
        row[f"test_macro_f1_{lang}"] = m["macro_f1"]
    for lang, m in report["calibrated"]["val"]["per_language"].items():
        row[f"val_macro_f1_{lang}"] = m["macro_f1"]
    row["test_macro_f1_ci_low"], row["test_macro_f1_ci_high"] = report["test_macro_f1_ci"]
    row["test_ece_ci_low"], row["test_ece_ci_high"] = report["test_ece_ci"]
    floor = (report.get("ece_sampling_floor") or {}).get("test") or {}
    row["test_ece_floor"], row["test_ece_floor_p95"] = floor.get("mean"), floor.get("p95")
    return row


def summarise_runs(runs: list[dict], modes: Sequence[str]) -> list[dict]:
    """Mean and std (ddof=0) over seeds per mode, for every numeric metric column."""
    rows = []
    for mode in modes:
        sub = [r for r in runs if r["mode"] == mode]
        if not sub:
            continue
        row = {"mode": mode, "n_seeds": len(sub), "seeds": ",".join(str(r["seed"]) for r in sub),
               "fusion_arch": sub[0]["fusion_arch"]}
        keys = [k for k in sub[0] if k not in ("mode", "seed", "run_dir", "fusion_arch")]
        for k in keys:
            vals = np.array([r.get(k, np.nan) for r in sub], dtype=float)
            row[f"{k}_mean"] = float(np.nanmean(vals)) if np.isfinite(vals).any() else None
            row[f"{k}_std"] = float(np.nanstd(vals)) if np.isfinite(vals).any() else None
        rows.append(row)
    return rows


def run_fusion_ablation(train_features, val_features, test_features, output_root, seeds="",
                        modes: Sequence[str] = ABLATION_MODES, features_summary=None, make_plot: bool = True,
                        **settings) -> dict:
    """Train every mode with the same settings for each seed; write the summary CSV/JSON and a bar chart.

    `settings` are fusion.FusionConfig fields (not `mode`); `seeds` empty -> [settings.get('seed', 42)].
    Returns the JSON payload (also written to ablation_summary.json).
    """
    if "mode" in settings:
        raise SERError("run_fusion_ablation trains every mode; do not pass mode=")
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise SERError(f"unknown mode(s) {bad}; expected some of {list(MODES)}")
    seed_list = parse_seeds(seeds, settings.pop("seed", FusionConfig.seed))
    settings.setdefault("compare_fit_strategies", False)
    settings.setdefault("make_plots", False)
    settings.setdefault("progress", False)  # one bar over the runs, not one per fold and epoch loop
    from tqdm.auto import tqdm
    root = Path(output_root)
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    runs, reports = [], {}
    jobs = [(m, s) for s in seed_list for m in modes]
    for mode, seed in tqdm(jobs, desc="ablation", disable=None):
        name = mode if len(seed_list) == 1 else f"{mode}_seed{seed}"
        res = train_late_fusion(train_features, val_features, test_features, root / name, features_summary,
                                mode=mode, seed=seed, **settings)
        reports[name] = res.report
        runs.append(_run_row(mode, seed, res.report, root / name))
    summary = summarise_runs(runs, modes)
    by_mode = {r["mode"]: r for r in summary}
    gain = None
    if {"fusion", "audio_only", "text_only"} <= set(by_mode):
        best_single = max(by_mode["audio_only"]["test_macro_f1_mean"], by_mode["text_only"]["test_macro_f1_mean"])
        gain = by_mode["fusion"]["test_macro_f1_mean"] - best_single
    first = next(iter(reports.values()))
    payload = {
        "seeds": seed_list, "modes": list(modes), "settings": {k: v for k, v in first["settings"].items()
                                                              if k not in ("mode", "seed")},
        "summary": summary, "runs": runs,
        "fusion_gain_over_best_single_test_macro_f1": gain,
        "targets": {"fusion_gain_ge_0.05": None if gain is None else bool(gain >= 0.05),
                    "fusion_test_ece_le_0.05": (None if "fusion" not in by_mode
                                                else bool(by_mode["fusion"]["test_ece_mean"] <= 0.05))},
        "notes": {"std": "population std over seeds (ddof=0)",
                  "ci": "test_macro_f1_ci_*_mean / test_ece_ci_*_mean = mean over seeds of each run's 95% "
                        "percentile bootstrap interval over test utterances",
                  "metrics": "calibrated unless the name says uncalibrated",
                  "ece_floor": "test_ece_floor_* = ECE a perfectly calibrated model with the same confidences "
                               "would show on this many test rows (mean and 95th percentile of 2000 simulations)",
                  "transcripts": first.get("transcripts")},
        "time_sec": round(time.perf_counter() - t0, 2),
    }
    import pandas as pd
    write_csv_atomic(root / "ablation_summary.csv", pd.DataFrame(summary))
    write_csv_atomic(root / "ablation_runs.csv", pd.DataFrame(runs))
    write_json_atomic(root / "ablation_summary.json", payload)
    if make_plot:
        ablation_chart(summary, root / "ablation.png")
    return payload


def ablation_chart(summary: list[dict], path, metrics: Sequence[str] = PLOT_METRICS):
    """Grouped bars: one group per metric, one bar per mode, error bars = std over seeds."""
    import matplotlib.pyplot as plt
    from .plots import save_figure
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    width = 0.8 / max(len(summary), 1)
    x = np.arange(len(metrics))
    for i, row in enumerate(summary):
        means = [row.get(f"{m}_mean") or 0.0 for m in metrics]
        stds = [row.get(f"{m}_std") or 0.0 for m in metrics]
        bars = ax.bar(x + (i - (len(summary) - 1) / 2) * width, means, width, yerr=stds, capsize=3, label=row["mode"])
        for b, v, sd in zip(bars, means, stds):
            ax.text(b.get_x() + b.get_width() / 2, v + sd + 0.01, f"{v:.2f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, [m.replace("_", " ") for m in metrics])
    ax.set_ylim(0, 1.05); ax.set_ylabel("score (calibrated)")
    n = summary[0]["n_seeds"] if summary else 0
    ax.set_title(f"Fusion ablation (mean ± std over {n} seed{'s' if n != 1 else ''})")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    return fig


def summary_table(payload: dict, metrics: Sequence[str] = ("val_macro_f1", "test_macro_f1", "test_accuracy",
                                                             "test_ua", "test_ece", "test_ece_uncalibrated")):
    """A display table 'mean ± std' per mode (for notebooks)."""
    import pandas as pd
    rows = []
    for r in payload["summary"]:
        row = {"mode": r["mode"]}
        for m in metrics:
            row[m] = f"{r[f'{m}_mean']:.3f} ± {r[f'{m}_std']:.3f}"
        langs = sorted(k[len("test_macro_f1_"):-len("_mean")] for k in r
                       if k.startswith("test_macro_f1_") and k.endswith("_mean") and "ci" not in k
                       and k != "test_macro_f1_mean")
        for lang in langs:
            row[f"test_macro_f1[{lang}]"] = f"{r[f'test_macro_f1_{lang}_mean']:.3f}"
        row["test_macro_f1 95% CI"] = f"[{r['test_macro_f1_ci_low_mean']:.3f}, {r['test_macro_f1_ci_high_mean']:.3f}]"
        row["test_ece 95% CI"] = f"[{r['test_ece_ci_low_mean']:.3f}, {r['test_ece_ci_high_mean']:.3f}]"
        if r.get("test_ece_floor_mean") is not None:
            row["test_ece if perfectly calibrated"] = (f"{r['test_ece_floor_mean']:.3f} "
                                                       f"(95th pct {r['test_ece_floor_p95_mean']:.3f})")
        rows.append(row)
    return pd.DataFrame(rows).set_index("mode")


from .references import EARLIER_BACKEND_MACRO_F1  # noqa: E402

# The user's earlier backend on real IEMOCAP (Session 5 test; sentiment text models; REFERENCE_RESULTS.md).
REFERENCE_RESULTS = {
    "source": "user's earlier backend, IEMOCAP Session 5 test, macro-F1 (shared/REFERENCE_RESULTS.md)",
    "test_macro_f1": EARLIER_BACKEND_MACRO_F1,
    "fusion_test_ece": {"uncalibrated": 0.206, "temperature_scaling": 0.025, "vector_scaling": 0.130},
    "temperature": 2.05,
}


def reference_comparison(payload: dict):
    """Our mean test macro-F1 per mode beside the user's earlier IEMOCAP numbers."""
    import pandas as pd
    ours = {r["mode"]: r for r in payload["summary"]}
    rows = []
    for mode, ref in REFERENCE_RESULTS["test_macro_f1"].items():
        r = ours.get(mode)
        rows.append({"mode": mode, "earlier backend (IEMOCAP S5, real)": ref,
                     "ours (this run, mean over seeds)": None if r is None else round(r["test_macro_f1_mean"], 3),
                     "ours std": None if r is None else round(r["test_macro_f1_std"], 3)})
    return pd.DataFrame(rows).set_index("mode")


def _cli(args) -> int:
    import json
    settings = {k: getattr(args, k) for k in TRAINING_KEYS}
    payload = run_fusion_ablation(args.train_features, args.val_features, args.test_features, args.output_root,
                                  seeds=args.seeds, features_summary=args.features_summary, **settings)
    print(json.dumps({"output_root": args.output_root, "seeds": payload["seeds"],
                      "test_macro_f1": {r["mode"]: round(r["test_macro_f1_mean"], 4) for r in payload["summary"]},
                      "test_ece": {r["mode"]: round(r["test_ece_mean"], 4) for r in payload["summary"]},
                      "fusion_gain": payload["fusion_gain_over_best_single_test_macro_f1"]}, indent=2))
    return 0


def register_cli(subparsers) -> None:
    p = subparsers.add_parser("run-fusion-ablation", help="audio_only / text_only / fusion ablation (stage 08)")
    p.add_argument("--train-features", required=True)
    p.add_argument("--val-features", required=True)
    p.add_argument("--test-features", required=True)
    p.add_argument("--output-root", required=True)
    p.add_argument("--seeds", default="", help="comma list of seeds (mean ± std over them); empty: --seed only")
    add_training_flags(p)
    p.set_defaults(func=_cli, compare_fit_strategies=False)
