"""RunLayout: the run folder of shared/DESIGN.md ("Where a run writes") in one object."""
from __future__ import annotations

from pathlib import Path

from ser_helpers.layout import RunLayout


def test_paths_follow_the_design_layout(tmp_path):
    run = RunLayout(tmp_path / "cpu")
    r = tmp_path / "cpu"
    assert run.corpus == r / "corpus" and run.iemocap_raw == r / "corpus/iemocap_raw"
    assert run.casia_raw == r / "corpus/casia_raw"
    assert run.manifest("iemocap_4class") == r / "manifests/iemocap_4class"
    assert run.audio_model("multilingual") == r / "models/audio/multilingual"
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
