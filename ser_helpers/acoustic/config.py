"""TrainConfig: every setting of `train_wav2vec2` and its default, written once (flags, notebook, library).

Taught in notebook 03 (03_train_wav2vec2.ipynb).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from ser_helpers.common import MAX_DURATION_SEC, SERError, StageConfig

LR_SCHEDULERS = ("linear", "cosine", "constant")


@dataclass
class TrainConfig(StageConfig):
    """Settings of one `train_wav2vec2` run, each default written once, here: the `ser train-wav2vec2`,
    `ser adapt-wav2vec2-head` and `ser cross-validate` flags are generated from these fields
    (`common.add_dataclass_flags`), and notebook 03 (03_train_wav2vec2.ipynb) builds one with
    `TrainConfig.from_params(globals(), ...)`. Manifests and the output dir are arguments of the call, not settings."""
    seed: int = 42
    device: str = field(default="auto", metadata={"choices": ("auto", "cpu", "cuda")})
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    patience: int = 3
    max_duration_sec: float = MAX_DURATION_SEC
    allow_split_overlap: bool = field(default=False, metadata={"cli": False})  # common.add_split_overlap_flag
    base_model: str = field(default="facebook/wav2vec2-base", metadata={
        "help": "hub id or local dir of a wav2vec2-family or Whisper model; 'tiny.en' = the bundled Whisper tiny.en "
                "weights (pretrained encoder -> WhisperForAudioClassification, input window "
                "ceil(--max-duration-sec) s)"})
    sample_rate: int = 16000
    epochs: float = field(default=12, metadata={"argparse": {"type": float}})
    batch_size: int = 4
    learning_rate: float = 1e-5
    gradient_accumulation: int = 1
    num_workers: int = 0
    log_interval: int = 200
    freeze_feature_encoder: bool = False
    freeze_feature_encoder_epochs: int = field(default=0, metadata={
        "help": "freeze the conv feature encoder for the first N epochs, then unfreeze"})
    fp16: bool = False
    bf16: bool = False
    # 'a=1,b=2' text (as on the command line) or a dict
    source_weight_map: str | dict = field(default="", metadata={"help": "e.g. esd_4class=2.5,casia_4class=2.0"})
    source_language_map: str | dict = field(default="", metadata={"help": "e.g. iemocap_4class=en,casia_4class=zh"})
    disable_class_weighted_loss: bool = False
    resume: bool = field(default=False, metadata={"help": "continue from the last checkpoint in --output-dir"})
    lr_scheduler: str = field(default="linear", metadata={"choices": LR_SCHEDULERS})
    max_steps: int | None = field(default=None, metadata={"argparse": {"type": int}})
    length_grouped: bool = field(default=True, metadata={"argparse": {"action": argparse.BooleanOptionalAction}})
    keep_checkpoints: bool = field(default=False, metadata={"help": "keep checkpoints/ after training finishes"})
    freeze_encoder: bool = field(default=False, metadata={
        "help": "train the head only (projector + classifier) on a frozen pretrained encoder"})
    train_top_layers: int | None = field(default=None, metadata={
        "argparse": {"type": int, "metavar": "N"},
        "help": "fine-tune only the top N encoder layers (+ the head); the frozen bottom of a Whisper encoder is "
                "computed once per distinct clip. Default: the whole model trains"})
    # adapt-wav2vec2-head: retrain the classifier only (+ the projector with train_projector)
    head_only: bool = field(default=False, metadata={"cli": False})
    train_projector: bool = False
    progress: bool = field(default=True, metadata={"cli": False})
    plots: bool = field(default=True, metadata={"cli": False})
    # the frozen bottom of a Whisper encoder computed once per distinct clip
    cache_frozen: bool = field(default=True, metadata={"cli": False})

    def check(self) -> None:
        """A clear SERError for a setting out of range."""
        if self.lr_scheduler not in LR_SCHEDULERS:
            raise SERError(f"--lr-scheduler must be linear, cosine or constant, got {self.lr_scheduler!r}")
        if self.batch_size < 1 or self.gradient_accumulation < 1:
            raise SERError("--batch-size and --gradient-accumulation must be >= 1")
        if self.max_duration_sec is not None and self.max_duration_sec <= 0:
            raise SERError(f"--max-duration-sec must be > 0, got {self.max_duration_sec}")


# adapt-wav2vec2-head's own defaults (a trained model's head: fewer epochs, smaller batches, a larger step)
ADAPT_DEFAULTS = {"epochs": 8, "batch_size": 2, "learning_rate": 1e-4}
# the TrainConfig fields that adapt-wav2vec2-head exposes as flags
ADAPT_FLAGS = ("seed", "device", "weight_decay", "warmup_ratio", "patience", "max_duration_sec", "epochs",
               "batch_size", "learning_rate", "train_projector")
