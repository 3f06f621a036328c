"""Project-level contracts: environment files, lock file, notebooks, profiles, README commands."""
from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PROFILES = sorted((ROOT / "configs").glob("*.yaml"))


def _norm(name: str) -> str:
    return re.split(r"[<>=!~\[; ]", name.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_lists_what_pyproject_needs():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert any(str(d).startswith("python=3.11") for d in env["dependencies"] if isinstance(d, str))
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    pip_names = {_norm(x) for x in pip_section if not x.startswith("-")}
    needed = {_norm(d) for d in _pyproject()["project"]["dependencies"]}
    assert needed - pip_names == set(), f"environment.yml misses {needed - pip_names}"
    assert "-e ." in pip_section, "environment.yml must install this package"
    assert "torchaudio" not in pip_names


def test_lock_file_pins_every_dependency_and_torch_2_13():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt line not pinned: {line!r}"
            pins[_norm(name)] = version
    assert pins["torch"] == "2.13.0"
    project = _pyproject()["project"]
    needed = {_norm(d) for d in project["dependencies"]}
    needed |= {_norm(d) for d in project["optional-dependencies"]["test"]}
    assert needed - set(pins) == set(), f"not pinned in constraints.txt: {needed - set(pins)}"
    assert "torchaudio" not in pins


def test_makefile_and_ci_use_the_two_commands():
    make = (ROOT / "Makefile").read_text()
    assert re.search(r"^run:", make, re.M) and re.search(r"^test:", make, re.M)
    assert "-c constraints.txt" in make
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme and "make test" in readme


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_committed_clean_with_one_literal_parameters_cell(path):
    nb = nbformat.read(str(path), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), "has outputs"
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    tree = ast.parse(params[0].source)
    for stmt in tree.body:
        assert isinstance(stmt, ast.Assign), f"non-assignment in parameters cell: {ast.dump(stmt)[:80]}"
        ast.literal_eval(stmt.value)  # plain literals only
    names = {t.id for s in tree.body for t in s.targets}
    assert "run_dir" in names
    assert "import ser_helpers as ser" in code[0].source
    assert nb.cells[0].cell_type == "markdown"


def test_all_curriculum_notebooks_exist():
    numbers = sorted({p.name[:2] for p in NOTEBOOKS})
    assert numbers == [f"{i:02d}" for i in range(11)]


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_profile_parameters_exist_in_notebooks(profile):
    """Every parameter a profile sets (gpu_iemocap included, which cannot run here) is declared by its notebook."""
    from ser_helpers.pipeline import declared_parameters, load_profile, notebook_path
    prof = load_profile(profile)
    for stage in prof.stages:
        declared = declared_parameters(notebook_path(stage.notebook))
        unknown = set(stage.parameters) - set(declared)
        assert not unknown, f"{profile.name}: {stage.name} sets {unknown} not in {stage.notebook}"
