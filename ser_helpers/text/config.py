"""TextEmotionConfig: every setting of `train_text_emotion` and its default, written once (flags, library).

Taught in notebook 06 (06_build_fusion_features.ipynb); `ser train-text-emotion` is a command-line extra that no
notebook runs.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..common import StageConfig
from .pretrained import MAX_TOKENS

LANGUAGE_FILTERS = ("zh", "en", "all")


@dataclass
class TextEmotionConfig(StageConfig):
    """Settings of one `train_text_emotion` run, each default written once, here: the `ser train-text-emotion`
    flags are generated from these fields (`common.add_dataclass_flags`). The feature CSVs and the output dir are
    arguments of the call, not settings."""
    base_model: str = field(default="", metadata={"help": "hub id or local dir; empty = tiny local BERT"})
    language_filter: str = field(default="zh", metadata={"choices": LANGUAGE_FILTERS})
    max_length: int = MAX_TOKENS
    min_text_chars: int = 2
    epochs: int = 5
    batch_size: int = 16
    learning_rate: float = 2e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    patience: int = 2
    seed: int = 42
    device: str = field(default="auto", metadata={"choices": ("auto", "cpu", "cuda")})
    # a contract flag; batches are tokenised in the training process, so no loader workers use it
    num_workers: int = 0
    disable_class_weighted_loss: bool = False
    allow_split_overlap: bool = field(default=False, metadata={"cli": False})  # common.add_split_overlap_flag

