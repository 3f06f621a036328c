"""Gradio demo of the calibrated fusion model (notebook 10, `ser demo`).

The app is a thin shell around one function, `analyze(predictor, audio, language, transcript)`,
which the notebook (headless), the tests and the Gradio callback all call. The predictor is any
object with the `FusionPredictor` interface (`predict(audio, sample_rate, language=None,
transcript=None) -> dict`, `describe()`), so tests can inject a small fake one.

Safety defaults: binds 127.0.0.1, `share=False`, uploads limited to `MAX_FILE_SIZE`, Gradio
analytics off. Bad input (unreadable, silent, too short, too long) becomes a readable `gr.Error`.
Taught in notebook 10 (10_gradio_demo).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import audio as audio_io
from .common import LABELS, SAMPLE_RATE, SERError, display_name, read_json
from .layout import RunLayout

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

log = logging.getLogger(__name__)

#: choices of the language radio -> language code passed to the predictor (None = auto)
LANGUAGE_CHOICES: dict[str, str | None] = {"auto": None, "English": "en", "Mandarin": "zh"}
LANGUAGE_NAMES = {"en": "English", "zh": "Mandarin"}
MIN_DURATION_SEC = 0.3
MAX_DURATION_SEC = 30.0
MAX_FILE_SIZE = "10mb"
DEFAULT_HOST = "127.0.0.1"

#: elem_ids of the output components (used by the browser test)
ELEM_IDS = {"audio": "ser-audio", "language": "ser-language", "transcript": "ser-transcript",
            "submit": "ser-submit", "fused": "ser-fused", "audio_probs": "ser-audio-probs",
            "text_probs": "ser-text-probs", "details": "ser-details"}


@dataclass
class DemoResult:
    """One analysed clip: the predictor's answer plus what the page shows."""
    prediction: dict
    duration_sec: float
    source: str

    @property
    def label(self) -> str:
        return self.prediction["label"]

    def as_row(self) -> dict:
        """A flat row for a table: label, confidence, per-modality probabilities."""
        p = self.prediction
        row = {"clip": Path(self.source).name, "duration_sec": round(self.duration_sec, 2),
               "language": p.get("language"), "transcript": p.get("transcript", ""),
               "label": display_name(p["label"]), "confidence": round(float(p["confidence"]), 4)}
        for kind in ("fused", "audio", "text"):
            probs = p.get(f"{kind}_probs") or {}
            for code in p.get("labels", LABELS):
                row[f"{kind}_{code}"] = round(float(probs[code]), 4) if code in probs else None
        return row


@dataclass
class Example:
    """A clickable example clip: audio path, its true label, language and reference transcript."""
    path: str
    label: str
    language: str | None = None
    transcript: str = ""


# ----------------------------------------------------------------------------- input handling
def to_waveform(value: Any, min_duration_sec: float = MIN_DURATION_SEC,
                max_duration_sec: float = MAX_DURATION_SEC) -> tuple[np.ndarray, str]:
    """Gradio audio value -> (16 kHz mono float32, name). Accepts a file path (upload, type=filepath),
    a `(sample_rate, array)` tuple (microphone / type=numpy: 48 kHz stereo int16), or a dict with `path`."""
    if value is None:
        raise audio_io.AudioError("no audio: upload a file or record with the microphone first")
    if isinstance(value, dict) and value.get("path"):
        value = value["path"]
    if isinstance(value, (str, os.PathLike)):
        name = str(value)
        try:
            wav = audio_io.load_audio(name, max_duration_sec=max_duration_sec, min_duration_sec=min_duration_sec)
        except audio_io.AudioError as exc:  # the page shows the file's name, not Gradio's temp path
            raise audio_io.AudioError(str(exc).replace(name, Path(name).name)) from None
        return wav, Path(name).name
    if isinstance(value, (tuple, list)) and len(value) == 2:
        sr, data = value
        wav = audio_io.prepare_array(np.asarray(data), int(sr), name="microphone recording",
                                     max_duration_sec=max_duration_sec, min_duration_sec=min_duration_sec)
        return wav, "microphone recording"
    raise audio_io.AudioError(f"unsupported audio value of type {type(value).__name__}; "
                              "expected a file path or (sample_rate, samples)")


def language_code(choice: str | None) -> str | None:
    """'auto' / 'English' / 'Mandarin' (or a code) -> None / 'en' / 'zh'."""
    if choice in (None, ""):
        return None
    if choice in LANGUAGE_CHOICES:
        return LANGUAGE_CHOICES[choice]
    if choice in ("en", "zh"):
        return choice
    raise SERError(f"unknown language choice {choice!r}; expected one of {list(LANGUAGE_CHOICES)}")


