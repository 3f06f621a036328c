import sys
sys.path.insert(0, ".")
"""Builds notebooks/10_gradio_demo.ipynb (run from the repo root)."""
from tools.nbbuild import write_notebook

write_notebook("notebooks/10_gradio_demo.ipynb", [
    ("md", """# 10 · Gradio demo of the calibrated fusion model, and the run's report

The last stage puts everything together for a person to try: a small web app in which you upload (or record)
a clip and see

* the **transcript** — in an editable box: left empty, the bundled Whisper `tiny.en` recognises English speech
  and its text appears in the box before the fused answer (Mandarin: type what was said); correct it and press
  *Analyze* again: the text branch and the fusion follow your words;
* the **calibrated fused emotion** with every emotion's probability (temperature scaling from notebook 07, so
  "80 %" means right about 80 % of the time on held-out data);
* beside it the **audio-only** and **text-only** probabilities, so you see what each modality contributed;
* the calibration temperature and which models are loaded.

The app is a thin shell around one function, `ser.demo.analyze`; this notebook calls the same function on one
test clip per emotion, so a headless run (papermill, `launch = False`) checks the very code path the app uses.
Safety defaults: the app listens on 127.0.0.1 only, makes no public link (`share=False`), caps uploads at
10 MB and 30 s, and turns Gradio's analytics off. Bad input (silent, too short, too long, unreadable) shows a
readable message in the page."""),
    ("code", "import ser_helpers as ser\nser.nb_setup()"),
    ("params", 'run_dir = "outputs/cpu"\nfusion_dir = ""\nlaunch = True'),
    ("md", """## The model

`fusion_best/` is the model notebook 09 selected. Its `pipeline.json` names every component (audio model per
language, ASR, text models, the fusion network and its calibration), so this one folder drives the demo (and
the HTTP service)."""),
    ("code", """run = ser.layout.RunLayout(run_dir)  # every path of a run: ser_helpers/layout.py
fusion_dir = fusion_dir or run.fusion_best
predictor = ser.predictor.FusionPredictor.load(fusion_dir)
ser.demo.show_markdown(ser.demo.describe_text(predictor))"""),
    ("md", """## Example clips

One clip per emotion from the **test split** (never used for training, early stopping or calibration), with
its reference transcript pre-filled; in the app they are one click away."""),
    ("code", """examples = ser.demo.find_examples(fusion_dir)
[(ex.label, ex.language, ex.path) for ex in examples]"""),
    ("md", """## Build the app and run every example through it

`build_demo` builds the Gradio Blocks app around the predictor; `predict_examples` sends each example through
`analyze`, the function behind the *Analyze* button. Compare the true emotion with the fused one, and the
audio-only and text-only columns with each other."""),
    ("code", """app = ser.demo.build_demo(predictor, examples=examples)
ser.demo.predict_examples(predictor, examples)"""),
    ("md", """## Try it

Interactively (`launch = True`) the app opens below this cell; from a terminal the same app is
`ser demo --fusion-dir outputs/cpu/fusion/models/fusion_best`. Under papermill `launch` is False and nothing
is served."""),
    ("code", """if launch:
    ser.demo.launch_app(app)"""),
    ("md", """## The report

`REPORT.md` sums the run up for readers without Jupyter: the data, the audio model and the baseline, the
ablation, calibration before/after, the selected model, published numbers beside ours (protocols named) and links
to the executed notebooks. Every figure in it is read from this run's artifacts; stages that did not run say so."""),
    ("code", """report_path = ser.report.write_report(run_dir)
print(report_path)"""),
])
