"""Fine-tune wav2vec2 + a classification head (notebook 03, `ser train-wav2vec2`).

Training runs on the Hugging Face `Trainer` (so fp16/bf16, gradient accumulation, checkpoints,
`--resume` and torchrun/accelerate multi-process runs come from it), with:

* the padding-invariant forward of `inference.padding_invariant_logits` (per-clip conv encoder,
  masked transformer + pooling), so no clip learns its neighbours' padding as a duration cue;
* random crops to `max_duration_sec` seeded by (seed, epoch, index): a resumed run sees the same crops;
* length-grouped batches (durations from the manifest), class-weighted and per-source-weighted loss;
* early stopping on validation macro-F1, freezing the feature encoder for the first N epochs.

The saved `best_model/` is a standard `Wav2Vec2ForSequenceClassification` dir + feature extractor.

The model class follows the base model's config, as `AutoModelForAudioClassification` does: a Whisper base
(`base_model="tiny.en"`, the bundled weights of `ser_helpers.weights`; a local HF Whisper dir; or a hub id such as
`openai/whisper-small`) gives a `WhisperForAudioClassification` on the PRETRAINED Whisper encoder, with its input
window shortened to ceil(max_duration_sec) seconds (`max_source_positions` and the position table sliced, a
`WhisperFeatureExtractor` with the matching `chunk_length` saved beside it). `freeze_encoder` trains the head only,
`train_top_layers=N` fine-tunes the top N encoder layers; the frozen bottom runs once per distinct clip
(`inference.whisper_logits` caches it), which is what makes this affordable on 2 CPU cores (notebook 03).

Taught in notebook 03 (03_train_wav2vec2).
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import shutil
import time
import warnings
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from . import __version__
from .common import (LABELS, SAMPLE_RATE, SERError, add_dataclass_flags, add_split_overlap_flag, atomic_dir,
                     check_splits, dataclass_from, dataclass_params, label_map, read_manifest, resolve_device,
                     set_seed, write_json_atomic, write_text_atomic)
from .common import count_parameters  # noqa: F401 (acoustic.count_parameters)
from .inference import (MIN_SAMPLES, is_whisper, load_pretrained, normalize_clip, padding_invariant_logits,
                        whisper_logits)

# ----------------------------------------------------------------------------- settings
LR_SCHEDULERS = ("linear", "cosine", "constant")


@dataclass
class TrainConfig:
    """Settings of one `train_wav2vec2` run, each default written once, here: the `ser train-wav2vec2`,
    `ser adapt-wav2vec2-head` and `ser cross-validate` flags are generated from these fields
    (`common.add_dataclass_flags`), and notebook 03 (03_train_wav2vec2.ipynb) builds one with
    `TrainConfig.from_params(globals(), ...)`. Manifests and the output dir are arguments of the call, not settings."""
    seed: int = 42
    device: str = field(default="auto", metadata={"choices": ("auto", "cpu", "cuda")})
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    patience: int = 3
    max_duration_sec: float = 15.0
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

    @classmethod
    def from_params(cls, params, **overrides) -> "TrainConfig":
        """The config from a notebook's `globals()`, `vars(args)` or a dict: every entry named like a field."""
        return dataclass_from(cls, params, **overrides)

    @classmethod
    def params_in(cls, params) -> dict:
        """Just those entries, as keyword arguments."""
        return dataclass_params(cls, params)

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


# ----------------------------------------------------------------------------- base models
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


# ----------------------------------------------------------------------------- data
def parse_key_values(text: str, what: str, cast=str) -> dict:
    """'a=1,b=2' -> {'a': cast('1'), ...}; clear error on a malformed item."""
    out = {}
    for item in [t.strip() for t in (text or "").split(",") if t.strip()]:
        if "=" not in item:
            raise SERError(f"{what}: item {item!r} is not KEY=VALUE (e.g. esd_4class=2.5)")
        key, value = (s.strip() for s in item.split("=", 1))
        try:
            out[key] = cast(value)
        except ValueError as exc:
            raise SERError(f"{what}: value {value!r} of {key!r} is not a number") from exc
    return out


def load_split(manifest: str | os.PathLike, labels: Sequence[str], source_weight_map: dict,
               source_language_map: dict, name: str):
    """Read a manifest; fill `language` from the source map and a `sample_weight` column from the weight map."""
    df = read_manifest(manifest, labels=labels)
    if source_weight_map or source_language_map:
        if "source_dataset" not in df.columns:
            raise SERError(f"{manifest}: --source-weight-map/--source-language-map need a 'source_dataset' column")
    if source_language_map:
        lang = df["language"].astype(object) if "language" in df.columns else None
        mapped = df["source_dataset"].map(source_language_map)
        df["language"] = mapped.where(mapped.notna(), lang) if lang is not None else mapped
    df["sample_weight"] = (df["source_dataset"].map(source_weight_map).fillna(1.0).astype(float)
                           if source_weight_map else 1.0)
    df.attrs["name"] = name
    return df


def check_audio_files(frames: dict, sample_rate: int, progress: bool = True) -> None:
    """Decode every file of every manifest once; a bad file is an AudioError naming manifest, row and file.
    Fills/refreshes `duration_sec` from the decoded audio (used for length grouping)."""
    from tqdm.auto import tqdm

    from .audio import AudioError, load_audio
    for split, df in frames.items():
        durations = []
        for row, path in enumerate(tqdm(df["path"], desc=f"check {split} audio", disable=not progress,
                                        leave=False)):
            try:
                wave = load_audio(path, target_sr=sample_rate, max_duration_sec=None)
            except AudioError as exc:
                raise AudioError(f"{split} manifest {df.attrs.get('manifest', '')} row {row + 2}: {exc}") from exc
            durations.append(len(wave) / sample_rate)
        df["duration_sec"] = durations


