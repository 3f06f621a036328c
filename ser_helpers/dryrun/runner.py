"""`run_dry_run`: the recipe of the dry run, from the generated corpus to the stage table.

Serves `ser pipeline --dry-run --profile configs/gpu_iemocap.yaml` (`make dryrun`), which runs notebooks 00-10 of
the profile in order: notebook 00 first (its transcripts train the stand-in tokenizers), the clips lengthened past
15 s, the stand-ins built (`standins`), the derived profile written (`plan`), every other notebook run and measured
(`monitor`), then the checks (`checks`), the estimates at full size (`estimates`) and the table (`report`).
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from .. import repo_root
from ..common import SERError, write_json_atomic, write_text_atomic
from ..hub import model_refs
from ..layout import RunLayout
from .checks import run_checks
from .estimates import add_estimates, kernel_overhead
from .monitor import PeakRSS
from .plan import DEFAULTS, WHISPER_SAMPLE_LEN_ENV, dry_run_plan, lengthen_clips
from .report import write_stage_table
from .standins import build_standin


class _StageRunner:
    """Runs the derived profile `{run_dir}/dryrun_profile.yaml` one stage at a time under `PeakRSS`; keeps the stage
    table (also in `dryrun_stages.partial.json` after each stage) and the executed notebooks. With `resume`, the
    stages an interrupted dry run in the same run_dir finished are kept as measured."""

    def __init__(self, profile, run_dir: Path, run_abs: Path, say, resume: bool):
        self.profile, self.run_dir, self.run_abs, self.say = profile, run_dir, run_abs, say
        self.derived = run_abs / "dryrun_profile.yaml"
        self.partial = run_abs / "dryrun_stages.partial.json"
        self.table: list[dict] = []
        self.executed: dict[str, Path] = {}
        self.finished = ({r["stage"]: r for r in json.loads(self.partial.read_text())}
                         if resume and self.partial.exists() else {})

    def write_profile(self, stages: list[dict]) -> None:
        import yaml
        prof = self.profile
        write_text_atomic(self.derived, "# written by ser_helpers.dryrun from " + str(prof.path) + "\n"
                          + yaml.safe_dump({"run_name": f"{prof.run_name}_dryrun", "shared": prof.shared,
                                            "stages": stages}, sort_keys=False, allow_unicode=True))

    def run(self, stage: dict) -> None:
        if not self._keep_finished(stage):
            self._measure(stage)

    def _keep_finished(self, stage: dict) -> bool:
        name = stage["name"]
        notebook = RunLayout(self.run_abs).notebooks / f"{stage['notebook'][:2]}_{name}.ipynb"
        if name not in self.finished or not notebook.exists():
            return False
        self.table.append(self.finished[name])
        self.executed[name] = notebook
        self.say(f"[dry run] {name}: kept from the interrupted run ({self.finished[name]['wall_sec']} s)")
        return True

    def _measure(self, stage: dict) -> None:
        from ..pipeline import run_pipeline
        name = stage["name"]
        self.say(f"[dry run] {name} ({stage['notebook']}) ...")
        with PeakRSS() as mon:
            t0 = time.perf_counter()
            res = run_pipeline(self.derived, only=[name], run_dir=self.run_dir, quiet=True)
            wall = time.perf_counter() - t0
        self.executed[name] = res.executed[0]
        self.table.append({"stage": name, "notebook": stage["notebook"], "wall_sec": round(wall, 1),
                           "cpu_sec": round(mon.cpu_sec, 1), "peak_rss_mib": round(mon.peak / 2**20, 1)})
        write_json_atomic(self.partial, self.table)
        self.say(f"[dry run] {name}: {wall:.1f} s wall, {mon.cpu_sec:.0f} CPU s, peak RSS {mon.peak / 2**20:.0f} MiB")


def _complete_settings(settings: dict) -> dict:
    unknown = set(settings) - set(DEFAULTS)
    if unknown:
        raise SERError(f"unknown dry-run settings {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    return {**DEFAULTS, **settings}


def _set_environment(settings: dict) -> None:
    """Offline hub, quiet tokenizers, and the Whisper token cap the notebooks' kernels inherit."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ[WHISPER_SAMPLE_LEN_ENV] = str(int(settings["whisper_sample_len"]))