def detect_language(predictor, wav: np.ndarray) -> str | None:
    """'en' or 'zh' from Whisper's language detection when the predictor's ASR is a real Whisper model
    (restricted to the two languages the models know); None otherwise (the predictor's default applies)."""
    asr = (getattr(predictor, "components", None) or {}).get("asr") or {}
    transcriber = getattr(getattr(predictor, "featurizer", None), "transcriber", None)
    if hasattr(transcriber, "detect_language"):  # faster-whisper (None for an English-only model)
        return transcriber.detect_language(wav)
    if str(asr.get("backend", "")).lower() != "whisper":
        return None
    model = getattr(transcriber, "model", None)
    if model is None or not hasattr(model, "detect_language"):
        return None
    import torch
    import whisper
    clip = whisper.pad_or_trim(torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32)))
    mel = whisper.log_mel_spectrogram(clip, n_mels=model.dims.n_mels).to(model.device)
    with torch.no_grad():
        _, probs = model.detect_language(mel)
    return "zh" if probs.get("zh", 0.0) > probs.get("en", 0.0) else "en"


def analyze(predictor, audio_value: Any, language: str | None = "auto", transcript: str | None = None,
            min_duration_sec: float = MIN_DURATION_SEC, max_duration_sec: float = MAX_DURATION_SEC) -> DemoResult:
    """Run the predictor on one clip. An empty `transcript` means: let the predictor transcribe;
    a typed one replaces the ASR output (the editable box of the demo)."""
    wav, name = to_waveform(audio_value, min_duration_sec, max_duration_sec)
    text = (transcript or "").strip() or None
    lang = language_code(language)
    if lang is None:
        lang = detect_language(predictor, wav)
    pred = predictor.predict(wav, SAMPLE_RATE, language=lang, transcript=text)
    return DemoResult(prediction=pred, duration_sec=wav.size / SAMPLE_RATE,
                      source=str(audio_value if isinstance(audio_value, (str, os.PathLike)) else name))


def recognise(predictor, audio_value: Any, language: str | None = "auto",
              min_duration_sec: float = MIN_DURATION_SEC, max_duration_sec: float = MAX_DURATION_SEC) -> str | None:
    """The predictor's speech recogniser on one clip (what fills an empty transcript box), or None when it has
    none that recognises this language (reference-only pipelines without the bundled weights, Mandarin with
    tiny.en, fake predictors)."""
    featurizer = getattr(predictor, "featurizer", None)
    transcriber = getattr(featurizer, "transcriber", None)
    if transcriber is None or getattr(transcriber, "oracle", True) or \
            getattr(transcriber, "backend", "none") in ("none", "reference"):
        return None
    wav, _ = to_waveform(audio_value, min_duration_sec, max_duration_sec)
    lang = language_code(language) or detect_language(predictor, wav) or getattr(predictor, "default_language", "en")
    if not getattr(transcriber, "recognises", lambda _l: True)(lang):
        return None
    return str(featurizer.transcribe(wav, lang) or "").strip()


def label_value(probs: dict | None) -> dict | None:
    """{code: p} -> {display name: p} for gr.Label (None stays None)."""
    if not probs:
        return None
    return {display_name(code): float(p) for code, p in probs.items()}


def describe_text(predictor, prediction: dict | None = None) -> str:
    """Markdown: temperature, language used and the models loaded (from `predictor.describe()`)."""
    lines = []
    if prediction is not None:
        lang = prediction.get("language")
        temp = prediction.get("temperature")
        lines.append(f"**Language used:** {LANGUAGE_NAMES.get(lang, lang)}  ")
        lines.append("**Calibration temperature:** "
                     + (f"{float(temp):.3f}" if temp is not None else "none (vector scaling)") + "  ")
        if prediction.get("text_probs") is None:
            lines.append("**Text branch:** no transcript, audio evidence only  ")
    info = predictor.describe() if hasattr(predictor, "describe") else None
    if isinstance(info, dict) and "fusion_dir" in info:  # FusionPredictor.describe(): a readable summary
        lines.append("\n**Models loaded**\n")
        lines += [f"- {k}: {v}" for k, v in _fusion_summary(info).items()]
    elif isinstance(info, dict):
        lines.append("\n**Models loaded**\n")
        for key, val in info.items():
            if isinstance(val, dict):
                val = ", ".join(f"{k}: {v}" for k, v in val.items())
            elif isinstance(val, (list, tuple)):
                val = ", ".join(str(v) for v in val)
            lines.append(f"- {key}: {val}")
    elif info:
        lines.append(f"\n**Models loaded**\n\n{info}")
    return "\n".join(lines)


