"""What the dry run checks after every stage ran: the things that would break the real GPU run.

Serves the dry run of `configs/gpu_iemocap.yaml` (notebooks 00-10): every profile parameter reaches its notebook
(`notebook_parameters`), clips over 15 s are cropped by notebook 03, `fp16`/`cuda` without CUDA is a clear warning
rather than a crash, notebook 09's selection ran on val, notebook 10 wrote the report, and the stand-ins share
their recorded architectures, with sentiment labels that notebook 06 maps as it will the real models' labels.
Each check is one row {check, ok, detail} of `{run_dir}/dryrun_stages.md`.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..layout import RunLayout
from .notebook_parameters import parameter_problems
from .standins import architecture_summary, loaded_architecture


def _check(name: str, ok, detail: str) -> dict:
    return {"check": name, "ok": bool(ok), "detail": detail}


def _train_report(run: RunLayout) -> dict:
    path = run.audio_model("multilingual") / "train_report.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _outputs_text(nb_path: Path) -> str:
    import nbformat
    nb = nbformat.read(str(nb_path), as_version=4)
    parts = []
    for c in nb.cells:
        for o in c.get("outputs", []):
            parts.append(o.get("text", "") if isinstance(o.get("text", ""), str) else "".join(o["text"]))
            if o.get("output_type") == "error":
                parts.append(f"[cell error] {o.get('ename')}: {o.get('evalue')}")
    return "\n".join(parts)


def _check_parameters(profile, stages: list[dict], executed: dict) -> dict:
    """Every profile parameter reaches its notebook with its value, and the notebook's code uses it."""
    missing, unused = parameter_problems(stages, executed)
    n_params = sum(len(s.parameters) for s in profile.stages)
    return _check("every profile parameter reaches its notebook", not missing and not unused,
                  f"{n_params} profile parameters in {len(profile.stages)} stages injected with their values and "
                  f"used by the notebook code" if not (missing or unused)
                  else f"not injected: {missing}; never used: {unused}")


def _check_long_clips_cropped(run: RunLayout) -> dict:
    """Clips over max_duration_sec in every split, and training/evaluation cropped them."""
    import pandas as pd
    man = run.manifest("multilingual_4class")
    longs = {s: int((pd.read_csv(man / f"{s}.csv")["duration_sec"] > 15.0).sum()) for s in ("train", "val", "test")}
    rep = _train_report(run)
    cfg = rep.get("config", {})
    return _check("clips over 15 s are cropped at max_duration_sec 15", all(longs.values()) and
                  float(cfg.get("max_duration_sec", 0)) == 15.0 and rep.get("test_metrics") is not None,
                  f"clips > 15 s per split {longs}; train max_duration_sec={cfg.get('max_duration_sec')}, "
                  f"global_step={rep.get('global_step')}, test scored: {rep.get('test_metrics') is not None}")


def _check_precision(run: RunLayout, executed: dict) -> dict:
    """fp16 on a GPU; fp16 / cuda requested without CUDA: a warning, not a crash."""
    import torch
    cfg = _train_report(run).get("config", {})
    txt03 = _outputs_text(executed["train_audio"]) if "train_audio" in executed else ""
    if torch.cuda.is_available():
        return _check("fp16 on the GPU", cfg.get("fp16") is True, f"train_report fp16={cfg.get('fp16')}")
    ok = "requested on a CPU: ignored" in txt03 and "CUDA is not available" in txt03 and "[cell error]" not in txt03
    return _check("fp16/cuda without CUDA gives a clear message, not a crash", ok,
                  "notebook 03 warned: " + "; ".join(line.strip() for line in txt03.splitlines()
                                                      if "CUDA" in line or "fp16" in line)[:400])


def _check_selection_on_val(run: RunLayout, stages: list[dict]) -> dict:
    sel = run.fusion_models / "model_selection_exp01.json"
    sel_on = json.loads(sel.read_text()).get("select_on") if sel.exists() else None
    want = next((s["parameters"].get("select_on") for s in stages if s["notebook"].startswith("09")), None)
    return _check("the selection ran on val", sel_on == want == "val",
                  f"{sel.name}: select_on={sel_on!r} (profile: {want!r})")


def _check_report_written(run: RunLayout) -> dict:
    report = run.report
    return _check("the report is written", report.exists() and report.stat().st_size > 500,
                  f"{report} ({report.stat().st_size if report.exists() else 0} bytes)")


def _check_standin_architectures(standins: dict, refs: list[dict]) -> dict:
    bad = []
    for ref in refs:
        want_arch, got_arch = architecture_summary(ref["id"]), loaded_architecture(standins[ref["id"]])
        diff = {k: (v, got_arch.get(k)) for k, v in want_arch.items() if got_arch.get(k) != v}
        if diff:
            bad.append(f"{ref['id']}: {diff}")
    return _check("every hub id has a stand-in with its recorded architecture", not bad,
                  "; ".join(bad) or ", ".join(f"{r['id']} ({standins[r['id']]['parameters'] / 1e6:.1f} M)"
                                              for r in refs))


def _check_sentiment_labels(run: RunLayout, standins: dict, refs: list[dict]) -> dict:
    """The text stand-ins' real labels map to negative/neutral/positive, and the features have those columns."""
    import pandas as pd

    from ..text import TextClassifier
    maps = {}
    for ref in refs:
        if ref["kind"] == "text":
            clf = TextClassifier.load(standins[ref["id"]]["path"], device="cpu")
            maps[ref["id"]] = dict(zip(clf.raw_labels, clf.sentiment_map))
    feats = run.features_csv("val")
    cols = list(pd.read_csv(feats, nrows=1).columns) if feats.exists() else []
    ok = all(m and None not in m.values() and {"negative", "positive"} <= set(m.values()) for m in maps.values()) \
        and {"text_negative", "text_neutral", "text_positive"} <= set(cols)
    return _check("the real sentiment labels map to negative/neutral/positive", ok,
                  json.dumps(maps, ensure_ascii=False))


def run_checks(run_dir: Path, profile, stages: list[dict], executed: dict, standins: dict,
               refs: list[dict]) -> list[dict]:
    """The checks of a finished dry run in `run_dir`, in the order of the table: [{check, ok, detail}]."""
    run = RunLayout(run_dir)
    return [_check_parameters(profile, stages, executed),
            _check_long_clips_cropped(run),
            _check_precision(run, executed),
            _check_selection_on_val(run, stages),
            _check_report_written(run),
            _check_standin_architectures(standins, refs),
            _check_sentiment_labels(run, standins, refs)]
