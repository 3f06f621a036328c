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


# ============================================================================ the import graph of ser_helpers
PACKAGE = ROOT / "ser_helpers"

#: stage of each top-level module/package: the notebook that teaches it (00-02 are one stage: the corpus and the
#: manifests of notebooks 00, 01 and 02). A stage may import its own and earlier stages, never a later one.
STAGE = {
    "corpus": 2, "synth": 2, "manifest": 2,
    "acoustic": 3, "inference": 3, "baseline": 3,
    "evaluate": 4,
    "service": 5, "admission": 5,  # admission: the old name of service.admission
    "asr": 6, "text": 6, "features": 6,
    "fusion": 7,
    "ablation": 8,
    "selection": 9, "report": 9, "predictor": 9,  # predictor: fusion_best loads as a FusionPredictor in 09
    "demo": 10,
}
#: shared by every stage: they may be imported by anyone and import no stage ("" is the package root:
#: __version__, repo_root, nb_setup; it loads its submodules lazily by name, so it has no static imports)
SHARED = {"", "common", "audio", "metrics", "layout", "plots", "weights", "hub", "references"}
#: runners: they may import everything, and nothing but another runner imports them
RUNNERS = {"pipeline", "pipeline_cli", "dryrun", "cli"}

#: (importer, imported) edges from a stage to a later one that are known and kept: {edge: why}
LATER_STAGE_ALLOWED = {
    # the service (05) can also serve the fused pipeline of 09 (SER_FUSION_DIR); notebook 05 serves the audio
    # models alone, so the predictor is imported only when that setting is given
    ("ser_helpers.service.app", "ser_helpers.predictor"):
        "optional fused pipeline, imported inside SERService.load when SER_FUSION_DIR is set",
    # /asr/transcribe answers with the bundled Whisper tiny.en of the speech-recognition stage (06)
    ("ser_helpers.service.app", "ser_helpers.asr.factory"):
        "bundled Whisper for /asr/transcribe, imported inside SERService.asr_transcriber/asr_problem on first use",
}


def _module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of ser_helpers (a package is named by its __init__.py)."""
    files = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


def _imports_of(module: str, path: Path, packages: set[str]) -> list[tuple[str, str | None, int]]:
    """(imported module, imported name or None, line) for every ser_helpers import in `module`, at any depth
    (function-level lazy imports included); relative imports made absolute."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(a.name, None, node.lineno) for a in node.names if a.name.split(".")[0] == "ser_helpers"]
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                base = module.split(".") if module in packages else module.split(".")[:-1]
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            if target.split(".")[0] == "ser_helpers":
                found += [(target, a.name, node.lineno) for a in node.names]
    return found


def import_graph() -> dict[str, dict[str, int]]:
    """module -> {imported module: first line}, over the modules of ser_helpers.

    Package `__init__` re-exports are seen through: `from ser_helpers.fusion import load_fusion_model` is an edge
    to the submodule that `fusion/__init__.py` takes the name from (`ser_helpers.fusion.load`), and
    `from ser_helpers import metrics` is an edge to the module `ser_helpers.metrics`. Only an import of the package
    object itself (`from . import features`, `import ser_helpers.fusion`) or of a name that the `__init__` defines
    is an edge to the `__init__`, which in turn imports its submodules."""
    files = _module_files()
    packages = {m for m, p in files.items() if p.name == "__init__.py"}
    imports = {m: _imports_of(m, p, packages) for m, p in files.items()}
    reexported = {pkg: {name: target for target, name, _ in imports[pkg] if name and target.startswith(pkg + ".")}
                  for pkg in packages}

    def resolve(target: str, name: str | None) -> str:
        while True:
            if name and f"{target}.{name}" in files:
                return f"{target}.{name}"
            if target not in packages or name not in reexported[target]:
                return target
            target = reexported[target][name]

    graph = {m: {} for m in files}
    for module, found in imports.items():
        for target, name, line in found:
            imported = resolve(target, name)
            assert imported in files, f"{files[module]}:{line} imports {target}.{name}: no such ser_helpers module"
            if imported != module:
                graph[module].setdefault(imported, line)
    return graph


def _unit(module: str) -> str:
    """The top-level module or package of ser_helpers a module belongs to ("" for the package root)."""
    return module.split(".")[1] if "." in module else ""


def test_every_ser_helpers_module_has_a_place_in_the_stage_order():
    units = {_unit(m) for m in _module_files()}
    unplaced = units - set(STAGE) - SHARED - RUNNERS
    assert not unplaced, f"add {sorted(unplaced)} to STAGE, SHARED or RUNNERS in tests/test_project.py"
    assert set(STAGE) | SHARED | RUNNERS <= units, "STAGE/SHARED/RUNNERS name a module that no longer exists"


def test_ser_helpers_has_no_import_circle():
    """No circle in the import graph of ser_helpers (`import_graph`).

    The rule: a function-level (lazy) import counts like a top-level one, since it still ties the two modules
    together. An import through a package `__init__` counts as an import of the submodule the name really comes
    from, so a package whose `__init__` only re-exports is judged by its submodules' own edges (a submodule taking
    a sibling's name through `ser_helpers.fusion` is no circle with `fusion/__init__`). Importing the package
    object itself counts as importing its `__init__`, and through it every submodule the `__init__` imports."""
    graph = import_graph()
    state: dict[str, str] = {}  # "open" while on the depth-first path, "done" after
    path: list[str] = []

    def visit(module):
        state[module] = "open"
        path.append(module)
        for imported in graph[module]:
            if state.get(imported) == "open":
                circle = path[path.index(imported):] + [imported]
                steps = [f"{a} (line {graph[a][b]})" for a, b in zip(circle, circle[1:])]
                pytest.fail("import circle: " + " -> ".join(steps) + f" -> {imported}")
            if imported not in state:
                visit(imported)
        path.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_no_stage_imports_a_later_stage():
    """A stage module imports only its own stage, earlier stages and the shared modules; a shared module imports
    only shared modules; runners import anything and only runners import them. Known exceptions are listed, with
    their reason, in LATER_STAGE_ALLOWED (and each must still be needed)."""
    def allowed(unit: str, imported_unit: str) -> bool:
        if imported_unit == unit or unit in RUNNERS or imported_unit in SHARED:
            return True
        if unit in SHARED or imported_unit in RUNNERS:
            return False
        return STAGE[imported_unit] <= STAGE[unit]

    wrong, used = [], set()
    for module, imported in import_graph().items():
        for target, line in imported.items():
            if allowed(_unit(module), _unit(target)):
                continue
            if (module, target) in LATER_STAGE_ALLOWED:
                used.add((module, target))
                continue
            wrong.append(f"{module} (line {line}) imports {target}")
    assert not wrong, "imports of a later stage:\n" + "\n".join(wrong)
    assert used == set(LATER_STAGE_ALLOWED), f"no longer needed: {set(LATER_STAGE_ALLOWED) - used}"
