"""The papermill runner on toy notebooks: order, parameters, repeated notebooks, failures named."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tools.nbbuild import write_notebook  # noqa: E402

from ser_helpers.common import SERError  # noqa: E402
from ser_helpers.pipeline import load_profile, run_pipeline  # noqa: E402


@pytest.fixture
def toy(tmp_path):
    nbs = tmp_path / "nbs"
    write_notebook(nbs / "00_write.ipynb", [
        ("code", "import json, pathlib"),
        ("params", 'run_dir = "outputs/x"\nvalue = 1\nseed = 0'),
        ("code", "p = pathlib.Path(run_dir) / 'values.jsonl'\np.parent.mkdir(parents=True, exist_ok=True)\n"
                 "with open(p, 'a') as fh: fh.write(json.dumps({'value': value, 'seed': seed}) + '\\n')"),
    ])
    write_notebook(nbs / "01_fail.ipynb", [
        ("params", 'run_dir = "outputs/x"'),
        ("code", "x = 1"),
        ("code", "raise ValueError('deliberate failure in stage one')"),
    ])
    return nbs


def _profile(tmp_path, text):
    path = tmp_path / "profile.yaml"
    path.write_text(text)
    return path


def test_runs_stages_in_order_with_parameters(tmp_path, toy):
    prof = _profile(tmp_path, """
run_name: toy
shared: {seed: 7, unused_elsewhere: 3}
stages:
  - {notebook: 00_write, name: first, parameters: {value: 1}}
  - {notebook: 00_write, name: second, parameters: {value: 2}}
""")
    run_dir = tmp_path / "run"
    res = run_pipeline(prof, run_dir=run_dir, notebooks_dir=toy, quiet=True)
    lines = [json.loads(x) for x in (run_dir / "values.jsonl").read_text().splitlines()]
    assert lines == [{"value": 1, "seed": 7}, {"value": 2, "seed": 7}]
    # executed copies carry the notebook's curriculum number and the stage name
    assert [p.name for p in res.executed] == ["00_first.ipynb", "00_second.ipynb"]
    timings = json.loads((run_dir / "pipeline_timings.json").read_text())
    assert [t["stage"] for t in timings["stages"]] == ["first", "second"]
    # --only reruns one stage
    run_pipeline(prof, run_dir=run_dir, notebooks_dir=toy, quiet=True, only=["second"])
    assert len((run_dir / "values.jsonl").read_text().splitlines()) == 3


def test_failure_names_notebook_and_cell(tmp_path, toy):
    prof = _profile(tmp_path, "run_name: toy\nstages:\n  - {notebook: 01_fail, name: broken}\n")
    with pytest.raises(SERError) as exc:
        run_pipeline(prof, run_dir=tmp_path / "run", notebooks_dir=toy, quiet=True)
    msg = str(exc.value)
    assert "01_fail.ipynb" in msg and "cell" in msg and "deliberate failure" in msg and "broken" in msg


def test_unknown_parameter_is_refused_before_running(tmp_path, toy):
    prof = _profile(tmp_path, "run_name: toy\nstages:\n  - {notebook: 00_write, parameters: {typo_value: 1}}\n")
    with pytest.raises(SERError, match="typo_value"):
        run_pipeline(prof, run_dir=tmp_path / "run", notebooks_dir=toy, quiet=True)
    assert not (tmp_path / "run" / "values.jsonl").exists()


def test_bad_profiles(tmp_path):
    with pytest.raises(SERError, match="not found"):
        load_profile(tmp_path / "none.yaml")
    with pytest.raises(SERError, match="run_name"):
        load_profile(_profile(tmp_path, "stages: []\n"))
    with pytest.raises(SERError, match="invalid YAML"):
        load_profile(_profile(tmp_path, "run_name: [unclosed\n"))


def test_executed_copy_prefix():
    from ser_helpers.pipeline import executed_prefix
    assert executed_prefix("07_train_late_fusion", 8) == "07"
    assert executed_prefix("notebooks/10_gradio_demo.ipynb", 11) == "10"
    assert executed_prefix("my_analysis", 3) == "03"
