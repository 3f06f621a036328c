"""`train_wav2vec2` (and `adapt_wav2vec2_head`) on the Hugging Face Trainer, in named steps: read the data,
build the model, datasets, training arguments, the Trainer, then the report, the test score and the artifacts.

Taught in notebook 03 (03_train_wav2vec2.ipynb).
"""
from __future__ import annotations

import math
import os
import platform
import shutil
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ser_helpers import __version__
from ser_helpers.acoustic.config import ADAPT_DEFAULTS, TrainConfig
from ser_helpers.acoustic.data import ClipDataset, EpochBatchSampler, collate_clips, load_split, parse_key_values
from ser_helpers.acoustic.models import PaddingInvariantClassifier, set_trainable, whisper_classifier_from_base
from ser_helpers.acoustic.views import epoch_tag, make_training_plots, model_card
from ser_helpers.audio import check_audio_files
from ser_helpers.common import (LABELS, SERError, atomic_dir, check_splits, count_parameters, label_map,
                                resolve_device, set_seed, write_json_atomic, write_text_atomic)
from ser_helpers.inference import is_whisper, load_pretrained

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
            from .. import metrics as M
            M.save_confusion_csv(output_dir / "test_confusion_matrix.csv", report["test_metrics"]["confusion_matrix"],
                                 labels)
        report["wall_time_sec"] = round(time.time() - t_start, 2)
        write_text_atomic(best_dir / "README.md", model_card(report, labels))
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
    split_check = check_splits(frames, cfg.allow_split_overlap, {k: str(v) for k, v in manifests.items()})
    if sw_map:
        unknown = sorted(set(sw_map) - set(frames["train"]["source_dataset"]))
        if unknown:
            warnings.warn(f"--source-weight-map keys {unknown} match no training row's source_dataset", stacklevel=3)
    for split, df in frames.items():  # durations of the decoded clips, for length-grouped batches
        df["duration_sec"] = check_audio_files(df["path"], f"{split} manifest {manifests[split]}", cfg.sample_rate,
                                               cfg.progress)
    return frames, split_check, (sw_map, sl_map)


def _build_model(cfg: TrainConfig, labels: list[str], lm: dict):
    """(model, feature_extractor, PaddingInvariantClassifier wrapper, info) for `cfg.base_model`, with the layers
    that should not train frozen. info: whisper, do_normalize, random_init, frozen_layers, encoder_frozen."""
    from transformers import AutoConfig, AutoFeatureExtractor, AutoModelForAudioClassification, Wav2Vec2FeatureExtractor

    from ..weights import is_bundled_name
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

    from .. import metrics as M

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
    from .. import metrics as M
    from ..audio import load_audio
    from ..inference import AudioClassifier
    clf = AudioClassifier(model, feature_extractor, device=str(next(model.parameters()).device),
                          model_dir=str(best_dir))
    tdf = frames["test"]
    waves = [load_audio(p, sample_rate=cfg.sample_rate, max_duration_sec=None) for p in tdf["path"]]
    probs = clf.predict_proba(waves, batch_size=max(cfg.batch_size, 8), max_duration_sec=cfg.max_duration_sec,
                              progress=cfg.progress)
    tm = M.classification_metrics(list(tdf["label"]), probs, labels)
    tm["macro_f1_ci95"] = list(M.bootstrap_ci(list(tdf["label"]), probs, "macro_f1", n_bootstrap=300, seed=cfg.seed,
                                              labels=labels))
    tm["majority_baseline"] = {k: v for k, v in M.majority_baseline(
        list(frames["train"]["label"]), list(tdf["label"]), labels).items()
        if k in ("macro_f1", "ua", "accuracy", "majority_label")}
    return tm


def adapt_wav2vec2_head(train_manifest, val_manifest, base_model, output_dir, test_manifest="",
                        config: TrainConfig | None = None, callbacks: Sequence | None = None,
                        **settings) -> TrainResult:
    """Retrain only the classifier (and optionally the projector, `train_projector=True`) of a trained model on new
    manifests. Without a `config`, the defaults are TrainConfig's with ADAPT_DEFAULTS (fewer epochs, smaller
    batches, a larger learning rate); keyword arguments override either."""
    cfg = replace(config, **settings) if config is not None else TrainConfig(**(ADAPT_DEFAULTS | settings))
    return train_wav2vec2(train_manifest, val_manifest, output_dir, test_manifest=test_manifest,
                          config=replace(cfg, base_model=base_model, head_only=True), callbacks=callbacks)