class ClipDataset:
    """Items are (index, epoch) pairs; training clips are randomly cropped to `max_samples` with an RNG seeded
    by (seed, epoch, index), evaluation clips are cut at `max_samples` from the start."""

    def __init__(self, df, label2id: dict, sample_rate: int, max_samples: int | None, train: bool, seed: int,
                 do_normalize: bool = True):
        self.paths = list(df["path"])
        self.labels = np.array([label2id[v] for v in df["label"]], dtype=np.int64)
        self.weights = np.asarray(df["sample_weight"], dtype=np.float32)
        self.durations = np.asarray(df["duration_sec"], dtype=np.float64)
        self.sample_rate, self.max_samples, self.train, self.seed = sample_rate, max_samples, train, seed
        self.do_normalize = do_normalize

    def __len__(self) -> int:
        return len(self.paths)

    def lengths(self) -> np.ndarray:
        n = np.round(self.durations * self.sample_rate)
        return np.minimum(n, self.max_samples) if self.max_samples else n

    def __getitem__(self, item):
        import torch

        from .audio import load_audio
        index, epoch = item if isinstance(item, tuple) else (int(item), 0)
        wave = load_audio(self.paths[index], target_sr=self.sample_rate, max_duration_sec=None)
        if self.max_samples and len(wave) > self.max_samples:
            start = 0
            if self.train:
                rng = np.random.default_rng([self.seed, epoch, index])
                start = int(rng.integers(0, len(wave) - self.max_samples + 1))
            wave = wave[start:start + self.max_samples]
        clip = normalize_clip(torch.from_numpy(np.ascontiguousarray(wave)), self.do_normalize)
        if clip.numel() < MIN_SAMPLES:
            clip = torch.nn.functional.pad(clip, (0, MIN_SAMPLES - clip.numel()))
        return {"clip": clip, "label": int(self.labels[index]), "weight": float(self.weights[index]),
                "index": index}


def collate_clips(items: list[dict]) -> dict:
    import torch
    return {"clips": [it["clip"] for it in items],
            "labels": torch.tensor([it["label"] for it in items], dtype=torch.long),
            "weights": torch.tensor([it["weight"] for it in items], dtype=torch.float32),
            "indices": torch.tensor([it["index"] for it in items], dtype=torch.long)}


class EpochBatchSampler:
    """Batches of (index, epoch) pairs. Shuffled with seed + epoch; with `length_grouped`, each mega-batch of
    50 batches is sorted by length before it is cut into batches (little padding), and batch order is shuffled.
    The number of batches is ceil(n / batch_size) every epoch."""

    def __init__(self, lengths: np.ndarray, batch_size: int, seed: int, shuffle: bool = True,
                 length_grouped: bool = True, mega: int = 50):
        self.lengths = np.asarray(lengths)
        self.batch_size, self.seed, self.shuffle, self.length_grouped = batch_size, seed, shuffle, length_grouped
        self.mega = mega * batch_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)

    def batches(self) -> list[list[int]]:
        n = len(self.lengths)
        if not self.shuffle:
            order = np.argsort(self.lengths, kind="stable") if self.length_grouped else np.arange(n)
            return [order[i:i + self.batch_size].tolist() for i in range(0, n, self.batch_size)]
        rng = np.random.default_rng([self.seed, self.epoch, 7])
        order = rng.permutation(n)
        batches = []
        for start in range(0, n, self.mega):
            chunk = order[start:start + self.mega]
            if self.length_grouped:
                chunk = chunk[np.argsort(-self.lengths[chunk], kind="stable")]
            batches += [chunk[i:i + self.batch_size].tolist() for i in range(0, len(chunk), self.batch_size)]
        if self.length_grouped:
            perm = rng.permutation(len(batches))
            batches = [batches[i] for i in perm]
        return batches

    def __iter__(self):
        for batch in self.batches():
            yield [(int(i), self.epoch) for i in batch]


# ----------------------------------------------------------------------------- model wrapper + trainer
class PaddingInvariantClassifier(torch.nn.Module):
    """Wraps a Wav2Vec2ForSequenceClassification (padding-invariant path) or a WhisperForAudioClassification
    (fixed window; the frozen bottom `frozen_layers` computed once per distinct clip when `cache_frozen`);
    forward(clips) -> logits. A plain nn.Module so DDP/accelerate wrap it and gradients sync through its forward."""

    def __init__(self, model, freeze_feature_encoder: bool = False, feature_extractor=None, frozen_layers: int = 0,
                 cache_frozen: bool = True):
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

    from .weights import bundled_hf_whisper_dir, is_bundled_name
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


def set_trainable(model, head_only: bool = False, train_projector: bool = False, freeze_encoder: bool = False,
                  train_top_layers: int | None = None) -> int:
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


def weighted_loss(logits, labels, weights, class_weights):
    """Class-weighted (+ per-sample source-weighted) cross-entropy, normalised by the total weight."""
    import torch
    per = torch.nn.functional.cross_entropy(logits.float(), labels, reduction="none")
    w = weights.to(per.dtype)
    if class_weights is not None:
        w = w * class_weights.to(per.device, per.dtype)[labels]
    return (per * w).sum() / w.sum().clamp_min(1e-8)


def _make_trainer_class():
    import torch
    from transformers import Trainer

    class SERTrainer(Trainer):
        """Trainer with our datasets/samplers, padding-invariant forward and weighted loss."""

        def __init__(self, *a, train_sampler=None, eval_sampler=None, class_weights=None, collate=None, **kw):
            super().__init__(*a, **kw)
            self._train_sampler, self._eval_sampler = train_sampler, eval_sampler
            self.class_weights, self._collate = class_weights, collate

        def _loader(self, dataset, batch_sampler):
            from torch.utils.data import DataLoader
            dl = DataLoader(dataset, batch_sampler=batch_sampler, collate_fn=self._collate,
                            num_workers=self.args.dataloader_num_workers, pin_memory=False)
            return self.accelerator.prepare(dl)

        def get_train_dataloader(self):
            return self._loader(self.train_dataset, self._train_sampler)

        def get_eval_dataloader(self, eval_dataset=None):
            return self._loader(eval_dataset if eval_dataset is not None else self.eval_dataset, self._eval_sampler)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            logits = model(inputs["clips"])
            loss = weighted_loss(logits, inputs["labels"], inputs["weights"], self.class_weights)
            return (loss, logits) if return_outputs else loss

        def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
            inputs = self._prepare_inputs(inputs)
            with torch.no_grad():
                logits = model(inputs["clips"])
                loss = torch.nn.functional.cross_entropy(logits.float(), inputs["labels"])
            return loss.detach(), logits.detach().float(), inputs["labels"]

    return SERTrainer


