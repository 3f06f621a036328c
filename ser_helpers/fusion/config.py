"""Fusion settings: FusionConfig (every train-late-fusion default, once), modes, archs, feature columns.

Taught in notebook 07 (07_train_late_fusion.ipynb).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..common import N_BOOTSTRAP, SERError, StageConfig

MODES = ("fusion", "audio_only", "text_only")
ARCHS = ("mlp", "gated")
CALIBRATION_MODES = ("global_temperature", "per_language_temperature", "vector_scaling")
FIT_STRATEGIES = ("val_cv", "train")
FIT_STRATEGY_CHOICES = ("auto", *FIT_STRATEGIES)
# auto: val_cv when the audio model is this much more confident on train rows than on val rows
IN_SAMPLE_GAP = 0.05
SPLITS = ("train", "val", "test")

AUDIO_FEATURES = ["audio_prob_ang", "audio_prob_hap", "audio_prob_neu", "audio_prob_sad", "audio_confidence",
                  "audio_entropy", "lang_is_zh"]
TEXT_FEATURES = ["text_negative", "text_neutral", "text_positive", "text_negative_score", "text_top_conf_raw",
                 "text_length_norm", "text4_prob_ang", "text4_prob_hap", "text4_prob_neu", "text4_prob_sad",
                 "text4_confidence", "text4_entropy", "text4_ready", "lang_is_zh"]
# Used when no features/summary.json is found beside the feature CSVs.
DEFAULT_FEATURE_COLUMNS = {
    "audio_only": AUDIO_FEATURES,
    "text_only": TEXT_FEATURES,
    "fusion": AUDIO_FEATURES[:-1] + TEXT_FEATURES,
}


@dataclass
class FusionConfig(StageConfig):
    """Settings of one late-fusion run, each default written once, here: the `ser train-late-fusion` and
    `ser run-fusion-ablation` flags are generated from these fields (`common.add_dataclass_flags`), and notebooks
    07/08 build one with `FusionConfig.from_params(globals())`."""
    mode: str = field(default="fusion", metadata={"choices": MODES})
    fusion_arch: str = field(default="mlp", metadata={"choices": ARCHS})
    hidden_size: int = 64
    gate_hidden_size: int = 32
    dropout: float = 0.2
    epochs: int = 80
    batch_size: int = 128
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    patience: int = 12
    seed: int = 42
    device: str = field(default="auto", metadata={"choices": ("auto", "cpu", "cuda")})
    calibration_mode: str = field(default="global_temperature", metadata={"choices": CALIBRATION_MODES})
    calibration_max_iter: int = 200
    min_language_samples: int = field(default=100, metadata={
        "help": "per-language temperature only for languages with at least this many val rows"})
    fit_strategy: str = field(default="auto", metadata={
        "choices": FIT_STRATEGY_CHOICES,
        "help": "val_cv: fit on speaker-grouped CV over val (held-out audio probs); train: the naive way; "
                f"auto: val_cv when summary.json shows train audio confidence >= val + {IN_SAMPLE_GAP}"})
    cv_folds: int = 5
    compare_fit_strategies: bool = field(default=True, metadata={
        "help": "skip training the other fit strategy for the report's comparison"})
    n_bootstrap: int = N_BOOTSTRAP
    allow_split_overlap: bool = field(default=False, metadata={
        "help": "go on (with a warning, recorded in the report) when the splits share files or speakers; "
                "refused by default"})
    make_plots: bool = field(default=True, metadata={"cli": False})
    # per-fold training bars (the ablation turns them off under its own bar)
    progress: bool = field(default=True, metadata={"cli": False})

    def check(self) -> None:
        for name, value, allowed in (("mode", self.mode, MODES), ("fusion_arch", self.fusion_arch, ARCHS),
                                     ("calibration_mode", self.calibration_mode, CALIBRATION_MODES),
                                     ("fit_strategy", self.fit_strategy, FIT_STRATEGY_CHOICES)):
            if value not in allowed:
                raise SERError(f"{name}={value!r} is not one of {list(allowed)}")
        for name in ("hidden_size", "gate_hidden_size", "epochs", "batch_size", "patience",
                     "calibration_max_iter", "cv_folds"):
            if int(getattr(self, name)) < 1:
                raise SERError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise SERError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if float(self.learning_rate) <= 0:
            raise SERError(f"learning_rate must be > 0, got {self.learning_rate!r}")
