"""What a finished training run shows: the model card (best_model/README.md), training plots, the results
table of notebook 03, and the epoch number in the val confusion file names.

Taught in notebook 03 (03_train_wav2vec2.ipynb).
"""
from __future__ import annotations

import math
import os
from pathlib import Path

def epoch_tag(epoch: float) -> int:
    """The N of val_confusion_matrix_epoch{N}.csv: the (1-based) epoch an evaluation falls in."""
    return max(1, math.ceil(float(epoch) - 1e-6))


def model_card(report: dict, labels: list[str]) -> str:
    test = report.get("test_metrics") or {}
    val = report.get("best_val_metrics") or {}
    ci = test.get("macro_f1_ci95")
    ci_txt = f" (95% bootstrap CI {ci[0]:.3f}-{ci[1]:.3f})" if ci else ""
    offline = report["config"].get("base_model_is_random_init")
    what = ("a SMALL wav2vec2 ({:.2f} M parameters) trained FROM SCRATCH (random initialisation, no "
            "self-supervised pretraining) on generated speech. It is a teaching artefact, not a usable emotion "
            "recogniser for real voices.".format(report.get("n_parameters", 0) / 1e6)
            if offline else f"`{report['config']['base_model']}` fine-tuned with a classification head.")
    arch = report["config"].get("architecture") or "Wav2Vec2ForSequenceClassification"
    whisper = arch == "WhisperForAudioClassification"
    if whisper:
        top = report["config"].get("train_top_layers")
        trained = ("the head only (frozen encoder)" if report["config"].get("freeze_encoder") or top == 0 else
                   f"the top {top} encoder layer(s) and the head" if top is not None else "the whole encoder and the head")
        what = (f"the PRETRAINED encoder of OpenAI Whisper `{report['config']['base_model']}` (speech recognition "
                f"pretraining on 680 k hours) with a classification head; fine-tuned here: {trained}. Its input window "
                f"is {report['config'].get('input_window_sec') or 0:g} s (longer clips: mean logits of consecutive "
                "windows in `AudioClassifier`; `pipeline()` scores the first window).")
    serving = (
        "This project's service (`ser serve`, `ser_helpers.service`) loads models through `AudioClassifier` and "
        "serves wav2vec2-family classifiers, Whisper-encoder classifiers and the MFCC baseline. "
        + ("A service that loads only `Wav2Vec2ForSequenceClassification` (such as the original production "
           "service) can NOT serve this `WhisperForAudioClassification`: use this project's service or extend yours."
           if whisper else "A service that loads only `Wav2Vec2ForSequenceClassification` (such as the original "
           "production service) can serve this model as is."))
    lines = [
        f"# Speech emotion recognition: {'Whisper-encoder' if whisper else 'wav2vec2'} sequence classifier "
        f"(`{arch}`)", "",
        f"What it is: {what}", "",
        "## Data and split",
        f"- train: `{report['config']['train_manifest']}` ({report['data']['train']['n']} clips)",
        f"- val: `{report['config']['val_manifest']}` ({report['data']['val']['n']} clips; early stopping and "
        "model selection)",
        f"- test: `{report['config'].get('test_manifest') or '-'}` "
        f"({report['data'].get('test', {}).get('n', 0)} clips; used once, after training)",
        "- Splits are speaker-independent (held-out sessions/speakers), as prepared by the manifest stage.", "",
        "## Labels", f"`id2label` = {dict(enumerate(labels))} (IEMOCAP codes: ang angry, hap happy(+excited), "
        "neu neutral, sad sad).", "",
        "## Metrics",
        f"- best epoch {report.get('best_epoch')}: val macro-F1 {val.get('macro_f1', float('nan')):.3f}, "
        f"UA {val.get('ua', float('nan')):.3f}, WA {val.get('accuracy', float('nan')):.3f}",
    ]
    if test:
        lines.append(f"- test: macro-F1 {test['macro_f1']:.3f}{ci_txt}, UA {test['ua']:.3f}, "
                     f"WA {test['accuracy']:.3f}, ECE {test['ece']:.3f}")
    lines += [
        "", "## How to use",
        "```python\nfrom ser_helpers.inference import AudioClassifier\nclf = AudioClassifier.load(\"best_model\")\n"
        "probs = clf.predict_proba([wave_16k_float32])\n```",
        "It also loads with `AutoModelForAudioClassification` and `pipeline(\"audio-classification\")` "
        + ("(every clip is padded to the fixed window, so batching changes nothing)." if whisper else
           "(one clip at a time there: batched zero padding changes group-norm wav2vec2 outputs)."), "",
        "## Serving", serving, "",
        "## Limits",
        "- Four acted/generated emotion categories only; real emotions are blended, culture- and "
        "context-dependent, and often not expressed in the voice at all.",
        "- Trained on the speakers, languages, recording conditions and durations of its data; expect it to "
        "fail on other microphones, noise, accents, languages and spontaneous speech.",
        f"- Clips are cut to {report['config']['max_duration_sec']:g} s.", "",
        "## Ethical caveats",
        "Inferring emotion from someone's voice is an inference about their inner state that can be wrong and "
        "that people often have not consented to. Do not use it to make decisions about people (hiring, "
        "policing, credit, health, education), always disclose its use, let people opt out, and treat its "
        "output as a noisy signal, never as ground truth. Accuracy differs across groups of speakers.", "",
    ]
    return "\n".join(lines)


