"""A small HTTP client for the service: post_clip, post_raw, get_json, wav_bytes.

Taught in notebook 05 (05_serve_ser_api.ipynb); used by tests and bench/.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..common import SAMPLE_RATE, SERError


def post_clip(url: str, clip: str | Path | bytes, filename: str = "clip.wav", timeout: float = 120.0,
              **form) -> dict:
    """POST one clip (a path read on THIS side, or bytes) to `{url}/ser/analyze`; the JSON answer (SERError on HTTP errors)."""
    import httpx
    data = Path(clip).read_bytes() if isinstance(clip, (str, Path)) else clip
    if isinstance(clip, (str, Path)):
        filename = Path(clip).name
    fields = {k: str(v) for k, v in form.items() if v is not None}
    resp = httpx.post(f"{url}/ser/analyze", files={"file": (filename, data, "audio/wav")}, data=fields,
                      timeout=timeout)
    if resp.status_code != 200:
        raise SERError(f"/ser/analyze answered {resp.status_code}: {resp.text[:500]}")
    return resp.json()


def wav_bytes(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """A 16-bit PCM wav file of `audio` (at `sample_rate`), in memory."""
    import soundfile as sf
    buf = io.BytesIO()
    sf.write(buf, np.asarray(audio), sample_rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def get_json(url: str, timeout: float = 120.0) -> dict:
    """GET a JSON endpoint (e.g. `{url}/health`); SERError on HTTP errors."""
    import httpx
    resp = httpx.get(url, timeout=timeout)
    if resp.status_code != 200:
        raise SERError(f"GET {url} answered {resp.status_code}: {resp.text[:500]}")
    return resp.json()


def post_raw(url: str, data: bytes, filename: str = "clip.wav", timeout: float = 120.0, **form) -> dict:
    """POST to `{url}/ser/analyze` and return {status, detail or overall} whatever the status (to show errors)."""
    import httpx
    resp = httpx.post(f"{url}/ser/analyze", files={"file": (filename, data, "audio/wav")},
                      data={k: str(v) for k, v in form.items() if v is not None}, timeout=timeout)
    body = resp.json()
    return {"status": resp.status_code, **({"detail": body["detail"]} if "detail" in body else
                                            {"overall": body.get("overall")})}
