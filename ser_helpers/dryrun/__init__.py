"""A real-size dry run of a GPU profile on CPU, before any GPU hour is spent.

    ser pipeline --dry-run --profile configs/gpu_iemocap.yaml        (make dryrun)

Every notebook of the profile (00-10 of `configs/gpu_iemocap.yaml`) runs, in order, with the profile's own
parameters, except what needs a download:

* the hub models become **random-init stand-ins with the real architectures**, built locally from the configs
  recorded in `configs/hub_configs/<id>/config.json` (facebook/wav2vec2-base, 95 M parameters, with its
  layerdrop and SpecAugment settings; openai-whisper `small` dimensions; the two RoBERTa sentiment models with
  their real `id2label`, so notebook 06 maps the same labels to negative/neutral/positive as with the real ones);
* the data becomes a small generated corpus in the raw IEMOCAP and CASIA layouts (notebook 00, size `dryrun`),
  with one clip per IEMOCAP split lengthened past 15 s so `max_duration_sec: 15` crops for real;
* training takes a few optimisation steps (`max_steps`); the corpus is small (33 utterances: the fewest with every
  label in IEMOCAP's train sessions) and stage 06 takes 6 rows per split (`max_samples`), each a Whisper-small 30 s
  window; a random-init Whisper decodes at most `SER_WHISPER_SAMPLE_LEN` tokens per window (24 here; a random
  decoder otherwise loops to its 224-token limit).

The overrides are listed, with their reasons, in `{run_dir}/dryrun_stages.md`. Then it checks what breaks at
real size: every profile parameter reaches (and is used by) its notebook, clips over 15 s are cropped,
`fp16`/`cuda` without CUDA is a clear warning rather than a crash, the selection ran on val, the report was
written, and the sentiment labels map as they will with the real models. Per stage it prints the wall time, the
peak memory (RSS of the kernel process and its children) and a linear estimate of the same stage on the real
corpus (IEMOCAP 5531 utterances + CASIA 800) from the measured per-utterance cost; the table is kept as
`{run_dir}/dryrun_stages.json` and `.md`.

The notebooks teach each stage (03 the base model, 06 the ASR and text models, 09 the selection); this package
only rearranges their inputs. `bench/gpu_check.sh` runs the same dry run on a GPU.

Modules, in the order of a dry run: `plan` (the settings `DEFAULTS`, the derived profile, the lengthened clips),
`standins` (the random-init models, `verify_hub`), `monitor` (peak memory and CPU of a stage),
`notebook_parameters` (does every parameter reach and get used by its notebook), `checks`, `estimates` (the
cost at full size), `report` (the stage table), `runner` (`run_dry_run`), `cli` (`python -m ser_helpers.dryrun`).
"""
from __future__ import annotations

from ..hub import HUB_CONFIGS, count_parameters, model_refs, recorded_config
from .checks import run_checks
from .cli import main
from .estimates import REAL_MEAN_SEC_CAPPED, REAL_ROWS, add_estimates, estimate, kernel_overhead, stage_work
from .monitor import PeakRSS
from .notebook_parameters import _config_fields_read_from_globals, parameter_problems  # noqa: F401 (tests)
from .plan import DEFAULTS, WHISPER_SAMPLE_LEN_ENV, dry_run_plan, lengthen_clips
from .report import stage_table_md, write_stage_table
from .runner import run_dry_run
from .standins import architecture_summary, build_standin, loaded_architecture, verify_hub

__all__ = [
    "DEFAULTS", "HUB_CONFIGS", "PeakRSS", "REAL_MEAN_SEC_CAPPED", "REAL_ROWS", "WHISPER_SAMPLE_LEN_ENV",
    "add_estimates", "architecture_summary", "build_standin", "count_parameters", "dry_run_plan", "estimate",
    "kernel_overhead", "lengthen_clips", "loaded_architecture", "main", "model_refs", "parameter_problems",
    "recorded_config", "run_checks", "run_dry_run", "stage_table_md", "stage_work", "verify_hub",
    "write_stage_table",
]
