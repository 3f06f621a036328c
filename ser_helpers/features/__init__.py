"""Stage 06: multimodal fusion features. Per utterance: the audio model of its language (emotion
probabilities), a transcript (Whisper, the corpus's ORACLE transcripts, or none; cached by audio content),
text sentiment probabilities (pretrained sequence classifiers) and a 4-class text-emotion head.

    res = build_fusion_features(train_manifest, val_manifest, test_manifest, output_dir,
                                config=FeaturesConfig(audio_model_en=dir, audio_model_zh=dir, asr_backend="reference"))
    feat = Featurizer.from_components(res.summary["components"])     # the same computation, one clip at a time
    row = feat.row(audio_16k, "en", transcript=None)                  # dict of every feature column

One module per job: `config` (FeaturesConfig: every setting and default once), `columns` (the table's columns,
languages), `featurizer` (Featurizer, the ASR for new audio), `build` (build_fusion_features in named steps),
`asr_eval` (real ASR on reference-transcript features, its cost to the fused model), `choose` (which audio model,
a tiny sentiment model), `views` (tables, plots, sentences for the notebook), `cli` (`ser build-fusion-features`).

Taught in notebook 06 (06_build_fusion_features.ipynb).
"""
from __future__ import annotations

from .asr_eval import build_asr_features
from .build import FeatureBuildResult, build_fusion_features
from .choose import choose_audio_model, train_sentiment_model_from_manifest
from .cli import register_cli
from .columns import (FEATURE_CSV_COLUMNS, ID_COLUMNS, LANGUAGE_ALIASES, LANGUAGES, METADATA_COLUMNS,
                      NON_MODEL_COLUMNS, SPLITS, STRING_FEATURES, TEXT_LENGTH_SCALE, feature_columns_by_mode,
                      normalize_language, raw_metrics)
from .config import FeaturesConfig
from .featurizer import Featurizer, inference_asr_spec, inference_transcriber
from .views import (asr_eval_table, correlation_plot, describe_asr, describe_asr_eval,
                    modality_table, recognised_examples, transcript_table)

__all__ = [
    "FEATURE_CSV_COLUMNS", "ID_COLUMNS", "LANGUAGE_ALIASES", "LANGUAGES", "METADATA_COLUMNS", "NON_MODEL_COLUMNS",
    "SPLITS", "STRING_FEATURES", "TEXT_LENGTH_SCALE", "FeatureBuildResult", "FeaturesConfig", "Featurizer",
    "asr_eval_table", "build_asr_features", "build_fusion_features", "choose_audio_model",
    "correlation_plot", "describe_asr", "describe_asr_eval",
    "feature_columns_by_mode", "inference_asr_spec", "inference_transcriber", "modality_table", "normalize_language",
    "raw_metrics", "recognised_examples", "register_cli", "train_sentiment_model_from_manifest", "transcript_table",
]
