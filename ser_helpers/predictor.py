"""One utterance in, calibrated fused emotion out: the object the demo (10) and the service load.

    pred = FusionPredictor.load("outputs/cpu/fusion/models/fusion_best")
    pred.predict(audio, sample_rate, language="en", transcript=None)

`load` reads `pipeline.json` (components, feature names, labels, calibration) and the fusion model of
that directory; the audio models, ASR and text components are loaded through
`features.Featurizer.from_components` (lazily, on the first audio prediction), so that directory alone
drives a prediction. A given transcript replaces ASR. A pipeline trained on the corpus's reference (ORACLE)
transcripts recognises new English audio with the bundled Whisper tiny.en (`features.inference_transcriber`).
Taught in notebook 09 (09_select_fusion_best.ipynb: fusion_best loads as a FusionPredictor); it loads what
notebook 07 writes.
"""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

from .common import SERError, read_json
from .fusion import FusionModel, load_fusion_model, temperature_for


def _resolve_components(components: dict, base: Path) -> dict:
    """Paths saved relative to the fusion dir (the copied text4 head, bundled models) -> absolute.
    A value that is not a path inside the fusion dir (a hub id, an absolute path) is kept."""
    comp = copy.deepcopy(components or {})

    def local(value):
        if isinstance(value, str) and value and not Path(value).is_absolute() and (base / value).exists():
            return str((base / value).resolve())
        return value

    for group in ("audio_models", "text_models"):
        comp[group] = {lang: local(src) for lang, src in (comp.get(group) or {}).items()}
    if comp.get("asr"):
        comp["asr"]["model"] = local(comp["asr"].get("model"))
    comp["text4_head"] = local(comp.get("text4_head"))
    return comp


class FusionPredictor:
    """Calibrated late-fusion prediction for one utterance (audio, or a posted feature row)."""

    def __init__(self, fusion_dir: Path, pipeline: dict, model: FusionModel, featurizer=None):
        self.fusion_dir = Path(fusion_dir)
        self.pipeline = pipeline
        self.model = model
        self.labels = list(model.labels)
        self.components = _resolve_components(pipeline.get("components") or {}, self.fusion_dir)
        self.default_language = self.components.get("default_language") or "en"
        self._featurizer = featurizer

    @classmethod
    def load(cls, fusion_dir, featurizer=None) -> "FusionPredictor":
        """Load from a train-late-fusion output dir (e.g. fusion_best/). `featurizer` overrides the components."""
        fusion_dir = Path(fusion_dir)
        pj = fusion_dir / "pipeline.json"
        if not pj.exists():
            raise SERError(f"{pj}: not found; FusionPredictor needs a train-late-fusion output dir")
        pipeline = read_json(pj)
        model = load_fusion_model(fusion_dir, expected_feature_names=pipeline.get("feature_names"))
        if pipeline.get("labels") and list(pipeline["labels"]) != model.labels:
            raise SERError(f"{pj}: labels {pipeline['labels']} differ from the model's {model.labels}")
        return cls(fusion_dir, pipeline, model, featurizer)

    @property
    def featurizer(self):
        if self._featurizer is None:
            from . import features  # the stage-06 module: loads audio models, ASR, text components
            self._featurizer = features.Featurizer.from_components(self.components)
        return self._featurizer

    # ------------------------------------------------------------------ prediction
    def predict(self, audio, sample_rate: int, language: str | None = None, transcript: str | None = None) -> dict:
        """Audio array (any rate, mono or stereo, float or int) -> the INTERFACES.md prediction dict."""
        from .audio import prepare_array
        wav = prepare_array(np.asarray(audio), sample_rate, name="<input audio>")
        lang = (language or self.default_language).lower()
        if lang not in ("en", "zh"):
            raise SERError(f"language {language!r} is not supported (expected 'en' or 'zh')")
        if transcript is None or not str(transcript).strip():
            asr = self.featurizer.transcribe(wav, lang)
            transcript = asr.get("text", "") if isinstance(asr, dict) else (asr or "")
        row = dict(self.featurizer.row(wav, lang, transcript=transcript))
        row.setdefault("transcript", transcript)
        row.setdefault("language", lang)
        return self.predict_features(row, language=lang)

    def predict_features(self, row: dict, language: str | None = None) -> dict:
        """A feature row (the stage-06 columns, e.g. posted to the service) -> the prediction dict."""
        if not isinstance(row, dict):
            raise SERError(f"expected a dict of feature columns, got {type(row).__name__}")
        lang = (language or row.get("language") or
                ("zh" if float(row.get("lang_is_zh", 0) or 0) >= 0.5 else self.default_language))
        probs = self.model.predict_proba([row], [lang])[0]
        k = int(np.argmax(probs))
        audio_probs = self._probs_from(row, "audio_prob_")
        text_probs = self._probs_from(row, "text4_prob_")
        ready = row.get("text4_ready", 1)
        if text_probs is not None and ready is not None and float(ready) < 0.5:
            text_probs = None
        return {"transcript": str(row.get("transcript") or ""), "language": lang, "labels": self.labels,
                "audio_probs": audio_probs, "text_probs": text_probs,
                "fused_probs": {lab: float(p) for lab, p in zip(self.labels, probs)},
                "label": self.labels[k], "confidence": float(probs[k]),
                "temperature": temperature_for(self.model.calibration, lang)}

    def _probs_from(self, row: dict, prefix: str) -> dict | None:
        keys = [f"{prefix}{lab}" for lab in self.labels]
        if not all(k in row and row[k] is not None for k in keys):
            return None
        return {lab: float(row[k]) for lab, k in zip(self.labels, keys)}

    def _inference_asr(self) -> dict | None:
        """What recognises new audio (features.inference_asr_spec), with the engine when it is loaded."""
        from .features import inference_asr_spec
        spec = inference_asr_spec(self.components.get("asr") or {})
        if spec is not None and self._featurizer is not None:
            tr = getattr(self._featurizer, "transcriber", None)
            if getattr(tr, "oracle", False):
                return None  # the bundled weights are missing: reference transcripts only
            spec["engine"] = getattr(tr, "engine", "")
        return spec

    def describe(self) -> dict:
        """What is loaded (for the demo's header and the service's /health)."""
        cal = self.model.calibration
        asr = self.components.get("asr") or {}
        return {"fusion_dir": str(self.fusion_dir.resolve()), "mode": self.model.mode,
                "fusion_arch": self.model.arch.get("type"), "n_members": self.model.arch.get("n_members", 1),
                "labels": self.labels, "n_features": len(self.model.feature_names),
                "calibration_mode": cal.get("mode"), "temperature": cal.get("temperature"),
                "per_language_temperature": cal.get("per_language"),
                "audio_models": self.components.get("audio_models"), "asr": asr,
                "transcripts_oracle": bool(asr.get("oracle", False)),
                "asr_inference": self._inference_asr(),
                "text_models": self.components.get("text_models"), "text4_head": self.components.get("text4_head"),
                "default_language": self.default_language, "components_loaded": self._featurizer is not None}
