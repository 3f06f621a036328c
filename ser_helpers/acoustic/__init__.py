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

Taught in notebook 03 (03_train_wav2vec2.ipynb). One module per job; this package re-exports their names, so
`from ser_helpers.acoustic import X` and `ser.acoustic.X` work as before the split:

* `config`  TrainConfig (every setting and default once), ADAPT_DEFAULTS, LR_SCHEDULERS
* `data`    manifests + source maps, ClipDataset, EpochBatchSampler, collate_clips
* `models`  make_base_model, the Whisper-encoder classifier, PaddingInvariantClassifier, set_trainable
* `train`   train_wav2vec2 in named steps, adapt_wav2vec2_head, TrainResult
* `cv`      cross_validate
* `views`   the model card, training plots, results_table
* `cli`     `ser make-base-model / train-wav2vec2 / adapt-wav2vec2-head / cross-validate`
"""
from __future__ import annotations

from ser_helpers.acoustic.config import ADAPT_DEFAULTS, ADAPT_FLAGS, LR_SCHEDULERS, TrainConfig
from ser_helpers.acoustic.data import ClipDataset, EpochBatchSampler, collate_clips, load_split, parse_key_values
from ser_helpers.acoustic.models import (BASE_SIZES, PaddingInvariantClassifier, encoder_layers, make_base_model,
    set_trainable, whisper_classifier_from_base)
from ser_helpers.acoustic.views import epoch_tag, make_training_plots, model_card, results_table, show_training_plots
from ser_helpers.acoustic.train import TrainResult, adapt_wav2vec2_head, train_wav2vec2, weighted_loss
from ser_helpers.acoustic.cv import cross_validate
from ser_helpers.acoustic.cli import register_cli
from ser_helpers.audio import check_audio_files
from ser_helpers.common import count_parameters

__all__ = ["ADAPT_DEFAULTS", "ADAPT_FLAGS", "BASE_SIZES", "LR_SCHEDULERS", "ClipDataset", "EpochBatchSampler",
           "PaddingInvariantClassifier", "TrainConfig", "TrainResult", "adapt_wav2vec2_head", "check_audio_files",
           "collate_clips", "count_parameters", "cross_validate", "encoder_layers", "epoch_tag", "load_split",
           "make_base_model", "make_training_plots", "model_card", "parse_key_values", "register_cli", "results_table",
           "set_trainable", "show_training_plots", "train_wav2vec2", "weighted_loss", "whisper_classifier_from_base"]
