"""Notebook tables of a fusion train_report.

Taught in notebook 07 (07_train_late_fusion.ipynb).
"""
from __future__ import annotations


# ============================================================================ notebook tables
def report_table(report: dict, languages: bool = True):
    """Uncalibrated vs calibrated metrics per split (and language) from a train_report, as a DataFrame."""
    import pandas as pd
    rows = []
    for split in ("val", "test"):
        for kind in ("uncalibrated", "calibrated"):
            blocks = {"all": report[kind][split]}
            if languages:
                blocks.update(report[kind][split].get("per_language", {}))
            for lang, m in blocks.items():
                rows.append({"split": split, "language": lang, "probabilities": kind, "n": m["n"],
                             **{k: round(m[k], 4) for k in ("accuracy", "ua", "macro_f1", "ece", "nll", "brier")}})
    return pd.DataFrame(rows).set_index(["split", "language", "probabilities"])


def comparison_table(report: dict):
    """Test metrics of the fit strategies the run measured (val_cv vs the naive train fit)."""
    import pandas as pd
    rows = []
    for strategy, m in (report.get("fit_strategy_comparison") or {}).items():
        ci = m.get("test_macro_f1_ci") or [None, None]
        rows.append({"fit_strategy": strategy, "used": strategy == report["fit_strategy"],
                     "test_macro_f1": round(m["test_macro_f1"], 4),
                     "test_macro_f1 95% CI": f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci[0] is not None else "n/a",
                     "test_accuracy": round(m["test_accuracy"], 4),
                     "test_ece (uncalibrated)": round(m["test_ece_uncalibrated"], 4),
                     "test_ece (calibrated)": round(m["test_ece"], 4), "temperature": round(m["temperature"], 3)})
    return pd.DataFrame(rows).set_index("fit_strategy") if rows else pd.DataFrame()