def make_training_plots(output_dir: str | os.PathLike, report: dict | None = None) -> list[Path]:
    """training_curves.png (train loss, val macro-F1, val UA), val/test confusion heatmaps."""
    import matplotlib.pyplot as plt

    from .. import plots
    from ..common import read_json
    output_dir = Path(output_dir)
    report = report or read_json(output_dir / "train_report.json")
    out = [output_dir / "training_curves.png"]
    fig = plots.training_curves(report["history"], out[0], keys=("train_loss", "val_macro_f1", "val_ua"),
                                title="wav2vec2 training")
    plt.close(fig)
    best = report.get("best_epoch")
    if best is not None and report.get("best_val_metrics"):
        cm_csv = output_dir / f"val_confusion_matrix_epoch{epoch_tag(best)}.csv"
        if cm_csv.exists():
            import pandas as pd
            cm = pd.read_csv(cm_csv).drop(columns=["true_label"]).to_numpy()
            out.append(output_dir / "val_confusion_matrix_best.png")
            plt.close(plots.confusion_heatmap(cm, report["labels"], out[-1],
                                              title=f"val confusion (best epoch {best:g})"))
    if report.get("test_metrics"):
        out.append(output_dir / "test_confusion_matrix.png")
        plt.close(plots.confusion_heatmap(report["test_metrics"]["confusion_matrix"], report["labels"], out[-1],
                                          title="test confusion (best model)"))
    return out


def show_training_plots(output_dir: str | os.PathLike) -> list[Path]:
    """(Re)draw the training plots of a finished run and show them inline in a notebook."""
    paths = make_training_plots(output_dir)
    try:
        from IPython.display import Image, display
        for p in paths:
            display(Image(filename=str(p)))
    except ImportError:  # pragma: no cover
        pass
    return paths


def results_table(report: dict):
    """Best-epoch validation, test and majority-baseline metrics of a train_report as a small DataFrame."""
    import pandas as pd
    rows = {"val (best epoch)": report.get("best_val_metrics", {})}
    test = report.get("test_metrics")
    if test:
        rows["test (best model)"] = test
        rows["test: majority baseline"] = test.get("majority_baseline", {})
    cols = ["macro_f1", "ua", "accuracy", "ece"]
    return pd.DataFrame({name: {c: m.get(c) for c in cols} for name, m in rows.items()}).T
