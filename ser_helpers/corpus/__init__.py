"""The generated emotional-speech corpus (`ser synth-corpus`). Taught in notebook 00 (`00_make_demo_corpus.ipynb`).

Real corpora (IEMOCAP, CASIA) are licensed, so the default run speaks its own corpus with the
espeak-ng synthesizer (PyPI `espeakng-loader`, driven through ctypes) and writes it in the REAL raw
layouts, so the same parsers serve generated and real data:

* `iemocap_raw/Session1..5/dialog/EmoEvaluation/<dialog>.txt`, `.../dialog/transcriptions/<dialog>.txt`,
  `.../sentences/wav/<dialog>/<utt_id>.wav` (English, one female + one male speaker per session,
  improvised and scripted dialogs, codes neu hap exc sad ang fru sur xxx);
* `casia_raw/<speaker>/<emotion>/<file_id>.wav` + `casia_raw/transcripts.csv` (Mandarin, voice `cmn`);
* `corpus_info.json` (size, seed, counts, generator settings).

Emotion lives where it lives in real speech: prosody (pitch level and range, rate, loudness) mostly
separates AROUSAL (angry/happy vs sad/neutral) with only weak valence cues; the WORDING mostly
separates valence, and a good share of sentences has neutral wording. Every speaker has its own voice
and baseline; every utterance gets prosodic jitter, background noise at a random SNR and
leading/trailing silence. It is not real speech: it is a stand-in that lets every stage run offline.

Determinism: espeak-ng keeps state between calls, so each utterance is rendered in a fresh forked
process (`forked.run_forked`) after `espeak_ng_SetRandSeed`; all random choices are made up front
from `seed`, so the same size and seed give byte-identical files.

Modules, in pipeline order: `settings` (sizes, voices, prosody, wording shares), `words` (the word
lists, data files `words/*.json`), `plan` (every utterance, all randomness), `espeak` (rendering),
`layout` (the raw layouts' text files), `synth` (`synth_corpus`), `views` (tables and plots for the
notebook), `separability` (the audio/text/fusion check), `cli`. `ser_helpers.synth` re-exports
the public names, so `ser.synth.synth_corpus(...)` keeps working.
"""
from __future__ import annotations

from ser_helpers.corpus.cli import register_cli  # noqa: F401
from ser_helpers.corpus.espeak import espeak_synth  # noqa: F401
from ser_helpers.corpus.layout import ANNOTATOR_NAMES, CATEGORICAL_NAMES, EMO_HEADER, VAD  # noqa: F401
from ser_helpers.corpus.plan import _plan  # noqa: F401
from ser_helpers.corpus.separability import acoustic_stats, measure_corpus_separability  # noqa: F401
from ser_helpers.corpus.settings import (CASIA_CODE, CASIA_EMOTIONS, CASIA_SPEAKERS, CODE_SHARES, EN_SPEAKERS,  # noqa: F401
                       ESPEAK_SR, GENERATOR_VERSION, IEMOCAP_CODES, IMPRO_SHARE, INTENSITY, JITTER, KEY_SHARE,
                       MAX_CLIP_SEC, PROSODY, SCRIPTS, SESSIONS, SILENCE_SEC, SIZES, SNR_DB, SPLIT_GROUPS, WORDING,
                       ZH_SPEAKERS)
from ser_helpers.corpus.synth import SynthResult, synth_corpus  # noqa: F401
from ser_helpers.corpus.views import (EMO_LINE, TRANS_LINE, count_tables, example_clips, plot_emotion_examples,  # noqa: F401
                    plot_prosody_by_emotion, prosody_table, read_corpus_table, show_audio_examples)
from ser_helpers.corpus.words import (EN_OPENERS, EN_SLOTS, EN_TEMPLATES, KEY_OPENERS, ZH_SLOTS, ZH_TEMPLATES,  # noqa: F401
                    load_words)

__all__ = [
    "ANNOTATOR_NAMES", "CASIA_CODE", "CASIA_EMOTIONS", "CASIA_SPEAKERS", "CATEGORICAL_NAMES", "CODE_SHARES",
    "EMO_HEADER", "EMO_LINE", "EN_OPENERS", "EN_SLOTS", "EN_SPEAKERS", "EN_TEMPLATES", "ESPEAK_SR",
    "GENERATOR_VERSION", "IEMOCAP_CODES", "IMPRO_SHARE", "INTENSITY", "JITTER", "KEY_OPENERS", "KEY_SHARE",
    "MAX_CLIP_SEC", "PROSODY", "SCRIPTS", "SESSIONS", "SILENCE_SEC", "SIZES", "SNR_DB", "SPLIT_GROUPS",
    "SynthResult", "TRANS_LINE", "VAD", "WORDING", "ZH_SLOTS", "ZH_SPEAKERS", "ZH_TEMPLATES",
    "acoustic_stats", "count_tables", "espeak_synth", "example_clips", "load_words",
    "measure_corpus_separability", "plot_emotion_examples", "plot_prosody_by_emotion", "prosody_table",
    "read_corpus_table", "register_cli", "show_audio_examples", "synth_corpus",
]