def _make_corpus(runner: _StageRunner, refs: list[dict], settings: dict) -> tuple[list[str], list[str]]:
    """Run the corpus stage (notebook 00) and lengthen its clips; returns (lengthened clips, transcripts)."""
    from ..synth import read_corpus_table
    stages, _ = dry_run_plan(runner.profile, {r["id"]: {"path": "?"} for r in refs}, settings)
    runner.write_profile(stages)
    for stage in stages:
        if stage["notebook"].startswith("00"):
            runner.run(stage)
    corpus = RunLayout(runner.run_abs).corpus
    lengthened = lengthen_clips(corpus, settings["long_clip_sec"])
    return lengthened, [str(t) for t in read_corpus_table(corpus)["text"].tolist()]


def _build_standins(run_abs: Path, refs: list[dict], texts: list[str], say) -> tuple[dict, float]:
    """One stand-in per hub id of the profile under `{run_dir}/standins/`; returns (id -> info, seconds)."""
    t0 = time.perf_counter()
    standins = {}
    for ref in refs:
        if ref["id"] not in standins:
            say(f"[dry run] stand-in for {ref['id']} ...")
            standins[ref["id"]] = build_standin(ref["id"], run_abs / "standins" / ref["id"].replace("/", "__"),
                                                texts=texts)
    seconds = time.perf_counter() - t0
    say(f"[dry run] stand-ins ready in {seconds:.0f} s")
    return standins, seconds


def _machine() -> dict:
    import torch
    return {"device": (torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU only"),
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "host_cpus": os.cpu_count(),
            "load_average": [round(x, 1) for x in os.getloadavg()]}


def _raise_on_failed_checks(checks: list[dict], run_abs: Path) -> None:
    failed = [c for c in checks if not c["ok"]]
    if failed:
        raise SERError("dry run: failed check(s): " + " | ".join(f"{c['check']}: {c['detail']}" for c in failed)
                       + f" (table: {run_abs / 'dryrun_stages.md'})")


def run_dry_run(profile: str | os.PathLike, run_dir: str | os.PathLike | None = None, quiet: bool = False,
                resume: bool = False, **settings) -> dict:
    """Run the dry run of `profile`; returns the stage-table payload (also written to run_dir). Raises SERError
    naming the failed checks, after writing the table, when a check fails. `resume`: keep the stages an
    interrupted dry run in the same run_dir finished (development; their timings are kept as measured)."""
    from ..pipeline import load_profile
    settings = _complete_settings(settings)
    prof = load_profile(profile)
    run_dir = Path(run_dir) if run_dir else Path("outputs") / f"{prof.run_name}_dryrun"
    run_abs = run_dir if run_dir.is_absolute() else repo_root() / run_dir
    run_abs.mkdir(parents=True, exist_ok=True)
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    _set_environment(settings)
    started = time.perf_counter()
    refs = model_refs(prof)
    overhead = kernel_overhead()
    runner = _StageRunner(prof, run_dir, run_abs, say, resume)
    # 1) the corpus first (its transcripts train the stand-in tokenizers), then the stand-ins
    lengthened, texts = _make_corpus(runner, refs, settings)
    standins, standin_sec = _build_standins(run_abs, refs, texts, say)
    # 2) every other stage, with the stand-ins
    stages, overrides = dry_run_plan(prof, standins, settings)
    runner.write_profile(stages)
    for stage in stages:
        if not stage["notebook"].startswith("00"):
            runner.run(stage)
    # 3) the checks, the estimates at full size, the table
    checks = run_checks(run_abs, prof, stages, runner.executed, standins, refs)
    add_estimates(runner.table, run_abs, stages, overhead)
    total = max(time.perf_counter() - started,  # a resumed run: the stages' own times
                sum(r["wall_sec"] for r in runner.table) + standin_sec)
    payload = {"profile": str(prof.path), "run_dir": str(run_dir), **_machine(), "settings": settings,
               "overhead_sec": round(overhead, 2), "standin_build_sec": round(standin_sec, 1),
               "total_sec": round(total, 1), "stages": runner.table,
               "estimate_total_sec": round(sum(r["estimate_sec"] or 0 for r in runner.table), 1),
               "checks": checks, "overrides": overrides, "lengthened_clips": lengthened,
               "standins": {k: {kk: vv for kk, vv in v.items() if kk != "stamp"} for k, v in standins.items()}}
    md = write_stage_table(payload, run_abs)
    if not quiet:
        print(md)
    _raise_on_failed_checks(checks, run_abs)
    return payload