def _make_callbacks(wrapper, freeze_epochs: int, freeze_always: bool):
    from transformers import TrainerCallback

    class FreezeSchedule(TrainerCallback):
        """Freeze the conv feature encoder for the first `freeze_epochs` epochs (or always)."""

        def on_epoch_begin(self, args, state, control, **kw):
            wrapper.freeze_feature_encoder = freeze_always or (state.epoch or 0) < freeze_epochs - 1e-9

    return [FreezeSchedule()]


def epoch_tag(epoch: float) -> int:
    """The N of val_confusion_matrix_epoch{N}.csv: the (1-based) epoch an evaluation falls in."""
    return max(1, math.ceil(float(epoch) - 1e-6))


# ----------------------------------------------------------------------------- results
@dataclass
class TrainResult:
    output_dir: Path
    best_model_dir: Path
    report: dict = field(default_factory=dict)

    @property
    def history(self) -> list[dict]:
        return self.report.get("history", [])


def _versions() -> dict:
    import torch
    import transformers
    try:
        import accelerate
        acc = accelerate.__version__
    except ImportError:  # pragma: no cover
        acc = None
    return {"ser_helpers": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "accelerate": acc}


def _history_from_log(log_history: list[dict]) -> list[dict]:
    """One row per evaluation: epoch, step, train_loss (mean of the losses logged since the last eval), val_*."""
    rows, losses = [], []
    for entry in log_history:
        if "loss" in entry:
            losses.append(entry["loss"])
        if "eval_macro_f1" in entry:
            row = {"epoch": round(float(entry.get("epoch", 0)), 4), "step": entry.get("step"),
                   "train_loss": float(np.mean(losses)) if losses else None}
            for k, v in entry.items():
                if k.startswith("eval_") and isinstance(v, (int, float)):
                    row["val_" + k[5:]] = float(v)
            rows.append(row)
            losses = []
    return rows


