"""Builds notebooks/00_make_demo_corpus.ipynb (run from the repository root)."""
import sys
sys.path.insert(0, ".")
from tools.nbbuild import write_notebook

write_notebook("notebooks/00_make_demo_corpus.ipynb", [
    ("md", '''# 00 · The generated emotional-speech corpus

Every later notebook needs labelled emotional speech. The real corpora this curriculum is built for
(IEMOCAP in English, CASIA in Mandarin) are licensed and cannot be downloaded here, so the default run
**generates its own corpus** with the open-source speech synthesizer espeak-ng and writes it in the
*real* raw layouts:

* `corpus/iemocap_raw/Session1..5/...`: English, exactly the IEMOCAP raw layout (`dialog/EmoEvaluation/*.txt`,
  `dialog/transcriptions/*.txt`, `sentences/wav/<dialog>/<utterance>.wav`), one female and one male speaker
  per session, improvised and scripted dialogs, the IEMOCAP emotion codes (neu, hap, exc, sad, ang, fru, sur, xxx);
* `corpus/casia_raw/<speaker>/<emotion>/*.wav`: Mandarin, the CASIA layout with CASIA's four speaker names,
  plus `transcripts.csv`;
* `corpus/corpus_info.json`: size, seed, counts and every generator setting.

Because the layouts are the real ones, notebooks 01 and 02 parse this corpus with the same code that parses
the real IEMOCAP and CASIA. **This is not real speech**: it is a robotic, fully reproducible stand-in that
lets the whole curriculum run offline on a laptop. Numbers measured on it teach the method, not the state of the art.'''),
    ("code", '''import ser_helpers as ser
ser.nb_setup()'''),
    ("md", '''Parameters (the pipeline runner overrides them per profile): `corpus_size` is `smoke` (CI, seconds), `default` (the main job) or `large`.'''),
    ("params", '''run_dir = "outputs/cpu"
corpus_size = "default"
seed = 0'''),
    ("md", '''## Build (or reuse) the corpus

Each utterance is rendered in a fresh process (espeak-ng keeps state between calls), so the same size and
seed give byte-identical files. A corpus already built with the same size and seed is reused.'''),
    ("code", '''corpus_dir = ser.layout.RunLayout(run_dir).corpus  # every path of a run: ser_helpers/layout.py
corpus = ser.synth.synth_corpus(corpus_dir, size=corpus_size, seed=seed)
corpus'''),
    ("md", '''## How emotion is encoded

Emotion is put where it lives in real speech, so that neither modality alone is enough:

* **Prosody** (pitch level, pitch range, speaking rate, loudness) mostly separates **arousal**: angry and happy
  are higher, faster, louder and livelier than neutral and sad. Angry vs happy and sad vs neutral differ only a little.
* **Wording** mostly separates **valence**: happy sentences use positive words, angry and sad sentences negative
  ones. About a third of the emotional sentences have neutral wording, so text alone is not enough either.
* Each speaker has a voice and a baseline of its own; every utterance gets random emotional intensity, jitter,
  background noise at a random SNR (12-30 dB) and some leading/trailing silence.

The prosody offsets below are added to each speaker's baseline and scaled by a random intensity per utterance.'''),
    ("code", '''ser.synth.prosody_table()'''),
    ("md", '''## What is in it

IEMOCAP part: utterances per session and emotion code (`exc` is merged into happy and `fru`, `sur`, `xxx` are dropped by the 4-class preset in notebook 01).'''),
    ("code", '''counts = ser.synth.count_tables(corpus_dir)
counts["iemocap_session_code"]'''),
    ("md", '''Improvised dialogs use sentences of their own in every session (a text model cannot pass by memorising them); scripted dialogs reuse the same scripts in every session, as in IEMOCAP.'''),
    ("code", '''counts["iemocap_dialog_type"]'''),
    ("md", '''CASIA part: clips per speaker and emotion.'''),
    ("code", '''counts["casia_speaker_emotion"]'''),
    ("md", '''The 4-class rows per default speaker-independent split (train Sessions 1-3 + liuchanhg, wangzhe; val Session 4 + zhaoquanyin; test Session 5 + ZhaoZuoxiang):'''),
    ("code", '''counts["four_class_by_split"]'''),
    ("md", '''## Listen

One clip per language and emotion, with its transcript.'''),
    ("code", '''examples = ser.synth.example_clips(corpus_dir, per_label=1, seed=seed)
ser.synth.show_audio_examples(examples)'''),
    ("md", '''## Look: waveform and pitch per emotion

Angry and happy clips are louder, with higher and more varied pitch; sad and neutral are flatter and quieter.'''),
    ("code", '''ser.synth.plot_emotion_examples(examples, f"{corpus_dir}/figures/waveform_pitch_en.png", language="en")'''),
    ("code", '''ser.synth.plot_emotion_examples(examples, f"{corpus_dir}/figures/waveform_pitch_zh.png", language="zh")'''),
    ("md", '''Over many clips, loudness (with pitch and speaking rate) splits the high-arousal emotions (angry, happy) from the low-arousal ones (neutral, sad), while angry vs happy and neutral vs sad overlap: that part is left to the words.'''),
    ("code", '''ser.synth.plot_prosody_by_emotion(corpus_dir, f"{corpus_dir}/figures/prosody_by_emotion.png", per_label=10, seed=seed)'''),
    ("md", '''## How hard is it?

`ser.synth.measure_corpus_separability(corpus_dir)` (run by `bench/bench_synth.py`) trains two quick classical
models on the train split and scores the test split: MFCC + prosody statistics with logistic regression
(audio only) and character n-gram TF-IDF with logistic regression on the transcripts (text only), and averages
their probabilities (late fusion). Measured on the default corpus with seed 0 (4180 clips; test split 621 rows:
341 English, 280 Mandarin): audio only 0.61 macro-F1, text only 0.60, fusion 0.72. Each modality alone is
mediocre and their combination is clearly better: the situation the fusion notebooks (06-09) are about.
(Other seeds move these numbers by a few points. The default is this large so that the test split can
measure calibration: on ~200 rows even a perfectly calibrated model shows an ECE of about 0.06.)

Next: notebook 01 parses `iemocap_raw/` into manifests exactly as it would parse the real IEMOCAP.'''),
])