def _short(path) -> str:
    """The last two parts of a model path (`multilingual/best_model`); hub ids unchanged."""
    if not path:
        return "none"
    parts = Path(str(path)).parts
    return "/".join(parts[-2:]) if Path(str(path)).is_absolute() else str(path)


def _fusion_summary(info: dict) -> dict:
    """FusionPredictor.describe() -> a few lines a stakeholder can read."""
    out = {"fusion model": f"{info.get('mode')} ({info.get('fusion_arch')}, {info.get('n_features')} features) "
                           f"from `{_short(info.get('fusion_dir'))}`"}
    cal = info.get("calibration_mode")
    temp = info.get("temperature")
    per = info.get("per_language_temperature")
    out["calibration"] = f"{cal}" + (f", T = {float(temp):.3f}" if temp is not None else "") + (
        f" (per language: {', '.join(f'{k} {float(v):.3f}' for k, v in per.items())})" if per else "")
    audio = info.get("audio_models") or {}
    out["audio model"] = ", ".join(f"{lang}: `{_short(d)}`" for lang, d in audio.items()) if audio else "none"
    asr = info.get("asr") or {}
    live = info.get("asr_inference")
    if info.get("transcripts_oracle") and live:
        out["speech recogniser"] = (f"{live.get('engine') or 'whisper'} `{live.get('model')}` for "
                                    + ", ".join(LANGUAGE_NAMES.get(x, x) for x in live.get("languages") or ["en"])
                                    + " (the model was trained on reference transcripts; other languages: type "
                                      "what was said)")
    else:
        out["speech recogniser"] = (f"{asr.get('backend', 'none')} ({asr.get('model', '')})".replace(" ()", "")
                                    + (": ORACLE reference transcripts, so type what was said" if
                                       info.get("transcripts_oracle") else ""))
    text = {k: v for k, v in (info.get("text_models") or {}).items() if v}
    out["text models"] = (", ".join(f"{k}: `{_short(v)}`" for k, v in text.items()) if text else "none") + (
        f"; 4-class text head `{_short(info.get('text4_head'))}`" if info.get("text4_head") else "")
    out["default language"] = LANGUAGE_NAMES.get(info.get("default_language"), info.get("default_language"))
    return out


def show_markdown(text: str):
    """Markdown rendered in a notebook (plain text elsewhere)."""
    try:
        from IPython.display import Markdown
        return Markdown(text)
    except ImportError:  # pragma: no cover
        return text


# ----------------------------------------------------------------------------- examples
def _example_tables(fusion_dir: Path) -> list[Path]:
    """Candidate test-split tables: pipeline.json pointers, then features/, then manifests/."""
    out: list[Path] = []
    report = Path(fusion_dir) / "train_report.json"  # train-late-fusion records its input feature tables
    if report.exists():
        try:
            test = (read_json(report).get("inputs") or {}).get("test")
        except Exception:  # noqa: BLE001 - a broken report is the predictor's problem, not the examples'
            test = None
        if test:
            out.append(Path(test))
    pipe = Path(fusion_dir) / "pipeline.json"
    if pipe.exists():
        try:
            meta = read_json(pipe)
        except Exception:  # noqa: BLE001 - a broken pipeline.json is reported by the predictor
            meta = {}
        for key in ("test_features", "test_manifest", "test_csv"):
            val = meta.get(key) or (meta.get("data") or {}).get(key)
            if val:
                out.append(Path(val))
    run = RunLayout.of_fusion_model(fusion_dir)
    if run is not None:
        out.append(run.features_csv("test"))
        out += sorted(run.manifests.glob("multilingual*/test.csv"))
        out += sorted(run.manifests.glob("*/test.csv"))
    return [p for p in out if p.exists()]


def examples_from_table(csv_path: str | Path, labels: Sequence[str] = LABELS, per_label: int = 1) -> list[Example]:
    """One (or `per_label`) clip per emotion from a test table (manifest or features CSV), in label order;
    within a label the first rows in file order whose audio exists, languages taking turns over the labels."""
    import pandas as pd
    df = pd.read_csv(csv_path, keep_default_na=False, dtype=str)
    if "path" not in df.columns or "label" not in df.columns:
        raise SERError(f"{csv_path}: needs columns 'path' and 'label' for demo examples; has {list(df.columns)}")
    base = Path(csv_path).resolve().parent
    languages = sorted(set(df["language"]) - {""}) if "language" in df.columns else []
    picked: list[Example] = []
    for i, code in enumerate(labels):
        rows = df[df["label"] == code]
        if len(languages) > 1:  # alternate the languages over the emotions (stable order within each)
            want = languages[i % len(languages)]
            rows = pd.concat([rows[rows["language"] == want], rows[rows["language"] != want]])
        n = 0
        for _, row in rows.iterrows():
            path = Path(row["path"]) if Path(row["path"]).is_absolute() else base / row["path"]
            if not path.exists():
                continue
            picked.append(Example(path=str(path), label=code, language=row.get("language") or None,
                                  transcript=str(row.get("transcript", "") or "")))
            n += 1
            if n >= per_label:
                break
    return picked


