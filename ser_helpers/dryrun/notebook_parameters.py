"""The notebook-parameter check of the dry run: does every profile parameter reach its notebook, and is it used?

Serves the dry run of `configs/gpu_iemocap.yaml` (notebooks 00-10, run by papermill): it reads each executed
notebook's injected-parameters cell (the values papermill wrote) and the code outside the parameters cells (does
any line read the name, directly or through a stage config such as `TrainConfig.from_params(globals())`).
A parameter that is not injected or never read would be silently ignored by the real GPU run.
"""
from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path


def _injected(nb_path: Path) -> dict:
    import nbformat
    nb = nbformat.read(str(nb_path), as_version=4)
    out = {}
    for cell in nb.cells:
        if "injected-parameters" in cell.metadata.get("tags", []):
            for node in ast.parse(cell.source).body:
                if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                    out[node.targets[0].id] = ast.literal_eval(node.value)
    return out


def _code_outside_parameters(nb_path: Path) -> str:
    import nbformat
    nb = nbformat.read(str(nb_path), as_version=4)
    return "\n".join(c.source for c in nb.cells if c.cell_type == "code"
                     and not {"parameters", "injected-parameters"} & set(c.metadata.get("tags", [])))


def _config_fields_read_from_globals(code: str) -> set[str]:
    """Parameters a notebook hands to a stage config in one call (`TrainConfig.from_params(globals())`,
    `FeaturesConfig.from_params(globals(), ...)`, `FusionConfig.params_in(globals())`): every field of that config
    counts as used."""
    from ..acoustic import TrainConfig
    from ..baseline import BaselineConfig
    from ..evaluate import EvaluateConfig
    from ..features import FeaturesConfig
    from ..fusion import FusionConfig
    configs = {c.__name__: c for c in (TrainConfig, EvaluateConfig, BaselineConfig, FeaturesConfig, FusionConfig)}
    used: set[str] = set()
    for name in re.findall(r"\b(\w+)\.(?:from_params|params_in)\(\s*globals\(\)", code):
        if name in configs:
            used |= {f.name for f in dataclasses.fields(configs[name])}
    return used


def parameter_problems(stages: list[dict], executed: dict) -> tuple[list[str], list[str]]:
    """(not injected, never used): the `stage.param` names of the derived profile `stages` whose value did not
    reach the executed notebook (`executed`: stage name -> notebook path), and those its code never reads."""
    missing, unused = [], []
    for st in stages:
        nb = executed.get(st["name"])
        got = _injected(nb) if nb else {}
        code = _code_outside_parameters(nb) if nb else ""
        via_config = _config_fields_read_from_globals(code)
        for key, value in st["parameters"].items():
            if got.get(key, object()) != value:
                missing.append(f"{st['name']}.{key}")
            if key not in via_config and not re.search(rf"\b{re.escape(key)}\b", code):
                unused.append(f"{st['name']}.{key}")
    return missing, unused
