"""The stage table of the dry run, `{run_dir}/dryrun_stages.md`: times, memory, estimates, checks, overrides.

Serves the dry run of `configs/gpu_iemocap.yaml` (notebooks 00-10): one row per notebook with its wall and CPU
time, peak memory and estimate at full size (`estimates`), then the checks (`checks`), what the dry run changed
in the profile (`plan`) and the stand-ins (`standins`). The same payload is kept as `dryrun_stages.json`.
"""
from __future__ import annotations

from pathlib import Path

from ..common import write_json_atomic, write_text_atomic
from .estimates import REAL_MEAN_SEC_CAPPED


def _fmt_sec(s) -> str:
    if s is None:
        return "n/a"
    s = float(s)
    return f"{s:.0f} s" if s < 120 else (f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h")


def stage_table_md(payload: dict) -> str:
    lines = [f"# Dry run of `{payload['profile']}` ({payload['device']})", "",
             f"{payload['when']}, {payload['host_cpus']} CPU(s), load average {payload.get('load_average')} at "
             f"the end; total wall {_fmt_sec(payload['total_sec'])}, kernels' CPU time "
             f"{_fmt_sec(sum(r.get('cpu_sec') or 0 for r in payload['stages']))} (on a shared machine the wall "
             "time is inflated; on a quiet 2-core one a stage takes between CPU/2 and CPU). "
             "Estimate at full size: the stage's CPU time extrapolated linearly from its measured per-utterance "
             f"cost on THIS machine (kernel start-up {payload['overhead_sec']:.1f} CPU s counted once), so an upper "
             "bound of a quiet 2-core run, to IEMOCAP 5531 + CASIA 800 "
             f"utterances (mean {REAL_MEAN_SEC_CAPPED} s at the 15 s cut); training as if no early stop. "
             "Stages 05, 09 and 10 handle a fixed number of clips or candidates; 07 and 08 are mostly fixed cost "
             "(their linear estimates are upper bounds).", "",
             "| stage | notebook | wall | CPU | peak RSS (MiB) | dry-run work | real work | unit | estimate at full size (CPU) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in payload["stages"]:
        lines.append(f"| {r['stage']} | {r['notebook']} | {_fmt_sec(r['wall_sec'])} | {_fmt_sec(r.get('cpu_sec'))} | "
                     f"{r['peak_rss_mib']:.0f} | "
                     f"{r['work_dry'] if r['work_dry'] is not None else '-'} | "
                     f"{r['work_real'] if r['work_real'] is not None else '-'} | {r['unit']} | "
                     f"{_fmt_sec(r['estimate_sec'])} |")
    lines += ["", f"Estimated full-size total on this machine: {_fmt_sec(payload['estimate_total_sec'])}.", "",
              "## Checks", ""]
    lines += [f"- {'PASS' if c['ok'] else 'FAIL'} {c['check']}: {c['detail']}" for c in payload["checks"]]
    lines += ["", "## What the dry run changed (everything else is the profile's)", "",
              "| stage | parameter | real run | dry run | why |", "|---|---|---|---|---|"]
    lines += [f"| {o['stage']} | {o['param']} | `{o['real']}` | `{o['dry_run']}` | {o['why']} |"
              for o in payload["overrides"]]
    lines += ["", "## Stand-ins", ""]
    lines += [f"- `{k}`: {v['parameters'] / 1e6:.1f} M parameters, {v['path']}" for k, v in payload["standins"].items()]
    return "\n".join(lines) + "\n"


def write_stage_table(payload: dict, run_dir: Path) -> str:
    """Write `dryrun_stages.json` (the payload) and `dryrun_stages.md` (the table) into `run_dir`; returns the table."""
    write_json_atomic(run_dir / "dryrun_stages.json", payload)
    md = stage_table_md(payload)
    write_text_atomic(run_dir / "dryrun_stages.md", md)
    return md
