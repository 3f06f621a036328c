"""Learnable late fusion of audio and text emotion features, with post-hoc calibration (stage 07).

`train_late_fusion(...)` reads the `{split}_features.csv` files of stage 06, trains an MLP or a gated
fusion network over the feature columns that `features/summary.json` lists for the mode, calibrates
it on the validation split (global / per-language temperature or vector scaling, LBFGS on NLL) and
writes `fusion_model.pt`, `feature_scaler.json`, `train_report.json`, `pipeline.json`, calibrated
confusion CSVs and PNG plots into `output_dir`.

In-sample confidence: the audio model (and the text4 head) were trained on the TRAIN rows, so their
train-row probabilities are over-confident. With `fit_strategy="val_cv"` (default) the fusion is
fitted on held-out rows only: speaker-grouped K-fold cross-validation over the VAL split picks the number
of epochs (early stopping per fold), then gives out-of-fold val logits from fold models trained for exactly
that many epochs (the temperature is fitted on them); the deployed model is trained on every val row for
that many epochs too.
`fit_strategy="train"` is the naive way (fit on train, early-stop and calibrate on val); the report
compares both on the test split.
Taught in notebook 07 (07_train_late_fusion.ipynb). One module per job; this package re-exports their names,
so `from ser_helpers.fusion import X` and `ser.fusion.X` work as before the split:

* `config`       FusionConfig (every default once), modes, archs, default feature columns
* `data`         reading the feature CSVs, the feature scaler
* `nets`         the MLP / gated fusion networks and their ensembles
* `calibration`  temperature / vector scaling fitted on held-out logits
* `fit`          the training loop, the fit strategies and `train_late_fusion`
* `load`         `load_fusion_model` -> FusionModel (predict_proba)
* `views`        notebook tables of a train_report
* `cli`          `ser train-late-fusion`

Synthetic feature CSVs for tests live in tests/fusion_data.py.
"""
from __future__ import annotations

from ser_helpers.fusion.config import (ARCHS, AUDIO_FEATURES, CALIBRATION_MODES, DEFAULT_FEATURE_COLUMNS,
    FIT_STRATEGIES, FIT_STRATEGY_CHOICES, FusionConfig, IN_SAMPLE_GAP, MODES, SPLITS, TEXT_FEATURES)
from ser_helpers.fusion.data import (apply_scaler, check_label_coverage, feature_columns_for, fit_scaler,
    read_feature_summary, read_features)
from ser_helpers.fusion.nets import build_network, _logits, make_arch, single_thread, _stack_members, _torch
from ser_helpers.fusion.calibration import (apply_calibration, fit_calibration, _fit_calibration,
    _fit_scalar_temperature, _fit_vector_scaling, temperature_for)
from ser_helpers.fusion.fit import (_cv_folds, evaluate_split, _fit_and_calibrate, _fit_naive, _fit_val_cv,
    FusionResult, _groups, resolve_fit_strategy, _summary, train_late_fusion, _train_member, _write_artifacts)
from ser_helpers.fusion.load import _check_names, FusionModel, load_fusion_model
from ser_helpers.fusion.views import comparison_table, report_table
from ser_helpers.fusion.cli import add_training_flags, _cli_train, register_cli, TRAINING_KEYS
from ser_helpers.metrics import bootstrap_intervals, ece_sampling_floor, entropy, macro_f1, softmax  # used as fusion.X
