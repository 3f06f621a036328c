"""Base models: the random-init wav2vec2 stand-in, the Whisper-encoder classifier built from a pretrained
Whisper, the padding-invariant wrapper the Trainer trains, and which layers train.

Taught in notebook 03 (03_train_wav2vec2.ipynb).
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import torch

from ser_helpers.common import LABELS, SAMPLE_RATE, SERError, atomic_dir, count_parameters, write_text_atomic
from ser_helpers.inference import is_whisper, load_pretrained, padding_invariant_logits, whisper_logits

BASE_SIZES: dict[str, dict] = {
    # about 0.9 M parameters; default group norm in the conv feature encoder (as wav2vec2-base)
    "small": dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, intermediate_size=256,
                  conv_dim=(64, 64, 64, 128, 128, 128, 128), classifier_proj_size=64),
    # the wav2vec2-base architecture (95 M parameters), random init: for GPU throughput checks only
    "base": dict(classifier_proj_size=256),
    # for tests and smoke runs
    "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
                 conv_dim=(32, 32, 32, 64, 64, 64, 64), classifier_proj_size=32,
                 num_conv_pos_embeddings=32, num_conv_pos_embedding_groups=8),
}


def make_base_model(output_dir: str | os.PathLike, size: str = "small", labels: Sequence[str] = LABELS,
                     seed: int = 0) -> Path:
    """Write a RANDOMLY INITIALISED small Wav2Vec2ForSequenceClassification + feature extractor
    (save_pretrained) to `output_dir`: the offline stand-in for facebook/wav2vec2-base, trained from scratch."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification
    if size not in BASE_SIZES:
        raise SERError(f"unknown base model size {size!r}; choose one of {sorted(BASE_SIZES)}")
    labels = list(labels)
    config = Wav2Vec2Config(
        **BASE_SIZES[size], feat_extract_norm="group", do_stable_layer_norm=False,
        layerdrop=0.0,  # every layer runs: deterministic and DDP-friendly
        num_labels=len(labels), id2label={i: lab for i, lab in enumerate(labels)},
        label2id={lab: i for i, lab in enumerate(labels)}, problem_type="single_label_classification",
    )
    torch.manual_seed(seed)
    model = Wav2Vec2ForSequenceClassification(config)
    fe = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=SAMPLE_RATE, padding_value=0.0,
                                  do_normalize=True, return_attention_mask=False)
    with atomic_dir(output_dir) as tmp:
        model.save_pretrained(tmp)
        fe.save_pretrained(tmp)
        write_text_atomic(Path(tmp) / "README.md",
                          f"# Random-init wav2vec2 ({size})\n\nA randomly initialised `Wav2Vec2ForSequenceClassification` "
                          f"({count_parameters(model) / 1e6:.2f} M parameters, seed {seed}), written by "
                          "`ser make-base-model`. It knows nothing about speech: training starts from scratch. "
                          "A real run starts from a pretrained checkpoint such as `facebook/wav2vec2-base`.\n")
    return Path(output_dir)


class PaddingInvariantClassifier(torch.nn.Module):
    """Wraps a Wav2Vec2ForSequenceClassification (padding-invariant path) or a WhisperForAudioClassification
    (fixed window; the frozen bottom `frozen_layers` computed once per distinct clip when `cache_frozen`);
    forward(clips) -> logits. A plain nn.Module so DDP/accelerate wrap it and gradients sync through its forward."""

    def __init__(self, model, *, freeze_feature_encoder: bool, feature_extractor=None, frozen_layers: int = 0,
                 cache_frozen: bool):
        super().__init__()
        self.model = model
        self.freeze_feature_encoder = freeze_feature_encoder
        self.feature_extractor = feature_extractor
        self.frozen_layers = int(frozen_layers)
        self.cache = {} if cache_frozen and frozen_layers > 0 else None

    def forward(self, clips, labels=None, weights=None, indices=None):
        if is_whisper(self.model):
            return whisper_logits(self.model, clips, self.feature_extractor, self.frozen_layers, self.cache)
        return padding_invariant_logits(self.model, clips, freeze_feature_encoder=self.freeze_feature_encoder)


