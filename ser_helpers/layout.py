"""Where a run writes: the folders and files of `outputs/<run>/` (shared/DESIGN.md, "Where a run writes") in one place.

    run = RunLayout("outputs/cpu")
    run.manifest("iemocap_4class")          # outputs/cpu/manifests/iemocap_4class
    run.audio_best_model("multilingual")    # outputs/cpu/models/audio/multilingual/best_model
    run.fusion_model("fusion_mlp")          # outputs/cpu/fusion/models/fusion_mlp
    run.fusion_best                         # outputs/cpu/fusion/models/fusion_best

The class constants are the same places relative to the run folder (for globs such as the report's).
Taught in notebook 00 (00_make_demo_corpus), which starts every run; every later notebook derives its paths here.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunLayout:
    """The paths of one run folder (`run_dir` = the profile's `outputs/<run_name>`)."""
    run_dir: Path

    CORPUS = "corpus"                      # 00: iemocap_raw/ (IEMOCAP layout), casia_raw/ (CASIA layout)
    MANIFESTS = "manifests"                # 01, 02: <name>/{train,val,test}.csv, summary.json
    BASE_MODELS = "models/base"            # 03: <size>/ (the small randomly initialised wav2vec2 of the cpu run)
    AUDIO_MODELS = "models/audio"          # 03: <name>/best_model/, train_report.json, label_map.json
    BASELINE_MODELS = "models/baseline"    # 04: <name>/baseline_model.json, train_report.json
    EVAL = "eval"                          # 04: <name>/test_metrics.json, predictions, confusion
    SERVICE = "service"                    # 05: the service's settings and logs
    TEXT_MODELS = "models/text"            # 06: <name>/ (the tiny sentiment model)
    FEATURES = "features"                  # 06: {split}_features.csv, summary.json, asr_cache.json
    FUSION_MODELS = "fusion/models"        # 07: <exp>/fusion_model.pt, train_report.json, pipeline.json
    ABLATION = "fusion/ablation"           # 08: ablation_summary.csv/.json, one folder per mode (and seed)
    FUSION_BEST = f"{FUSION_MODELS}/fusion_best"  # 09: the winner (+ model_selection_<exp>.csv/.json beside it)
    NOTEBOOKS = "notebooks"                # the runner's executed copies
    REPORT = "REPORT.md"                   # 10: the stakeholder report
    TIMINGS = "pipeline_timings.json"      # the runner's per-stage seconds

    def __init__(self, run_dir: str | os.PathLike):
        object.__setattr__(self, "run_dir", Path(run_dir))

    @classmethod
    def of_fusion_model(cls, fusion_dir: str | os.PathLike) -> "RunLayout | None":
        """The run a `{run_dir}/fusion/models/<exp>` folder belongs to (None when it lies elsewhere)."""
        parents = Path(fusion_dir).resolve().parents
        if len(parents) >= 3 and parents[0].name == "models" and parents[1].name == "fusion":
            return cls(parents[2])
        return None

    # 00
    @property
    def corpus(self) -> Path:
        return self.run_dir / self.CORPUS

    @property
    def iemocap_raw(self) -> Path:
        return self.corpus / "iemocap_raw"

    @property
    def casia_raw(self) -> Path:
        return self.corpus / "casia_raw"

    # 01, 02
    @property
    def manifests(self) -> Path:
        return self.run_dir / self.MANIFESTS

    def manifest(self, name: str) -> Path:
        return self.manifests / name

    # 03, 04, 05
    def base_model(self, size: str) -> Path:
        return self.run_dir / self.BASE_MODELS / size

    @property
    def audio_models(self) -> Path:
        return self.run_dir / self.AUDIO_MODELS

    def audio_model(self, name: str) -> Path:
        return self.audio_models / name

    def audio_best_model(self, name: str) -> Path:
        """The loadable model of `audio_model(name)` (what AudioClassifier and the service take)."""
        return self.audio_model(name) / "best_model"

    def baseline_model(self, name: str) -> Path:
        return self.run_dir / self.BASELINE_MODELS / name

    def eval_dir(self, name: str) -> Path:
        return self.run_dir / self.EVAL / name

    @property
    def service(self) -> Path:
        return self.run_dir / self.SERVICE

    # 06
    def text_model(self, name: str) -> Path:
        return self.run_dir / self.TEXT_MODELS / name

    @property
    def features(self) -> Path:
        return self.run_dir / self.FEATURES

    def features_csv(self, split: str) -> Path:
        return self.features / f"{split}_features.csv"

    # 07, 08, 09
    @property
    def fusion_models(self) -> Path:
        return self.run_dir / self.FUSION_MODELS

    def fusion_model(self, experiment: str) -> Path:
        return self.fusion_models / experiment

    @property
    def ablation(self) -> Path:
        return self.run_dir / self.ABLATION

    @property
    def fusion_best(self) -> Path:
        return self.run_dir / self.FUSION_BEST

    # the runner and 10
    @property
    def notebooks(self) -> Path:
        return self.run_dir / self.NOTEBOOKS

    @property
    def report(self) -> Path:
        return self.run_dir / self.REPORT

    @property
    def timings(self) -> Path:
        return self.run_dir / self.TIMINGS