def find_examples(fusion_dir: str | Path, labels: Sequence[str] = LABELS) -> list[Example]:
    """One test-split clip per emotion for a fusion model dir (empty list when no table is found)."""
    for table in _example_tables(Path(fusion_dir)):
        ex = examples_from_table(table, labels)
        if ex:
            return ex
    return []


def _as_examples(examples) -> list[Example]:
    out = []
    for ex in examples or []:
        if isinstance(ex, Example):
            out.append(ex)
        elif isinstance(ex, dict):
            out.append(Example(path=str(ex["path"]), label=ex.get("label", ""), language=ex.get("language"),
                               transcript=ex.get("transcript", "") or ""))
        else:
            out.append(Example(path=str(ex), label=""))
    return out


def predict_examples(predictor, examples, language: str = "auto", use_transcripts: bool = True):
    """Run `analyze` on every example (the demo's own function) -> DataFrame, one row per clip."""
    import pandas as pd
    rows = []
    for ex in _as_examples(examples):
        res = analyze(predictor, ex.path, language, ex.transcript if use_transcripts else None)
        row = {"true_label": display_name(ex.label) if ex.label else ""}
        row.update(res.as_row())
        rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- the app
def load_predictor(predictor_or_dir):
    """A predictor object passes through; a directory is loaded with FusionPredictor.load."""
    if isinstance(predictor_or_dir, (str, os.PathLike)):
        path = Path(predictor_or_dir)
        if not path.is_dir():
            raise SERError(f"{path}: fusion model directory not found (run notebooks 07-09 first, "
                           "or pass --fusion-dir)")
        from .predictor import FusionPredictor
        return FusionPredictor.load(path)
    if not hasattr(predictor_or_dir, "predict"):
        raise SERError(f"{type(predictor_or_dir).__name__} is neither a directory nor a predictor with .predict()")
    return predictor_or_dir


def _example_language(ex: Example) -> str:
    return LANGUAGE_NAMES.get(ex.language or "", "auto")