def whisper_classifier_from_base(base_model: str | os.PathLike, window_sec: float, label2id: dict, seed: int = 0,
                                 classifier_proj_size: int = 256):
    """(WhisperForAudioClassification, WhisperFeatureExtractor) on a pretrained Whisper encoder.

    `base_model`: "tiny.en" (the bundled weights, converted once by `ser_helpers.weights`), a local HF Whisper dir or
    a hub id. The input window becomes ceil(window_sec) seconds: `max_source_positions` = 50 per second and the
    encoder's position table is sliced to it. A base that already is a WhisperForAudioClassification keeps its
    window and encoder (only a head of another size is re-initialised)."""
    import torch
    from transformers import (AutoConfig, AutoFeatureExtractor, WhisperFeatureExtractor,
                              WhisperForAudioClassification, WhisperModel)

    from ..weights import bundled_hf_whisper_dir, is_bundled_name
    source = str(bundled_hf_whisper_dir(required=True)) if is_bundled_name(base_model) else str(base_model)
    id2label = {int(i): lab for lab, i in label2id.items()}
    config = load_pretrained(AutoConfig, source, "base model")
    if not is_whisper(config):
        raise SERError(f"{base_model}: expected a Whisper model, got model_type {config.model_type!r}")
    try:
        base_fe = load_pretrained(AutoFeatureExtractor, source, "feature extractor")
    except SERError:
        base_fe = WhisperFeatureExtractor(feature_size=config.num_mel_bins)
    if "WhisperForAudioClassification" in (config.architectures or []):
        model = load_pretrained(WhisperForAudioClassification, source, "base model", num_labels=len(id2label),
                                id2label=id2label, label2id=dict(label2id), ignore_mismatched_sizes=True)
        return model, base_fe
    window = int(math.ceil(float(window_sec)))
    hop = int(base_fe.hop_length)
    positions = window * int(base_fe.sampling_rate) // hop // 2  # conv2 has stride 2
    if not 1 <= window or positions > config.max_source_positions:
        raise SERError(f"--max-duration-sec {window_sec}: a Whisper window must be 1..."
                       f"{config.max_source_positions * 2 * hop // int(base_fe.sampling_rate)} s")
    base = load_pretrained(WhisperModel, source, "base model")
    cfg = AutoConfig.from_pretrained(source)
    cfg.max_source_positions = positions
    cfg.num_labels, cfg.id2label, cfg.label2id = len(id2label), id2label, dict(label2id)
    cfg.classifier_proj_size = int(classifier_proj_size)
    cfg.use_weighted_layer_sum = False
    cfg.architectures = ["WhisperForAudioClassification"]
    cfg.problem_type = "single_label_classification"
    torch.manual_seed(seed)
    model = WhisperForAudioClassification(cfg)
    state = base.encoder.state_dict()
    state["embed_positions.weight"] = state["embed_positions.weight"][:positions].clone()
    model.encoder.load_state_dict(state)
    fe = WhisperFeatureExtractor(feature_size=cfg.num_mel_bins, sampling_rate=int(base_fe.sampling_rate),
                                 hop_length=hop, chunk_length=window, n_fft=int(base_fe.n_fft))
    del base
    return model, fe


def encoder_layers(model):
    """The transformer layers of a wav2vec2-family or Whisper-encoder classifier."""
    return model.encoder.layers if is_whisper(model) else model.wav2vec2.encoder.layers


def set_trainable(model, *, head_only: bool, train_projector: bool, freeze_encoder: bool,
                  train_top_layers: int | None) -> int:
    """Freeze what should not train; returns how many BOTTOM encoder layers are frozen (the whole encoder when
    the head alone trains). head_only (adapt-wav2vec2-head): classifier (+ projector if train_projector);
    freeze_encoder: projector + classifier; train_top_layers=N: the top N encoder layers (+ the encoder's final
    layer norm for Whisper) and the head."""
    layers = encoder_layers(model)
    n = len(layers)
    encoder = model.encoder if is_whisper(model) else model.wav2vec2
    if train_top_layers is not None and not 0 <= int(train_top_layers) <= n:
        raise SERError(f"--train-top-layers must be 0..{n} (the encoder has {n} layers), got {train_top_layers}")
    if head_only or freeze_encoder or train_top_layers is not None:
        for p in encoder.parameters():
            p.requires_grad = False
        if getattr(model.config, "use_weighted_layer_sum", False):
            model.layer_weights.requires_grad = not head_only
    if head_only:
        for p in model.projector.parameters():
            p.requires_grad = bool(train_projector)
        return n
    if freeze_encoder:
        return n
    if train_top_layers is not None:
        top = int(train_top_layers)
        for layer in list(layers)[n - top:]:
            for p in layer.parameters():
                p.requires_grad = True
        if top > 0 and is_whisper(model):
            for p in model.encoder.layer_norm.parameters():
                p.requires_grad = True
        return n - top
    return 0