def _model_card(report: dict, labels: list[str]) -> str:
    test = report.get("test_metrics") or {}
    val = report.get("best_val_metrics") or {}
    ci = test.get("macro_f1_ci95")
    ci_txt = f" (95% bootstrap CI {ci[0]:.3f}-{ci[1]:.3f})" if ci else ""
    offline = report["config"].get("base_model_is_random_init")
    what = ("a SMALL wav2vec2 ({:.2f} M parameters) trained FROM SCRATCH (random initialisation, no "
            "self-supervised pretraining) on generated speech. It is a teaching artefact, not a usable emotion "
            "recogniser for real voices.".format(report.get("n_parameters", 0) / 1e6)
            if offline else f"`{report['config']['base_model']}` fine-tuned with a classification head.")
    arch = report["config"].get("architecture") or "Wav2Vec2ForSequenceClassification"
    whisper = arch == "WhisperForAudioClassification"
    if whisper:
        top = report["config"].get("train_top_layers")
        trained = ("the head only (frozen encoder)" if report["config"].get("freeze_encoder") or top == 0 else
                   f"the top {top} encoder layer(s) and the head" if top is not None else "the whole encoder and the head")
        what = (f"the PRETRAINED encoder of OpenAI Whisper `{report['config']['base_model']}` (speech recognition "
                f"pretraining on 680 k hours) with a classification head; fine-tuned here: {trained}. Its input window "
                f"is {report['config'].get('input_window_sec') or 0:g} s (longer clips: mean logits of consecutive "
                "windows in `AudioClassifier`; `pipeline()` scores the first window).")
    serving = (
        "This project's service (`ser serve`, `ser_helpers.service`) loads models through `AudioClassifier` and "
        "serves wav2vec2-family classifiers, Whisper-encoder classifiers and the MFCC baseline. "
        + ("A service that loads only `Wav2Vec2ForSequenceClassification` (such as the original production "
           "service) can NOT serve this `WhisperForAudioClassification`: use this project's service or extend yours."
           if whisper else "A service that loads only `Wav2Vec2ForSequenceClassification` (such as the original "
           "production service) can serve this model as is."))
    lines = [
        f"# Speech emotion recognition: {'Whisper-encoder' if whisper else 'wav2vec2'} sequence classifier "
        f"(`{arch}`)", "",
        f"What it is: {what}", "",
        "## Data and split",
        f"- train: `{report['config']['train_manifest']}` ({report['data']['train']['n']} clips)",
        f"- val: `{report['config']['val_manifest']}` ({report['data']['val']['n']} clips; early stopping and "
        "model selection)",
        f"- test: `{report['config'].get('test_manifest') or '-'}` "
        f"({report['data'].get('test', {}).get('n', 0)} clips; used once, after training)",
        "- Splits are speaker-independent (held-out sessions/speakers), as prepared by the manifest stage.", "",
        "## Labels", f"`id2label` = {dict(enumerate(labels))} (IEMOCAP codes: ang angry, hap happy(+excited), "
        "neu neutral, sad sad).", "",
        "## Metrics",
        f"- best epoch {report.get('best_epoch')}: val macro-F1 {val.get('macro_f1', float('nan')):.3f}, "
        f"UA {val.get('ua', float('nan')):.3f}, WA {val.get('accuracy', float('nan')):.3f}",
    ]
    if test:
        lines.append(f"- test: macro-F1 {test['macro_f1']:.3f}{ci_txt}, UA {test['ua']:.3f}, "
                     f"WA {test['accuracy']:.3f}, ECE {test['ece']:.3f}")
    lines += [
        "", "## How to use",
        "```python\nfrom ser_helpers.inference import AudioClassifier\nclf = AudioClassifier.load(\"best_model\")\n"
        "probs = clf.predict_proba([wave_16k_float32])\n```",
        "It also loads with `AutoModelForAudioClassification` and `pipeline(\"audio-classification\")` "
        + ("(every clip is padded to the fixed window, so batching changes nothing)." if whisper else
           "(one clip at a time there: batched zero padding changes group-norm wav2vec2 outputs)."), "",
        "## Serving", serving, "",
        "## Limits",
        "- Four acted/generated emotion categories only; real emotions are blended, culture- and "
        "context-dependent, and often not expressed in the voice at all.",
        "- Trained on the speakers, languages, recording conditions and durations of its data; expect it to "
        "fail on other microphones, noise, accents, languages and spontaneous speech.",
        f"- Clips are cut to {report['config']['max_duration_sec']:g} s.", "",
        "## Ethical caveats",
        "Inferring emotion from someone's voice is an inference about their inner state that can be wrong and "
        "that people often have not consented to. Do not use it to make decisions about people (hiring, "
        "policing, credit, health, education), always disclose its use, let people opt out, and treat its "
        "output as a noisy signal, never as ground truth. Accuracy differs across groups of speakers.", "",
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- training
def train_wav2vec2(train_manifest: str | os.PathLike, val_manifest: str | os.PathLike,
                   output_dir: str | os.PathLike, test_manifest: str | os.PathLike = "",
                   config: TrainConfig | None = None, callbacks: Sequence | None = None,
                   **settings) -> TrainResult:
    """Fine-tune a wav2vec2 sequence classifier, or a Whisper-encoder one when `base_model` is a Whisper model
    ("tiny.en" = the bundled weights; see the module docstring); write best_model/, train_report.json, label_map.json,
    val_confusion_matrix_epoch{N}.csv, test_confusion_matrix.csv (if a test manifest is given) and PNG plots.

    The settings are a `TrainConfig` (`config=`), or its fields as keyword arguments (`epochs=3, ...`), which also
    override a given config's. `callbacks`: extra `transformers.TrainerCallback`s.
    Checkpoints go to output_dir/checkpoints/ (for `resume=True` after an interruption) and are removed when
    training finishes, unless keep_checkpoints. The steps: `_load_frames`, `_build_model`, `_datasets`,
    `_training_arguments`, the Trainer, `_train_report`, `_score_test`."""
    cfg = replace(config, **settings) if config is not None else TrainConfig(**settings)
    cfg.check()
    t_start = time.time()
    output_dir = Path(output_dir)
    labels = list(LABELS)
    lm = label_map(labels)
    manifests = {"train": train_manifest, "val": val_manifest, "test": test_manifest}
    frames, split_check, source_maps = _load_frames(manifests, labels, cfg)
    model, feature_extractor, wrapper, info = _build_model(cfg, labels, lm)
    train_ds, val_ds, train_sampler, eval_sampler, class_weights = _datasets(frames, lm, cfg, info["do_normalize"])

    is_main = int(os.environ.get("RANK", "0")) == 0
    world = int(os.environ.get("WORLD_SIZE", "1"))
    dev, fp16, bf16 = _precision(cfg)
    ckpt_dir = output_dir / "checkpoints"
    last_ckpt = _last_checkpoint(ckpt_dir, cfg.resume, is_main)
    args = _training_arguments(cfg, ckpt_dir, dev, fp16, bf16, len(train_sampler), world,
                               find_unused=bool(cfg.freeze_feature_encoder_epochs or info["encoder_frozen"]
                                                or getattr(model.config, "layerdrop", 0) > 0))
    trainer = _make_trainer(cfg, args, wrapper, train_ds, val_ds, train_sampler, eval_sampler, class_weights,
                            labels, output_dir, info["encoder_frozen"], callbacks)
    output_dir.mkdir(parents=True, exist_ok=True)
    t_train, cpu_train = time.time(), time.process_time()
    train_out = trainer.train(resume_from_checkpoint=last_ckpt)
    timing = {"wall": time.time() - t_train, "cpu": time.process_time() - cpu_train}

    # ---- artifacts (main process only)
    report: dict = {}
    best_dir = output_dir / "best_model"
    if trainer.is_world_process_zero():
        model = wrapper.model.eval()
        model.config.id2label = {int(k): v for k, v in lm["id2label"].items()}
        model.config.label2id = dict(lm["label2id"])
        run = {"manifests": manifests, "output_dir": output_dir, "source_maps": source_maps, "device": dev,
               "fp16": fp16, "bf16": bf16, "resumed_from": last_ckpt, "world": world, **info}
        report = _train_report(cfg, run, model, frames, labels, split_check, class_weights, trainer.state,
                               train_out, timing)
        with atomic_dir(best_dir) as tmp:
            model.save_pretrained(tmp)
            feature_extractor.save_pretrained(tmp)
        write_json_atomic(output_dir / "label_map.json", lm)
        if "test" in frames:  # the best model, once, after training: never used for selection
            report["test_metrics"] = _score_test(model, feature_extractor, best_dir, frames, labels, cfg)
            from . import metrics as M
            M.save_confusion_csv(output_dir / "test_confusion_matrix.csv", report["test_metrics"]["confusion_matrix"],
                                 labels)
        report["wall_time_sec"] = round(time.time() - t_start, 2)
        write_text_atomic(best_dir / "README.md", _model_card(report, labels))
        write_json_atomic(output_dir / "train_report.json", report)
        if cfg.plots and report["history"]:
            make_training_plots(output_dir, report)
    if world > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
    if is_main and not cfg.keep_checkpoints:  # finished: checkpoints only served --resume
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    return TrainResult(output_dir=output_dir, best_model_dir=best_dir, report=report)


def _load_frames(manifests: dict, labels: list[str], cfg: TrainConfig):
    """Read the manifests (+ source weights/languages), check split hygiene, decode every file once.
    Returns (frames, split_check, (source_weight_map, source_language_map) as dicts)."""
    sw_map = cfg.source_weight_map if isinstance(cfg.source_weight_map, dict) else \
        parse_key_values(cfg.source_weight_map, "--source-weight-map", float)
    sl_map = cfg.source_language_map if isinstance(cfg.source_language_map, dict) else \
        parse_key_values(cfg.source_language_map, "--source-language-map", str)
    frames = {split: load_split(src, labels, sw_map, sl_map, split) for split, src in manifests.items()
              if src or split != "test"}
    for split, df in frames.items():
        df.attrs["manifest"] = str(manifests[split])
    split_check = check_splits(frames, cfg.allow_split_overlap, {k: str(v) for k, v in manifests.items()})
    if sw_map:
        unknown = sorted(set(sw_map) - set(frames["train"]["source_dataset"]))
        if unknown:
            warnings.warn(f"--source-weight-map keys {unknown} match no training row's source_dataset", stacklevel=3)
    check_audio_files(frames, cfg.sample_rate, progress=cfg.progress)
    return frames, split_check, (sw_map, sl_map)


def _build_model(cfg: TrainConfig, labels: list[str], lm: dict):
    """(model, feature_extractor, PaddingInvariantClassifier wrapper, info) for `cfg.base_model`, with the layers
    that should not train frozen. info: whisper, do_normalize, random_init, frozen_layers, encoder_frozen."""
    from transformers import AutoConfig, AutoFeatureExtractor, AutoModelForAudioClassification, Wav2Vec2FeatureExtractor

    from .weights import is_bundled_name
    base_model = cfg.base_model
    whisper = is_bundled_name(base_model) or is_whisper(load_pretrained(AutoConfig, base_model, "base model"))
    if whisper:
        if cfg.max_duration_sec is None:
            raise SERError("--max-duration-sec is required with a Whisper base model (it sets the input window)")
        if cfg.freeze_feature_encoder_epochs:
            warnings.warn("--freeze-feature-encoder-epochs has no effect on a Whisper encoder; use "
                          "--freeze-feature-encoder, --freeze-encoder or --train-top-layers", stacklevel=3)
        model, feature_extractor = whisper_classifier_from_base(base_model, cfg.max_duration_sec, lm["label2id"],
                                                                cfg.seed)
        if cfg.freeze_feature_encoder:
            for mod in (model.encoder.conv1, model.encoder.conv2):
                for p in mod.parameters():
                    p.requires_grad = False
    else:
        model = load_pretrained(AutoModelForAudioClassification, base_model, "base model",
                                num_labels=len(labels), label2id=lm["label2id"],
                                id2label={int(k): v for k, v in lm["id2label"].items()},
                                ignore_mismatched_sizes=True)
        if not hasattr(model, "wav2vec2"):
            raise SERError(f"{base_model}: expected a wav2vec2 or Whisper model, got {model.__class__.__name__}")
        try:
            feature_extractor = load_pretrained(AutoFeatureExtractor, base_model, "feature extractor")
        except SERError:
            feature_extractor = Wav2Vec2FeatureExtractor(sampling_rate=cfg.sample_rate, do_normalize=True,
                                                         return_attention_mask=False)
    base_readme = Path(str(base_model)) / "README.md"
    if cfg.freeze_feature_encoder and not whisper:
        model.freeze_feature_encoder()
    frozen_layers = set_trainable(model, head_only=cfg.head_only, train_projector=cfg.train_projector,
                                  freeze_encoder=cfg.freeze_encoder, train_top_layers=cfg.train_top_layers)
    encoder_frozen = cfg.head_only or cfg.freeze_encoder or cfg.train_top_layers is not None
    wrapper = PaddingInvariantClassifier(model, freeze_feature_encoder=cfg.freeze_feature_encoder or encoder_frozen,
                                         feature_extractor=feature_extractor, frozen_layers=frozen_layers,
                                         cache_frozen=cfg.cache_frozen)
    info = {"whisper": whisper, "frozen_layers": frozen_layers, "encoder_frozen": encoder_frozen,
            "input_window_sec": feature_extractor.chunk_length if whisper else None,
            "do_normalize": False if whisper else bool(getattr(feature_extractor, "do_normalize", True)),
            "random_init": base_readme.exists() and "Random-init" in base_readme.read_text(encoding="utf-8")[:200]}
    return model, feature_extractor, wrapper, info


def _datasets(frames: dict, lm: dict, cfg: TrainConfig, do_normalize: bool):
    """Train/val ClipDatasets, their batch samplers and the inverse-frequency class weights (None when
    `disable_class_weighted_loss`)."""
    max_samples = int(round(cfg.max_duration_sec * cfg.sample_rate)) if cfg.max_duration_sec else None
    train_ds = ClipDataset(frames["train"], lm["label2id"], cfg.sample_rate, max_samples, True, cfg.seed, do_normalize)
    val_ds = ClipDataset(frames["val"], lm["label2id"], cfg.sample_rate, max_samples, False, cfg.seed, do_normalize)
    train_sampler = EpochBatchSampler(train_ds.lengths(), cfg.batch_size, cfg.seed, True, cfg.length_grouped)
    eval_sampler = EpochBatchSampler(val_ds.lengths(), cfg.batch_size, cfg.seed, False, True)
    n_labels = len(lm["label2id"])
    counts = np.bincount(train_ds.labels, minlength=n_labels)
    class_weights = None
    if not cfg.disable_class_weighted_loss:
        cw = np.where(counts > 0, counts.sum() / (n_labels * np.maximum(counts, 1)), 0.0)
        class_weights = torch.tensor(cw, dtype=torch.float32)
    return train_ds, val_ds, train_sampler, eval_sampler, class_weights


def _precision(cfg: TrainConfig) -> tuple[str, bool, bool]:
    """(device, fp16, bf16): half precision is dropped, with a warning, on a CPU."""
    dev = resolve_device(cfg.device)
    if (cfg.fp16 or cfg.bf16) and dev == "cpu":
        warnings.warn("--fp16/--bf16 requested on a CPU: ignored (training in float32)", stacklevel=3)
        return dev, False, False
    return dev, cfg.fp16, cfg.bf16


def _last_checkpoint(ckpt_dir: Path, resume: bool, is_main: bool) -> str | None:
    """The checkpoint to resume from (None: from scratch; stale checkpoints of a fresh run are removed)."""
    from transformers.trainer_utils import get_last_checkpoint
    last_ckpt = get_last_checkpoint(str(ckpt_dir)) if (resume and ckpt_dir.is_dir()) else None
    if resume and last_ckpt is None:
        warnings.warn(f"--resume: no checkpoint under {ckpt_dir}; starting from scratch", stacklevel=3)
    if not resume and ckpt_dir.exists() and is_main:
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    return last_ckpt


def _training_arguments(cfg: TrainConfig, ckpt_dir: Path, dev: str, fp16: bool, bf16: bool, n_batches: int,
                        world: int, find_unused: bool):
    """The Trainer's TrainingArguments: evaluate/save every epoch (every min(epoch, max_steps) steps with
    max_steps), keep the best by validation macro-F1."""
    from transformers import TrainingArguments
    steps_per_epoch = math.ceil(math.ceil(n_batches / world) / cfg.gradient_accumulation)
    strategy = {"eval_strategy": "epoch", "save_strategy": "epoch"}
    if cfg.max_steps:
        every = max(1, min(steps_per_epoch, int(cfg.max_steps)))
        strategy = {"eval_strategy": "steps", "save_strategy": "steps", "eval_steps": every, "save_steps": every}
    return TrainingArguments(
        output_dir=str(ckpt_dir), per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size, num_train_epochs=float(cfg.epochs),
        max_steps=int(cfg.max_steps) if cfg.max_steps else -1,
        learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay, warmup_steps=float(cfg.warmup_ratio),
        lr_scheduler_type=cfg.lr_scheduler, gradient_accumulation_steps=cfg.gradient_accumulation,
        logging_steps=max(1, min(int(cfg.log_interval), steps_per_epoch)), logging_first_step=True,
        seed=cfg.seed, data_seed=cfg.seed, fp16=fp16, bf16=bf16, use_cpu=(dev == "cpu"),
        dataloader_num_workers=cfg.num_workers, report_to="none", disable_tqdm=not cfg.progress,
        load_best_model_at_end=True, metric_for_best_model="macro_f1", greater_is_better=True,
        save_total_limit=2, remove_unused_columns=False, label_names=["labels"],
        ddp_find_unused_parameters=find_unused, restore_callback_states_from_checkpoint=True, **strategy,
    )


def _make_trainer(cfg: TrainConfig, args, wrapper, train_ds, val_ds, train_sampler, eval_sampler, class_weights,
                  labels: list[str], output_dir: Path, encoder_frozen: bool, callbacks: Sequence | None):
    """The SERTrainer with validation metrics (a confusion CSV per evaluation), the freeze schedule, early
    stopping and any extra callbacks; the seed is set last, just before the Trainer is built."""
    from transformers import EarlyStoppingCallback

    from . import metrics as M

    def compute_metrics(pred):
        logits = np.asarray(pred.predictions, dtype=np.float64)
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        m = M.classification_metrics(np.asarray(pred.label_ids, dtype=int), probs, labels)
        if trainer.is_world_process_zero():
            epoch_no = epoch_tag(trainer.state.epoch or 0)
            M.save_confusion_csv(output_dir / f"val_confusion_matrix_epoch{epoch_no}.csv", m["confusion_matrix"],
                                 labels)
        return {"macro_f1": m["macro_f1"], "ua": m["ua"], "accuracy": m["accuracy"],
                "weighted_f1": m["weighted_f1"], "ece": m["ece"], "nll": m["nll"]}

    cbs = _make_callbacks(wrapper, int(cfg.freeze_feature_encoder_epochs),
                          bool(cfg.freeze_feature_encoder or encoder_frozen))
    if cfg.patience and cfg.patience > 0:
        cbs.append(EarlyStoppingCallback(early_stopping_patience=int(cfg.patience)))
    cbs += list(callbacks or [])
    set_seed(cfg.seed)
    trainer = _make_trainer_class()(model=wrapper, args=args, train_dataset=train_ds, eval_dataset=val_ds,
                                    compute_metrics=compute_metrics, callbacks=cbs, train_sampler=train_sampler,
                                    eval_sampler=eval_sampler, class_weights=class_weights, collate=collate_clips)
    return trainer


def _report_config(cfg: TrainConfig, run: dict, model) -> dict:
    """train_report.json's `config`: the settings as run (device resolved, maps parsed, half precision as used)."""
    m = run["manifests"]
    return {"train_manifest": str(m["train"]), "val_manifest": str(m["val"]), "test_manifest": str(m["test"] or ""),
            "base_model": str(cfg.base_model), "base_model_is_random_init": bool(run["random_init"]),
            "output_dir": str(run["output_dir"]), "sample_rate": cfg.sample_rate,
            "max_duration_sec": cfg.max_duration_sec, "epochs": cfg.epochs, "batch_size": cfg.batch_size,
            "learning_rate": cfg.learning_rate, "weight_decay": cfg.weight_decay, "warmup_ratio": cfg.warmup_ratio,
            "gradient_accumulation": cfg.gradient_accumulation, "patience": cfg.patience,
            "num_workers": cfg.num_workers, "log_interval": cfg.log_interval, "seed": cfg.seed,
            "freeze_feature_encoder": cfg.freeze_feature_encoder,
            "freeze_feature_encoder_epochs": cfg.freeze_feature_encoder_epochs, "fp16": run["fp16"],
            "bf16": run["bf16"], "source_weight_map": run["source_maps"][0],
            "source_language_map": run["source_maps"][1], "device": run["device"],
            "class_weighted_loss": not cfg.disable_class_weighted_loss, "lr_scheduler": cfg.lr_scheduler,
            "max_steps": cfg.max_steps, "length_grouped": cfg.length_grouped, "head_only": cfg.head_only,
            "train_projector": cfg.train_projector, "resumed_from": run["resumed_from"], "world_size": run["world"],
            "architecture": model.__class__.__name__, "freeze_encoder": cfg.freeze_encoder,
            "train_top_layers": cfg.train_top_layers, "frozen_encoder_layers": run["frozen_layers"],
            "input_window_sec": (float(run["input_window_sec"]) if run["whisper"] else None)}


def _train_report(cfg: TrainConfig, run: dict, model, frames: dict, labels: list[str], split_check: dict,
                  class_weights, state, train_out, timing: dict) -> dict:
    """train_report.json without the test metrics: config, versions, data, per-evaluation history, best epoch,
    timing."""
    history = _history_from_log(state.log_history)
    best_row = max(history, key=lambda r: r.get("val_macro_f1", -1)) if history else {}
    n_samples = int(state.global_step * cfg.batch_size * cfg.gradient_accumulation * run["world"])
    return {
        "split_check": split_check,
        "config": _report_config(cfg, run, model),
        "versions": _versions(),
        "labels": labels,
        "class_weights": class_weights.tolist() if class_weights is not None else None,
        "n_parameters": count_parameters(model),
        "n_trainable_parameters": int(sum(p.numel() for p in model.parameters() if p.requires_grad)),
        "data": {s: {"n": int(len(df)), "label_counts": df["label"].value_counts().sort_index().to_dict(),
                     "languages": (df["language"].value_counts().to_dict() if "language" in df else {}),
                     "hours": float(df["duration_sec"].sum() / 3600)} for s, df in frames.items()},
        "history": history,
        "best_epoch": best_row.get("epoch"),
        "best_checkpoint": state.best_model_checkpoint,
        "best_val_metrics": {k[4:]: v for k, v in best_row.items() if k.startswith("val_")},
        "global_step": int(state.global_step),
        "stopped_early": bool(history) and int(round(history[-1]["epoch"])) < int(cfg.epochs) and not cfg.max_steps,
        "train_wall_time_sec": round(timing["wall"], 2),
        "train_cpu_time_sec": round(timing["cpu"], 2),
        "torch_threads": torch.get_num_threads(),
        "train_samples_per_sec": round(n_samples / max(timing["wall"], 1e-9), 2),
        "train_runtime_metrics": {k: v for k, v in train_out.metrics.items() if isinstance(v, (int, float))},
    }


def _score_test(model, feature_extractor, best_dir: Path, frames: dict, labels: list[str], cfg: TrainConfig) -> dict:
    """Test metrics of the best model (+ 95% bootstrap CI of macro-F1 and the majority baseline)."""
    from . import metrics as M
    from .audio import load_audio
    from .inference import AudioClassifier
    clf = AudioClassifier(model, feature_extractor, device=str(next(model.parameters()).device),
                          model_dir=str(best_dir))
    tdf = frames["test"]
    waves = [load_audio(p, target_sr=cfg.sample_rate, max_duration_sec=None) for p in tdf["path"]]
    probs = clf.predict_proba(waves, batch_size=max(cfg.batch_size, 8), max_duration_sec=cfg.max_duration_sec,
                              progress=cfg.progress)
    tm = M.classification_metrics(list(tdf["label"]), probs, labels)
    tm["macro_f1_ci95"] = list(M.bootstrap_ci(list(tdf["label"]), probs, "macro_f1", n_boot=300, seed=cfg.seed,
                                              labels=labels))
    tm["majority_baseline"] = {k: v for k, v in M.majority_baseline(
        list(frames["train"]["label"]), list(tdf["label"]), labels).items()
        if k in ("macro_f1", "ua", "accuracy", "majority_label")}
    return tm


def make_training_plots(output_dir: str | os.PathLike, report: dict | None = None) -> list[Path]:
    """training_curves.png (train loss, val macro-F1, val UA), val/test confusion heatmaps."""
    import matplotlib.pyplot as plt

    from . import plots
    from .common import read_json
    output_dir = Path(output_dir)
    report = report or read_json(output_dir / "train_report.json")
    out = [output_dir / "training_curves.png"]
    fig = plots.training_curves(report["history"], out[0], keys=("train_loss", "val_macro_f1", "val_ua"),
                                title="wav2vec2 training")
    plt.close(fig)
    best = report.get("best_epoch")
    if best is not None and report.get("best_val_metrics"):
        cm_csv = output_dir / f"val_confusion_matrix_epoch{epoch_tag(best)}.csv"
        if cm_csv.exists():
            import pandas as pd
            cm = pd.read_csv(cm_csv).drop(columns=["true_label"]).to_numpy()
            out.append(output_dir / "val_confusion_matrix_best.png")
            plt.close(plots.confusion_heatmap(cm, report["labels"], out[-1],
                                              title=f"val confusion (best epoch {best:g})"))
    if report.get("test_metrics"):
        out.append(output_dir / "test_confusion_matrix.png")
        plt.close(plots.confusion_heatmap(report["test_metrics"]["confusion_matrix"], report["labels"], out[-1],
                                          title="test confusion (best model)"))
    return out


def adapt_wav2vec2_head(train_manifest, val_manifest, base_model, output_dir, test_manifest="",
                        config: TrainConfig | None = None, callbacks: Sequence | None = None,
                        **settings) -> TrainResult:
    """Retrain only the classifier (and optionally the projector, `train_projector=True`) of a trained model on new
    manifests. Without a `config`, the defaults are TrainConfig's with ADAPT_DEFAULTS (fewer epochs, smaller
    batches, a larger learning rate); keyword arguments override either."""
    cfg = replace(config, **settings) if config is not None else TrainConfig(**(ADAPT_DEFAULTS | settings))
    return train_wav2vec2(train_manifest, val_manifest, output_dir, test_manifest=test_manifest,
                          config=replace(cfg, base_model=base_model, head_only=True), callbacks=callbacks)


def cross_validate(manifest: str | os.PathLike | Sequence, output_dir: str | os.PathLike,
                   fold_column: str = "session", config: TrainConfig | None = None, **settings) -> dict:
    """Leave-one-group-out folds (default: IEMOCAP sessions): fold k tests on group k, validates on the next
    group, trains on the rest, each fold with `train_wav2vec2(config=config, **settings)`. Writes
    cv_summary.json/.csv (per fold + mean ± std)."""
    import pandas as pd

    from .common import write_csv_atomic
    items = [manifest] if isinstance(manifest, (str, os.PathLike)) else list(manifest)
    paths: list[Path] = []
    for item in items:
        p = Path(item)
        paths += [p / f"{s}.csv" for s in ("train", "val", "test") if (p / f"{s}.csv").exists()] if p.is_dir() else [p]
    if not paths:
        raise SERError(f"{manifest}: no manifest CSV found")
    df = pd.concat([read_manifest(p, labels=LABELS) for p in paths], ignore_index=True)
    if fold_column not in df.columns:
        raise SERError(f"{paths[0]}: manifest lacks the fold column {fold_column!r}; columns are {list(df.columns)}")
    groups = sorted(df[fold_column].astype(str).unique())
    if len(groups) < 3:
        raise SERError(f"column {fold_column!r} has {len(groups)} group(s) {groups}; cross-validation needs >= 3")
    output_dir = Path(output_dir)
    rows = []
    for k, g in enumerate(groups):
        val_g = groups[(k + 1) % len(groups)]
        fold_dir = output_dir / f"fold_{g}"
        split_dir = fold_dir / "manifests"
        col = df[fold_column].astype(str)
        for name, part in (("train", df[(col != g) & (col != val_g)]), ("val", df[col == val_g]),
                           ("test", df[col == g])):
            write_csv_atomic(split_dir / f"{name}.csv", part)
        res = train_wav2vec2(split_dir / "train.csv", split_dir / "val.csv", fold_dir,
                             test_manifest=split_dir / "test.csv", config=config, **settings)
        tm = res.report.get("test_metrics", {})
        rows.append({"fold": g, "val_group": val_g, "n_test": int((col == g).sum()),
                     "test_macro_f1": tm.get("macro_f1"), "test_ua": tm.get("ua"), "test_wa": tm.get("accuracy"),
                     "best_epoch": res.report.get("best_epoch")})
    table = pd.DataFrame(rows)
    summary = {"fold_column": fold_column, "folds": rows}
    for m in ("test_macro_f1", "test_ua", "test_wa"):
        vals = table[m].astype(float)
        summary[m] = {"mean": float(vals.mean()), "std": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0}
    write_csv_atomic(output_dir / "cv_summary.csv", table)
    write_json_atomic(output_dir / "cv_summary.json", summary)
    return summary


# ----------------------------------------------------------------------------- CLI
def _add_config_flags(p, names) -> None:
    """The flags of these TrainConfig fields, in field order."""
    add_dataclass_flags(p, TrainConfig, skip=[f.name for f in fields(TrainConfig) if f.name not in names])


def _add_train_flags(p, head: bool = False, manifests: bool = True) -> None:
    """The training flags, generated from TrainConfig (adapt-wav2vec2-head: ADAPT_FLAGS, with ADAPT_DEFAULTS)."""
    if manifests:
        p.add_argument("--train-manifest", required=True)
        p.add_argument("--val-manifest", required=True)
        p.add_argument("--test-manifest", default="")
    p.add_argument("--output-dir", required=True)
    common = [f.name for f in fields(TrainConfig)][:[f.name for f in fields(TrainConfig)].index("allow_split_overlap")]
    _add_config_flags(p, common)
    add_split_overlap_flag(p)
    if head:
        p.add_argument("--base-model", required=True, help="a trained model dir (best_model/)")
        _add_config_flags(p, [n for n in ADAPT_FLAGS if n not in common])
        p.set_defaults(**ADAPT_DEFAULTS)
        return
    _add_config_flags(p, [f.name for f in fields(TrainConfig) if f.name not in common and f.name != "train_projector"])


def _print_summary(res: TrainResult) -> None:
    r = res.report
    if not r:
        return
    best = r.get("best_val_metrics", {})
    msg = f"best epoch {r.get('best_epoch')}: val macro-F1 {best.get('macro_f1', float('nan')):.3f}"
    if r.get("test_metrics"):
        msg += f"; test macro-F1 {r['test_metrics']['macro_f1']:.3f}"
    print(f"{msg}; wrote {res.output_dir}")


def _cmd_make_base(args) -> int:
    out = make_base_model(args.output_dir, size=args.size, seed=args.seed)
    print(f"wrote random-init wav2vec2 ({args.size}) to {out}")
    return 0


def _cmd_train(args) -> int:
    _print_summary(train_wav2vec2(args.train_manifest, args.val_manifest, args.output_dir,
                                  test_manifest=args.test_manifest, config=TrainConfig.from_params(vars(args))))
    return 0


def _cmd_adapt(args) -> int:
    config = TrainConfig.from_params(vars(args))
    _print_summary(adapt_wav2vec2_head(args.train_manifest, args.val_manifest, args.base_model, args.output_dir,
                                       test_manifest=args.test_manifest, config=config))
    return 0


def _cmd_cv(args) -> int:
    summary = cross_validate(args.manifest, args.output_dir, fold_column=args.fold_column,
                             config=TrainConfig.from_params(vars(args), resume=False))
    for m in ("test_macro_f1", "test_ua", "test_wa"):
        print(f"{m}: {summary[m]['mean']:.3f} ± {summary[m]['std']:.3f}")
    return 0


def register_cli(subparsers) -> None:
    p = subparsers.add_parser("make-base-model", help="write a random-init small wav2vec2 classifier (offline base)")
    p.add_argument("--size", default="small", choices=sorted(BASE_SIZES))
    p.add_argument("--output-dir", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_make_base)

    p = subparsers.add_parser("train-wav2vec2", help="fine-tune wav2vec2 + classification head")
    _add_train_flags(p)
    p.set_defaults(func=_cmd_train)

    p = subparsers.add_parser("adapt-wav2vec2-head", help="retrain only the head (optionally the projector)")
    _add_train_flags(p, head=True)
    p.set_defaults(func=_cmd_adapt)

    p = subparsers.add_parser("cross-validate", help="leave-one-session-out cross-validation (mean ± std)")
    p.add_argument("--manifest", required=True, nargs="+",
                   help="manifest CSV(s) or dir(s) with train/val/test.csv, pooled then re-split by --fold-column")
    p.add_argument("--fold-column", default="session")
    _add_train_flags(p, manifests=False)  # cross-validate builds its own splits
    p.set_defaults(func=_cmd_cv)


def show_training_plots(output_dir: str | os.PathLike) -> list[Path]:
    """(Re)draw the training plots of a finished run and show them inline in a notebook."""
    paths = make_training_plots(output_dir)
    try:
        from IPython.display import Image, display
        for p in paths:
            display(Image(filename=str(p)))
    except ImportError:  # pragma: no cover
        pass
    return paths


def results_table(report: dict):
    """Best-epoch validation, test and majority-baseline metrics of a train_report as a small DataFrame."""
    import pandas as pd
    rows = {"val (best epoch)": report.get("best_val_metrics", {})}
    test = report.get("test_metrics")
    if test:
        rows["test (best model)"] = test
        rows["test: majority baseline"] = test.get("majority_baseline", {})
    cols = ["macro_f1", "ua", "accuracy", "ece"]
    return pd.DataFrame({name: {c: m.get(c) for c in cols} for name, m in rows.items()}).T
