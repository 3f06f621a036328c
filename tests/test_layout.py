"""RunLayout: the run folder of shared/DESIGN.md ("Where a run writes") in one object."""
from __future__ import annotations

import re
from pathlib import Path

from ser_helpers.layout import RunLayout

ROOT = Path(__file__).resolve().parents[1]


def test_paths_follow_the_design_layout(tmp_path):
    run = RunLayout(tmp_path / "cpu")
    r = tmp_path / "cpu"
    assert run.corpus == r / "corpus" and run.iemocap_raw == r / "corpus/iemocap_raw"
    assert run.casia_raw == r / "corpus/casia_raw"
    assert run.manifest("iemocap_4class") == r / "manifests/iemocap_4class"
    assert run.audio_models == r / "models/audio" and run.audio_model("multilingual") == r / "models/audio/multilingual"
    assert run.audio_best_model("multilingual") == r / "models/audio/multilingual/best_model"
    assert run.baseline_model("default") == r / "models/baseline/default"
    assert run.eval_dir("multilingual") == r / "eval/multilingual"
    assert run.base_model("small") == r / "models/base/small" and run.service == r / "service"
    assert run.text_model("sentiment_tiny") == r / "models/text/sentiment_tiny"
    assert run.features_csv("val") == r / "features/val_features.csv"
    assert run.fusion_model("fusion_mlp") == r / "fusion/models/fusion_mlp"
    assert run.ablation == r / "fusion/ablation" and run.fusion_best == r / "fusion/models/fusion_best"
    assert run.notebooks == r / "notebooks" and run.report == r / "REPORT.md"
    assert run.timings == r / "pipeline_timings.json"
    assert RunLayout("outputs/cpu").run_dir == Path("outputs/cpu")


def test_run_of_a_fusion_model_folder(tmp_path):
    run = RunLayout(tmp_path / "cpu")
    assert RunLayout.of_fusion_model(run.fusion_best).run_dir == (tmp_path / "cpu").resolve()
    assert RunLayout.of_fusion_model(tmp_path / "somewhere" / "else") is None


def test_report_and_selection_read_the_same_places():
    from ser_helpers import report, selection
    assert report.ARTIFACTS["fusion_report"] == "fusion/models/fusion_best/train_report.json"
    assert report.ARTIFACTS["ablation_json"] == "fusion/ablation/ablation_summary.json"
    assert report.REPORT_NAME == "REPORT.md" and selection.BEST_NAME == "fusion_best"


#: a run folder's place joined by hand: `run_dir / "features"`, `Path(run_dir) / "models" / ...`, f"{run_dir}/eval/..."
_PLACES = "|".join(re.escape(p.split("/")[0]) for p in (RunLayout.CORPUS, RunLayout.MANIFESTS, RunLayout.AUDIO_MODELS,
                                                        RunLayout.EVAL, RunLayout.SERVICE, RunLayout.FEATURES,
                                                        RunLayout.FUSION_MODELS, RunLayout.NOTEBOOKS,
                                                        RunLayout.REPORT, RunLayout.TIMINGS))
HAND_WRITTEN = re.compile(rf'(\brun_dir|\brun_abs|\brun_dir_abs|Path\(run_dir\))\s*/\s*f?"({_PLACES})\b'
                          rf'|f"\{{run_dir\}}/({_PLACES})\b')
#: notebook 03's builder is moved to RunLayout on its own branch (drop it from here once merged)
NOT_YET: set[str] = set()


def test_hand_written_pattern_catches_a_join():
    assert HAND_WRITTEN.search('x = Path(run_dir) / "models" / "audio"')
    assert HAND_WRITTEN.search('d = run_dir / "features"') and HAND_WRITTEN.search('f"{run_dir}/eval/{name}"')
    assert not HAND_WRITTEN.search('d = run.features') and not HAND_WRITTEN.search('run_abs / "dryrun_stages.json"')


def test_library_and_builders_take_run_paths_from_the_layout():
    """Every run-folder path in the package and the notebook builders comes from RunLayout (one place to move)."""
    files = sorted(ROOT.glob("ser_helpers/**/*.py")) + sorted(ROOT.glob("tools/notebooks/build_*.py"))
    found = [f"{f.relative_to(ROOT)}:{i}: {line.strip()}" for f in files
             if f.relative_to(ROOT).as_posix() not in NOT_YET and f.name != "layout.py"
             for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1) if HAND_WRITTEN.search(line)]
    assert not found, "run paths written by hand (use ser_helpers.layout.RunLayout):\n" + "\n".join(found)
