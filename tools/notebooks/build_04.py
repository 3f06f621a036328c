"""Build notebooks/04_evaluate_wav2vec2.ipynb (run from the repo root)."""
import sys
sys.path.insert(0, ".")
from tools.nbbuild import config_parameters, write_notebook

from ser_helpers.baseline import BaselineConfig
from ser_helpers.evaluate import EvaluateConfig

# The parameters cell lists the defaults of EvaluateConfig (then BaselineConfig, for `seed`) as plain literals,
# generated here from the dataclasses: a default is written once, in ser_helpers/evaluate.py or baseline.py.
SETTINGS = ["batch_size", "max_duration_sec", "n_bootstrap", "bootstrap_seed", "num_workers", "seed", "device"]
COMMENTS = {"n_bootstrap": "bootstrap resamples for the 95% intervals (0: none)",
            "bootstrap_seed": "resampling seed of the model evaluations' intervals",
            "num_workers": "audio-loading threads of the evaluation; feature processes of the classical baseline",
            "seed": "the classical baseline's seed (its fit and its intervals)"}

cells = [
("md", """
# 04 · Evaluate the wav2vec2 model, with a classical baseline beside it

Notebook 03 trained a wav2vec2 classifier. Here we measure it on a held-out split whose **speakers never appeared in
training**, the way the published IEMOCAP numbers are measured (train Sessions 1-3, validate on 4, test on 5), and we
put two simpler systems beside it, because a number means little alone:

* a **majority-class baseline** (always answer the most frequent training label): the floor;
* a **classical baseline**: statistics of MFCCs (+ deltas) and prosody (pitch, energy, duration, voicing) fed to a
  standardized logistic regression. It trains in seconds. If fine-tuning a neural network does not beat it, the
  network is not worth its cost on this data.

What we report, and why:

* **accuracy (WA)** is dominated by frequent classes; **UA** (mean per-class recall) and **macro-F1** weigh every
  emotion equally, which matters on imbalanced test sets (IEMOCAP Session 5 is happy-heavy);
* **ECE** (15 equal-width bins) and **NLL** say whether the confidences can be trusted (notebook 07 calibrates them);
* **bootstrap 95% intervals** (resampling utterances) show how much of a difference is noise on a test set this size;
* **breakdowns** by language and by improvised/scripted dialog, where the manifest has those columns.

`compare_models` names more audio models trained by notebook 03 on the same data (the default run: the pretrained
Whisper-encoder model `multilingual_whisper`); each is evaluated the same way and joins the side-by-side table.
"""),
("code", "import ser_helpers as ser\nser.nb_setup()"),
("params", '''
run_dir = "outputs/cpu"
model_name = "multilingual"
compare_models = ""
manifest_name = "multilingual_4class"
split = "test"
''' + config_parameters((EvaluateConfig, BaselineConfig), SETTINGS, comments=COMMENTS)),
("code", '''
run = ser.layout.RunLayout(run_dir)  # every path of a run: ser_helpers/layout.py
model_dir = run.audio_best_model(model_name)
manifest_dir = run.manifest(manifest_name)
eval_dir = run.eval_dir(model_name)
baseline_dir = run.baseline_model(model_name)
'''),
("md", """
## The wav2vec2 model on the held-out split

`evaluate_wav2vec2` is what `ser evaluate-wav2vec2` runs. It loads the model once and predicts in batches of
similar-length clips (little padding, so fast). wav2vec2-base's convolutional front end uses group norm and gets no
attention mask, so naive zero-padding would change a short clip's prediction when it shares a batch with a long one
(transformers #10117); our inference runs the convolutions per clip and masks the padding afterwards, so the numbers
below do not depend on `batch_size` (a unit test checks it). Clips are cut at `max_duration_sec`, as in training.
"""),
("code", '''
eval_config = ser.evaluate.EvaluateConfig.from_params(globals())  # the parameters above that name its fields
result = ser.evaluate.evaluate_wav2vec2(
    model_dir, manifest_dir / f"{split}.csv", train_manifest=manifest_dir / "train.csv", config=eval_config,
    **ser.evaluate.eval_paths(eval_dir, split))
'''),
("md", """
## Other audio models on the same split

Each model named in `compare_models` (comma-separated) is evaluated exactly as above, into its own
`{run_dir}/eval/<name>/`. A model that notebook 03 did not train (for example the Whisper-encoder model when the
bundled weights are not installed) is skipped with a note.
"""),
("code", '''
others = {}
for name in [n.strip() for n in compare_models.split(",") if n.strip()]:
    other_dir = run.audio_best_model(name)
    if not other_dir.exists():
        print(f"{name}: not trained (no {other_dir}); skipped")
        continue
    others[name] = ser.evaluate.evaluate_wav2vec2(
        other_dir, manifest_dir / f"{split}.csv", train_manifest=manifest_dir / "train.csv", config=eval_config,
        **ser.evaluate.eval_paths(run.eval_dir(name), split))
sorted(others)
'''),
("md", """
## The classical baseline on the same split

Same manifests, same metrics. The regularisation strength C is chosen on the **validation** split's macro-F1; the
evaluated split is scored once, at the end. Per-file features are cached in the baseline's folder, so a rerun (or
a run after notebook 03 trained the same baseline) takes seconds.
"""),
("code", '''
base = ser.baseline.train_baseline(
    manifest_dir / "train.csv", manifest_dir / "val.csv", manifest_dir / f"{split}.csv", baseline_dir,
    config=ser.baseline.BaselineConfig.from_params(globals()))  # seed, max_duration_sec, n_bootstrap, num_workers
'''),
("md", """
## Side by side

One row per system; the last row is the majority-class floor (its label comes from the training split).

Why they differ: the scratch wav2vec2 starts from random weights and must learn to hear from a couple of thousand
clips; the Whisper-encoder model starts from an encoder pretrained on 680 k hours of speech and only adapts its top;
the MFCC + prosody baseline is handed pitch, energy and rate, which is where this corpus puts its emotions. Expect
pretrained > hand-made features > scratch on the test split; the intervals say how sure that ranking is.
"""),
("code", '''
def system_name(name):
    kind = ser.common.read_json(run.audio_best_model(name) / "config.json")["model_type"]
    return f"pretrained Whisper encoder ({name})" if kind == "whisper" else f"{kind} ({name})"

systems = {system_name(n): r.metrics for n, r in {model_name: result, **others}.items()}
systems["MFCC+prosody logistic regression"] = base.test_metrics
ser.evaluate.compare_table(systems).round(3)
'''),
("md", "Which one wins, computed from the numbers above (not written in advance):"),
("code", "print(ser.evaluate.verdict(systems))"),
("md", """
### Published numbers, for context only

These come from **real IEMOCAP / CASIA speech** and pretrained models, under the protocols named in each row (percent).
Our default run uses a small generated corpus and a small wav2vec2 trained from scratch, so its numbers are not
comparable to them; on a GPU box with IEMOCAP and `facebook/wav2vec2-base`, the same notebook gives numbers that are.
Note the protocol column: speaker-dependent splits and leave-one-session-out averages are not the same test as our
single Session-5 split.
"""),
("code", "ser.evaluate.reference_table()"),
("md", """
## Where the errors are

Confusion matrices of the wav2vec2 model: counts, then each row divided by its total (so the diagonal is per-class
recall). Emotions that differ mainly in valence (angry vs happy, neutral vs sad) are the classic confusions of
audio-only models: prosody carries arousal better than valence.
"""),
("code", 'ser.evaluate.show_images(result.paths["confusion_png"], result.paths["confusion_normalized_png"])'),
("md", "The baseline's row-normalised confusion matrix, for comparison:"),
("code", 'ser.evaluate.show_images(baseline_dir / f"test_confusion_matrix_normalized.png")'),
("md", "Per-class precision, recall, F1 and support of the wav2vec2 model, then of the baseline:"),
("code", "ser.evaluate.per_class_table(result.metrics).round(3)"),
("code", "ser.evaluate.per_class_table(base.test_metrics).round(3)"),
("md", """
## Breakdowns

Macro-F1 per language and per dialog type (IEMOCAP's improvised vs scripted sessions), for both systems. Scripted
dialogs reuse the same scripts across sessions, which flatters text models (Pepino et al., 2020); for audio the split
still tells whether acted and spontaneous emotion are equally easy. A group missing here was not in the manifest.
"""),
("code", 'ser.evaluate.breakdown_compare(systems, "language").round(3)'),
("code", 'ser.evaluate.breakdown_compare(systems, "dialog_type").round(3)'),
("md", """
## Listen to a few mistakes

The most confident wrong predictions of the wav2vec2 model (one per true emotion first). Listening to errors is the
fastest way to learn whether the labels, the audio or the model is at fault.
"""),
("code", '''
wrong = ser.evaluate.misclassified(result.predictions, n=4)
ser.evaluate.show_clips(wrong)
'''),
("md", """
## What we learned

* The metrics JSON, the per-utterance predictions and the confusion matrices are in `{run_dir}/eval/{model_name}/`
  (`ser evaluate-wav2vec2` writes the same files from the command line); the baseline is in
  `{run_dir}/models/baseline/{model_name}/`.
* Read the intervals before the point estimates: on a test set of a few hundred clips, a few points of macro-F1 are
  within noise.
* The classical baseline is a real competitor on small data. Fine-tuning pays only when it beats it clearly, which
  is what pretrained models on real speech do (see the published numbers).
* Next: notebook 05 serves this model over HTTP; notebooks 06-07 add the transcript and calibrate the fused model.
"""),
]
write_notebook("notebooks/04_evaluate_wav2vec2.ipynb", cells)
print("ok")
