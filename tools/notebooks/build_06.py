import sys
sys.path.insert(0, ".")
from tools.nbbuild import config_parameters, write_notebook

from ser_helpers.features import FeaturesConfig

# The parameters cell lists FeaturesConfig's defaults as plain literals, generated here from the dataclass: a default
# is written once, in ser_helpers/features/config.py. This notebook's own choice (reference transcripts) is an OVERRIDE.
SETTINGS = ["asr_backend", "whisper_model", "whisper_compute_type", "whisper_cpu_threads", "whisper_num_workers",
            "text_model_en", "text_model_zh", "batch_size", "max_samples", "seed"]
OVERRIDES = {"asr_backend": "reference"}
COMMENTS = {"asr_backend": "reference (the corpus's ORACLE transcripts) or whisper",
            "whisper_compute_type": "as in faster-whisper; empty: int8 on cpu, float16 on cuda",
            "whisper_num_workers": "windows decoded at once, each with whisper_cpu_threads threads",
            "batch_size": "clips per audio-model call (same numbers at any size; bench/bench_batch_size.py)",
            "max_samples": "rows per split; 0 means all"}

cells = [
("md", """# 06 · Build multimodal fusion features

Stage 06 turns every utterance of the multilingual manifests into one row of numbers that the late-fusion
model (notebook 07) learns from:

* **audio branch**: the fine-tuned wav2vec2 model of the utterance's language gives `audio_prob_ang/hap/neu/sad`,
  its confidence (top probability) and entropy;
* **ASR**: a transcript per utterance: Whisper (cached by a hash of the audio *content*), or the corpus's own
  reference transcripts (`asr_backend = "reference"`, which are **ORACLE** transcripts, not speech recognition).
  The default cpu run trains on the reference transcripts (labelled ORACLE) and ALSO recognises the English
  test rows with real ASR, the bundled Whisper `tiny.en` (faster-whisper), to measure what a real recogniser
  costs: its word error rate here, the fused model's score in notebook 09. Mandarin rows always keep their
  reference transcripts (tiny.en is English-only);
* **text branch**: optional pretrained sentiment models (`text_negative/neutral/positive`), and a 4-class
  text-emotion head (character n-gram TF-IDF + logistic regression, for English and Mandarin alike)
  trained on the TRAIN transcripts → `text4_prob_*`.

Train rows get *out-of-fold* text4 scores (folds hold out whole speakers, and a sentence never scores itself),
so the fusion model does not learn to trust over-confident, leaked text scores. The audio model, on the
other hand, has seen the train clips: compare its mean confidence on train and val below."""),
("code", "import ser_helpers as ser\nser.nb_setup()"),
("params", '''run_dir = "outputs/cpu"
manifest_name = "multilingual_4class"
audio_model_name = "multilingual"
audio_model_kind = "auto"  # auto (higher VAL macro-F1), wav2vec2 or baseline
asr_eval_model = "tiny.en"  # real ASR of the English rows below: tiny.en is the bundled Whisper; "" skips it
asr_eval_splits = "test"  # comma list; "train,val,test" recognises every English row (slower)
asr_eval_max_rows = 0  # per split; 0 means all English rows
train_sentiment_model = False
device = "auto"  # of the audio model, the text models and Whisper
''' + config_parameters(FeaturesConfig, SETTINGS, OVERRIDES, COMMENTS)),
("md", """Paths follow the run layout: manifests from stage 02, features written to `{run_dir}/features/`.

**Which audio model?** Two audio classifiers exist by now: the wav2vec2 fine-tuned in notebook 03 and the classical
MFCC+prosody baseline trained in notebook 04. Both load through the same `AudioClassifier` interface. With
`audio_model_kind = "auto"` the one with the higher **validation** macro-F1 becomes the audio branch (the test split
is not looked at). On a GPU box with `facebook/wav2vec2-base` that is the wav2vec2; offline, a wav2vec2 trained from
random initialisation for a few CPU minutes on the generated corpus may not learn at all (notebook 04 shows it), and
then the classical model carries the audio branch. The table says which was chosen and why."""),
("code", '''run = ser.layout.RunLayout(run_dir)  # every path of a run: ser_helpers/layout.py
manifest_dir = run.manifest(manifest_name)
audio_model, audio_choice = ser.features.choose_audio_model(run_dir, audio_model_name, audio_model_kind)
features_dir = run.features
audio_choice'''),
("md", """Offline there is no pretrained sentiment model to download. With `train_sentiment_model = True` (the smoke
profile) we train a *tiny* local 3-class sentiment model on the train transcripts (angry/sad → negative,
neutral → neutral, happy → positive) so that the `text_negative/neutral/positive` columns are exercised end to end.
On a GPU box, name a real model instead (e.g. a RoBERTa sentiment model) in `text_model_en` / `text_model_zh`."""),
("code", '''if train_sentiment_model:
    text_model_en = str(ser.features.train_sentiment_model_from_manifest(
        manifest_dir / "train.csv", run.text_model("sentiment_tiny"), manifest_dir / "val.csv", seed=seed))
print("text models:", {"en": text_model_en or None, "zh": text_model_zh or None})'''),
("md", """Build the three feature tables (one multilingual audio model serves both languages here). Every setting of
the build is a field of `ser.features.FeaturesConfig`, which holds each default once; the parameters above that name
its fields go into it in one call, and the `ser build-fusion-features` flags are generated from the same fields."""),
("code", '''config = ser.features.FeaturesConfig.from_params(globals(), audio_model_en=audio_model, audio_model_zh=audio_model,
                                                 audio_device=device, text_device=device, whisper_device=device)
result = ser.features.build_fusion_features(manifest_dir / "train.csv", manifest_dir / "val.csv",
                                            manifest_dir / "test.csv", features_dir, config=config)
result.summary["rows"]'''),
("md", "Where do the transcripts come from? (Say it plainly: it changes how to read every text number below.)"),
("code", '''from IPython.display import Markdown
Markdown("**" + ser.features.describe_asr(result.summary) + "**")'''),
("md", """## Real speech recognition on the English test rows

The features above are what the fusion model trains on. A deployed model never sees reference transcripts: it
hears speech and must recognise it. So the English test rows are recognised once more with the bundled Whisper
`tiny.en` and written as `test_features_asr.csv` (same columns; the recognised transcript and the text features
computed from it by the same text components; the audio columns are unchanged). Mandarin rows keep their
reference transcripts everywhere (tiny.en is English-only).

Whisper always decodes a 30 s window, so one 3 s clip costs as much as 30 s of audio. The recogniser therefore
*packs* about eight clips, 1 s of silence apart, into one window, decodes it once with word timestamps and hands
every word back to the clip it was spoken in (a clip whose share looks wrong is decoded alone). Transcripts are
cached by audio content: a second run recognises nothing.

**Word error rate** (WER) = (substituted + deleted + inserted words) / reference words, after lower-casing,
dropping punctuation and spelling out digits (`10:15` = `ten fifteen`); saying a number differently
(`half past two` / `2:30`) still counts as an error."""),
("code", """asr_eval = None
if asr_eval_model:
    asr_eval = ser.features.build_asr_features(
        features_dir, splits=[s.strip() for s in asr_eval_splits.split(",") if s.strip()], languages=["en"],
        whisper_model=asr_eval_model, whisper_device=device,
        whisper_compute_type=whisper_compute_type, whisper_cpu_threads=whisper_cpu_threads,
        whisper_num_workers=whisper_num_workers, text_device=device, max_rows=asr_eval_max_rows)
print(ser.features.describe_asr_eval(asr_eval))"""),
("code", "ser.features.asr_eval_table(asr_eval)"),
("md", "Reference and recognised transcripts side by side (English test rows; notebook 09 scores the fused model on both):"),
("code", "ser.features.recognised_examples(features_dir, n=8, seed=seed)"),
("md", "Transcripts next to their labels (validation split), with what each modality alone would predict:"),
("code", 'ser.features.transcript_table(result.frames["val"], n=12, seed=seed)'),
("md", """Per-modality quality of the **raw** features: the argmax of `audio_prob_*` and of `text4_prob_*`.
Train text4 scores are out-of-fold; train audio scores are in-sample (the audio model was trained on these clips)."""),
("code", "ser.features.modality_table(result.summary)"),
("code", 'result.summary["audio_confidence"]'),
("md", """Which features move together? Audio probabilities mostly separate *arousal* (angry/happy vs neutral/sad),
wording mostly separates *valence*: where the two branches are weakly correlated, fusion has something to gain."""),
("code", '''ser.features.correlation_plot(result.frames["train"], result.summary["feature_columns"]["fusion"],
                              path=features_dir / "feature_correlation.png");'''),
("md", "The feature columns each fusion mode uses (notebook 07 reads them from `summary.json`), and the stage timings:"),
("code", '''{mode: len(cols) for mode, cols in result.summary["feature_columns"].items()}, result.summary["timings"]'''),
]
write_notebook("notebooks/06_build_fusion_features.ipynb", cells)
print("ok")
