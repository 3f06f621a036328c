"""The pipeline runner: execute the numbered notebooks of a profile with papermill, in order.

    ser pipeline --profile configs/cpu.yaml [--only 03,04] [--from 05] [--run-dir outputs/x]

Executed copies go to `{run_dir}/notebooks/`, artifacts under `{run_dir}/` (the notebooks write them),
stage times to `{run_dir}/pipeline_timings.json`. A failing cell stops the run with a message naming the
notebook, the cell and the error.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import repo_root
from .common import SERError, write_json_atomic
from .layout import RunLayout

KERNEL = "python3"


@dataclass
class Stage:
    notebook: str
    name: str
    parameters: dict = field(default_factory=dict)


@dataclass
class Profile:
    run_name: str
    shared: dict
    stages: list[Stage]
    path: Path | None = None


@dataclass
class PipelineResult:
    run_dir: Path
    timings: list[dict]
    executed: list[Path]

    @property
    def total_sec(self) -> float:
        return sum(t["seconds"] for t in self.timings)


def load_profile(path: str | Path) -> Profile:
    """Read and validate a profile YAML (run_name, shared, stages[{notebook, name, parameters}])."""
    import yaml
    path = Path(path)
    if not path.exists():
        raise SERError(f"{path}: profile not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise SERError(f"{path}: invalid YAML ({exc})") from exc
    if not isinstance(data, dict) or "stages" not in data or "run_name" not in data:
        raise SERError(f"{path}: a profile needs `run_name` and `stages`")
    stages = []
    for i, raw in enumerate(data["stages"] or []):
        if not isinstance(raw, dict) or "notebook" not in raw:
            raise SERError(f"{path}: stage {i} needs a `notebook`")
        params = raw.get("parameters") or {}
        if not isinstance(params, dict):
            raise SERError(f"{path}: stage {i} ({raw['notebook']}): `parameters` must be a mapping")
        stages.append(Stage(str(raw["notebook"]), str(raw.get("name") or raw["notebook"]), params))
    if not stages:
        raise SERError(f"{path}: profile has no stages")
    shared = data.get("shared") or {}
    if not isinstance(shared, dict):
        raise SERError(f"{path}: `shared` must be a mapping")
    return Profile(str(data["run_name"]), shared, stages, path)


def notebook_path(notebook: str, notebooks_dir: Path | None = None) -> Path:
    nb_dir = Path(notebooks_dir) if notebooks_dir else repo_root() / "notebooks"
    name = notebook if notebook.endswith(".ipynb") else f"{notebook}.ipynb"
    path = nb_dir / name
    if not path.exists():
        raise SERError(f"notebook {path} not found")
    return path


def declared_parameters(path: Path) -> dict:
    """The names (and inferred defaults) of a notebook's `parameters` cell."""
    import nbformat
    nb = nbformat.read(str(path), as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise SERError(f"{path}: expected exactly one cell tagged `parameters`, found {len(cells)}")
    import papermill as pm
    return {name: spec["default"] for name, spec in pm.inspect_notebook(str(path)).items()}


def stage_parameters(profile: Profile, stage: Stage, run_dir: str, nb_path: Path) -> dict:
    declared = declared_parameters(nb_path)
    unknown = sorted(set(stage.parameters) - set(declared))
    if unknown:
        raise SERError(f"profile {profile.path}: stage {stage.name!r} sets {unknown}, which notebook "
                       f"{nb_path.name} does not declare in its parameters cell (it has {sorted(declared)})")
    params = {k: v for k, v in profile.shared.items() if k in declared}
    params.update(stage.parameters)
    if "run_dir" in declared:
        params["run_dir"] = run_dir
    return params


def executed_prefix(notebook: str, index: int) -> str:
    """The executed copy carries the curriculum number of its notebook (07 for both 07 stages, 08 for the
    ablation ...), or the stage's position when the notebook name does not start with one."""
    head = Path(notebook).name[:2]
    return head if head.isdigit() else f"{index:02d}"


def _select(stages: list[Stage], only: list[str] | None, from_: str | None) -> list[tuple[int, Stage]]:
    def matches(stage: Stage, key: str) -> bool:
        return key in (stage.name, stage.notebook) or stage.notebook.startswith(key)
    indexed = list(enumerate(stages))
    if from_:
        starts = [i for i, s in indexed if matches(s, from_)]
        if not starts:
            raise SERError(f"--from {from_!r} matches no stage")
        indexed = indexed[starts[0]:]
    if only:
        indexed = [(i, s) for i, s in indexed if any(matches(s, k) for k in only)]
        if not indexed:
            raise SERError(f"--only {only} matches no stage")
    return indexed


def run_pipeline(profile: str | Path, only: list[str] | None = None, from_: str | None = None,
                 run_dir: str | Path | None = None, kernel: str = KERNEL, quiet: bool = False,
                 notebooks_dir: str | Path | None = None) -> PipelineResult:
    """Run a profile's notebooks in order with papermill (cwd = repo root)."""
    import papermill as pm
    from tqdm.auto import tqdm

    prof = load_profile(profile)
    root = repo_root()
    run_dir = Path(run_dir) if run_dir else Path("outputs") / prof.run_name
    run_dir_abs = run_dir if run_dir.is_absolute() else root / run_dir
    run = RunLayout(run_dir_abs)
    out_nb_dir = run.notebooks
    out_nb_dir.mkdir(parents=True, exist_ok=True)
    selected = _select(prof.stages, only, from_)
    # validate every stage before running any
    plan = []
    for i, stage in selected:
        nb_path = notebook_path(stage.notebook, notebooks_dir)
        plan.append((i, stage, nb_path, stage_parameters(prof, stage, str(run_dir), nb_path)))

    from .hub import preflight_models  # a hub model that cannot be had stops the run here, in one line
    preflight_models(prof, {stage.name for _, stage in selected})

    timings_path = run.timings
    timings: list[dict] = []
    executed: list[Path] = []
    bar = tqdm(plan, desc=f"pipeline {prof.run_name}", unit="stage", disable=quiet, file=sys.stderr)
    for i, stage, nb_path, params in bar:
        bar.set_postfix_str(stage.name)
        out_path = out_nb_dir / f"{executed_prefix(stage.notebook, i)}_{stage.name}.ipynb"
        t0 = time.perf_counter()
        try:
            pm.execute_notebook(str(nb_path), str(out_path), parameters=params, kernel_name=kernel,
                                cwd=str(root), progress_bar=False, log_output=False)
        except pm.PapermillExecutionError as exc:
            raise SERError(
                f"stage {stage.name!r} failed in notebook {nb_path.name}, cell {exc.cell_index} "
                f"(execution count {exc.exec_count}): {exc.ename}: {exc.evalue}\n"
                f"executed copy with the traceback: {out_path}") from exc
        seconds = time.perf_counter() - t0
        timings.append({"stage": stage.name, "notebook": stage.notebook, "seconds": round(seconds, 2),
                        "parameters": params})
        executed.append(out_path)
        if not quiet:
            tqdm.write(f"[{stage.name}] {nb_path.name}: {seconds:.1f} s", file=sys.stderr)
        previous = json.loads(timings_path.read_text()) if timings_path.exists() else {}
        merged = {t["stage"]: t for t in previous.get("stages", [])}
        merged.update({t["stage"]: t for t in timings})
        write_json_atomic(timings_path, {"profile": str(prof.path), "run_dir": str(run_dir),
                                         "stages": list(merged.values())})
    result = PipelineResult(run_dir_abs, timings, executed)
    if not quiet:
        print(f"pipeline {prof.run_name}: {len(timings)} stage(s) in {result.total_sec:.1f} s -> {run_dir}",
              file=sys.stderr)
    return result
