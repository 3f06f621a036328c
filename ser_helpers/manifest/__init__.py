"""Manifests: turn raw corpora and label folders into `train.csv val.csv test.csv summary.json`.

Taught in notebook 01 (`01_iemocap_manifest.ipynb`: IEMOCAP, splitting, the written files) and
notebook 02 (`02_folder_manifest.ipynb`: label folders, CASIA, merging). One module per job, in
pipeline order (each imports only the ones above it):

* `base`: splits, common columns, `ManifestResult`, `ManifestConfig` (the settings every subcommand shares),
  finding audio files, the transcript sidecar;
* `labels`: label words/codes, `--allowed-labels`, label maps;
* `probe`: audio header checks (missing, unreadable, too short);
* `split`: speaker-independent splitting (and the stratified random fallback);
* `write`: the checks every manifest passes, then the atomic writes;
* `iemocap`, `casia`, `ravdess`, `esd`: one preparer per corpus; `folders`: the label-folder
  builder (`build_manifest`: split, flat and speaker layouts); `merge`: `merge_manifests`. Each holds
  its settings in a config dataclass beside the preparer (`IemocapConfig` ... `MergeManifestsConfig`):
  every default written once, the `ser` flags generated from it, notebooks 01/02 passing their
  parameters through it;
* `views`, `demo_layouts`: tables, the count plot and the demonstration layouts of the notebooks;
* `cli`: the `ser` subcommands.

Every manifest goes through the same checks (`write._write_manifest`): no speaker in two splits,
no duplicate path, no empty split, every label present in train; missing/unreadable audio is
skipped and reported (an error with `strict`). Rows start `path,label,source_label,duration_sec`,
then the preparer's columns, then the common columns `speaker,language,source_dataset,transcript`
where known. Labels are IEMOCAP codes. Every name is re-exported here, so
`from ser_helpers.manifest import build_manifest` and `ser.manifest.prepare_iemocap` keep working.
"""
from __future__ import annotations

from collections import Counter  # noqa: F401  (kept: `manifest.Counter` was importable before the split)

from ser_helpers.common import MANIFEST_HEAD  # noqa: F401
from ser_helpers.manifest.base import (COMMON_COLUMNS, DEFAULT_EXTENSIONS, SPLITS, ManifestConfig,  # noqa: F401
                   ManifestResult, _as_list, _audio_files, _extensions, _is_hidden, _read_text, read_transcripts_csv)
from ser_helpers.manifest.labels import IEMOCAP_4CLASS_CODES, _LabelResolver, parse_allowed_labels, resolve_label  # noqa: F401
from ser_helpers.manifest.probe import _check_rows_audio, probe_audio  # noqa: F401
from ser_helpers.manifest.split import (_check_ratios, _disjoint, _explicit_speaker_split, _split_flat, speaker_split,  # noqa: F401
                    stratified_random_split)
from ser_helpers.manifest.write import _order_columns, _write_manifest  # noqa: F401
from ser_helpers.manifest.iemocap import (IEMOCAP_PRESETS, IemocapConfig, iemocap_loso_folds, iemocap_speaker,  # noqa: F401
                      parse_iemocap_evaluation, parse_iemocap_transcriptions, prepare_iemocap, read_iemocap)
from ser_helpers.manifest.folders import LAYOUT_MODES, SPLIT_DIR_NAMES, BuildManifestConfig, build_manifest  # noqa: F401
from ser_helpers.manifest.casia import CASIA_PRESETS, CasiaConfig, prepare_casia  # noqa: F401
from ser_helpers.manifest.ravdess import (RAVDESS_EMOTIONS, RAVDESS_PRESETS, RAVDESS_STATEMENTS, RavdessConfig,  # noqa: F401
                      _as_ranges, _parse_ranges, prepare_ravdess)
from ser_helpers.manifest.esd import ESD_PRESETS, EsdConfig, prepare_esd  # noqa: F401
from ser_helpers.manifest.merge import MERGE_COLUMNS, MergeManifestsConfig, merge_manifests  # noqa: F401
from ser_helpers.manifest.views import (counts_table, dropped_table, language_table, plot_counts, source_label_table,  # noqa: F401
                    speakers_table)
from ser_helpers.manifest.demo_layouts import make_demo_layouts  # noqa: F401
from ser_helpers.manifest.cli import register_cli  # noqa: F401
