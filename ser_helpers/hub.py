"""Hub models a profile names, found before anything runs (taught in notebook 03's "Which base model?" and the
README's GPU section): which stage loads which model id, the architecture recorded for it in
`configs/hub_configs/` (no weights), and the offline preflight of `ser pipeline`: a model that is neither cached
nor downloadable stops the run before any stage, in one line naming the id, the stage and the local alternative.
`ser_helpers.pipeline` and `ser_helpers.dryrun` both use it.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from .common import SERError

HUB_CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "hub_configs"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
#: parameters whose value names a model to download (hub id, or a whisper model name)
MODEL_PARAMS = ("base_model", "whisper_model", "text_model_en", "text_model_zh")


# ----------------------------------------------------------------------------- the recorded configs
def _is_whisper_name(value: str) -> bool:
    import whisper
    return value in whisper.available_models()


def model_refs(profile) -> list[dict]:
    """Every downloadable model a profile names: [{stage, param, id, kind}] (kind wav2vec2|whisper|text)."""
    out = []
    for stage in profile.stages:
        for key, value in stage.parameters.items():
            if not isinstance(value, str) or not value.strip():
                continue
            if key == "whisper_model" and _is_whisper_name(value):
                out.append({"stage": stage.name, "param": key, "id": f"openai-whisper/{value}", "kind": "whisper"})
            elif (key in MODEL_PARAMS or key.endswith("_model")) and HUB_ID.match(value) and not Path(value).exists():
                kind = "wav2vec2" if key == "base_model" else "text"
                out.append({"stage": stage.name, "param": key, "id": value, "kind": kind})
    return out


def recorded_config(model_id: str) -> dict:
    """The recorded config.json of a hub id (configs/hub_configs/<id>/config.json); SERError when missing."""
    path = HUB_CONFIGS / model_id / "config.json"
    if not path.exists():
        raise SERError(f"{model_id}: no recorded architecture at {path}; record its config.json (no weights) "
                       f"there, with its source in {HUB_CONFIGS / 'sources.json'}")
    return json.loads(path.read_text(encoding="utf-8"))


def count_parameters(model) -> int:
    return int(sum(p.numel() for p in model.parameters()))


# ----------------------------------------------------------------------------- offline preflight
def _whisper_cached(name: str) -> bool:
    root = os.path.join(os.getenv("XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache")), "whisper")
    return os.path.exists(os.path.join(root, f"{name}.pt"))


def model_unavailable(ref: dict, timeout: float = 5.0) -> str | None:
    """Why a model named by a profile cannot be had here (None when it is cached or the hub answers)."""
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}
    if ref["kind"] == "whisper":
        name = ref["id"].split("/", 1)[1]
        if _whisper_cached(name):
            return None
        import urllib.request

        import whisper
        try:
            urllib.request.urlopen(urllib.request.Request(whisper._MODELS[name], method="HEAD"), timeout=timeout)
            return None
        except Exception as exc:  # noqa: BLE001 - no network, DNS, proxy ...
            return f"not in the whisper cache and its download URL is unreachable ({exc.__class__.__name__})"
    from huggingface_hub import try_to_load_from_cache
    if isinstance(try_to_load_from_cache(ref["id"], "config.json"), str):
        return None
    if offline:
        return "not in the Hugging Face cache and HF_HUB_OFFLINE is set"
    try:
        from huggingface_hub import model_info
        model_info(ref["id"], timeout=timeout)
        return None
    except Exception as exc:  # noqa: BLE001
        return f"not in the Hugging Face cache and the hub did not answer ({exc.__class__.__name__})"


def preflight_models(profile, stage_names=None) -> None:
    """Before any stage runs: every hub model the (selected) stages name must be cached or downloadable; else one
    line naming the id, the stage and the offline alternatives."""
    for ref in model_refs(profile):
        if stage_names is not None and ref["stage"] not in stage_names:
            continue
        why = model_unavailable(ref)
        if why:
            local = ("a local openai-whisper checkpoint file (.pt)" if ref["kind"] == "whisper"
                     else "a local model directory (save_pretrained layout)")
            fetch = (f"python -c \"import whisper; whisper.load_model('{ref['id'].split('/', 1)[1]}')\""
                     if ref["kind"] == "whisper" else f"huggingface-cli download {ref['id']}")
            name = ref["id"].split("/", 1)[1] if ref["kind"] == "whisper" else ref["id"]
            raise SERError(f"stage {ref['stage']!r}: {ref['param']} {name!r} is unavailable ({why}); set "
                           f"{ref['param']} to {local}, download it where there is network (`{fetch}`), or check the profile offline with `ser pipeline --dry-run`")