def build_demo(predictor_or_dir, examples=None, title: str = "Speech emotion recognition: calibrated fusion demo",
               min_duration_sec: float = MIN_DURATION_SEC, max_duration_sec: float = MAX_DURATION_SEC,
               warm_up: bool = True):
    """The Gradio Blocks app. `examples`: None -> one test clip per emotion found beside the fusion dir;
    a list of paths / dicts / `Example` otherwise ([] for none)."""
    import gradio as gr

    predictor = load_predictor(predictor_or_dir)
    if warm_up:
        # load the audio/ASR/text components now, in this thread: the first request then answers fast, and
        # lazy library imports never race between Gradio's worker threads
        getattr(predictor, "featurizer", None)
    if examples is None:
        examples = find_examples(predictor_or_dir) if isinstance(predictor_or_dir, (str, os.PathLike)) else []
    examples = _as_examples(examples)

    def on_submit(audio_value, language, transcript):
        try:
            res = analyze(predictor, audio_value, language, transcript, min_duration_sec, max_duration_sec)
        except SERError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        except Exception as exc:  # noqa: BLE001 - the page shows a message, the log keeps the trace
            log.exception("demo prediction failed")
            raise gr.Error(f"Could not analyse this clip ({type(exc).__name__}: {exc})",
                           print_exception=False) from None
        p = res.prediction
        return (p.get("transcript", "") or "", label_value(p["fused_probs"]), label_value(p["audio_probs"]),
                label_value(p.get("text_probs")), describe_text(predictor, p))

    def fill_transcript(audio_value, language, transcript):
        """Step 1 of Analyze: an empty box gets the recognised text (shown before the fused answer)."""
        if (transcript or "").strip() or audio_value is None:
            return transcript
        try:
            text = recognise(predictor, audio_value, language, min_duration_sec, max_duration_sec)
        except SERError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        except Exception as exc:  # noqa: BLE001
            log.exception("demo speech recognition failed")
            raise gr.Error(f"Could not transcribe this clip ({type(exc).__name__}: {exc})",
                           print_exception=False) from None
        return transcript if text is None else text

    def clear_transcript():
        return ""

    with gr.Blocks(title=title, analytics_enabled=False) as app:
        gr.Markdown(f"# {title}\n"
                    "Upload a clip or record one and press **Analyze**. An empty transcript box is filled by "
                    "the speech recogniser (Whisper tiny.en, English), then the clip is analysed; the box stays "
                    "editable: correct or type what was said (Mandarin) and press **Analyze** again. "
                    "The fused emotion is calibrated (temperature scaling); the audio-only and text-only "
                    "probabilities show what each modality contributed.")
        with gr.Row():
            with gr.Column(scale=1):
                audio_in = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Speech clip",
                                    elem_id=ELEM_IDS["audio"])
                language_in = gr.Radio(list(LANGUAGE_CHOICES), value="auto", label="Language",
                                       elem_id=ELEM_IDS["language"])
                transcript_box = gr.Textbox(label="Transcript (editable; empty = automatic)", lines=2,
                                            interactive=True, elem_id=ELEM_IDS["transcript"])
                submit = gr.Button("Analyze", variant="primary", elem_id=ELEM_IDS["submit"])
                if examples:
                    gr.Examples([[ex.path, _example_language(ex), ex.transcript] for ex in examples],
                                [audio_in, language_in, transcript_box],
                                label="Test-split clips, one per emotion (click, then Analyze)",
                                example_labels=[f"{display_name(ex.label)} · {Path(ex.path).name}" for ex in examples])
            with gr.Column(scale=1):
                fused_out = gr.Label(label="Emotion (calibrated fusion)", num_top_classes=len(LABELS),
                                     elem_id=ELEM_IDS["fused"])
                with gr.Row():
                    audio_out = gr.Label(label="Audio only", num_top_classes=len(LABELS),
                                         elem_id=ELEM_IDS["audio_probs"])
                    text_out = gr.Label(label="Text only", num_top_classes=len(LABELS),
                                        elem_id=ELEM_IDS["text_probs"])
                details = gr.Markdown(describe_text(predictor), elem_id=ELEM_IDS["details"])
        inputs = [audio_in, language_in, transcript_box]
        outputs = [transcript_box, fused_out, audio_out, text_out, details]
        submit.click(fill_transcript, inputs, transcript_box, api_visibility="private").success(
            on_submit, inputs, outputs, api_name="predict")
        transcript_box.submit(on_submit, inputs, outputs, api_visibility="private")
        # a new recording/upload must be transcribed afresh (examples set the transcript themselves)
        for event in (audio_in.upload, audio_in.stop_recording, audio_in.clear):
            event(clear_transcript, None, transcript_box, api_visibility="private")
    app.ser_predictor = predictor
    app.ser_examples = examples
    return app


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
        return get_ipython() is not None and "IPKernelApp" in get_ipython().config
    except Exception:  # noqa: BLE001
        return False


def launch_app(app, host: str = DEFAULT_HOST, port: int | None = None, share: bool = False,
               block: bool | None = None, max_file_size: str | int = MAX_FILE_SIZE, **kwargs):
    """Launch a built app (loopback, no public link unless `share`, uploads capped at `max_file_size`).
    Blocks in a terminal; in a notebook it shows the app inline and returns. Returns the app."""
    if block is None:
        block = not _in_notebook()
    app.launch(server_name=host, server_port=port, share=share, max_file_size=max_file_size,
               prevent_thread_lock=not block, quiet=not block, **kwargs)
    return app


def launch_demo(fusion_dir, host: str = DEFAULT_HOST, port: int | None = None, share: bool = False,
                examples=None, block: bool | None = None, max_file_size: str | int = MAX_FILE_SIZE, **kwargs):
    """Build the app for `fusion_dir` (or a predictor object) and launch it (see `launch_app`)."""
    app = build_demo(fusion_dir, examples=examples)
    return launch_app(app, host=host, port=port, share=share, block=block, max_file_size=max_file_size, **kwargs)


# ----------------------------------------------------------------------------- CLI
def register_cli(subparsers) -> None:
    p = subparsers.add_parser("demo", help="launch the Gradio demo of the calibrated fusion model")
    p.add_argument("--fusion-dir", required=True, help="fusion model dir, e.g. outputs/cpu/fusion/models/fusion_best")
    p.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=None, help="port (default: Gradio picks a free one from 7860)")
    p.add_argument("--share", action="store_true", help="also create a public gradio.live link (off by default)")
    p.set_defaults(func=_cmd_demo)


def _cmd_demo(args) -> int:
    launch_demo(args.fusion_dir, host=args.host, port=args.port, share=args.share, block=True)
    return 0
