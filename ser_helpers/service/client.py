"""A small HTTP client for the service: post_clip, post_raw, get_json, wav_bytes; and requests on a raw socket
(raw_request, chunked_upload), for the bodies an HTTP library will not send: a chunked body of any size, a body
slower or shorter than its Content-Length.

Taught in notebook 05 (05_serve_ser_api.ipynb); used by tests and bench/ (test_hostile.py, bench_soak.py).
"""
from __future__ import annotations

import io
import re
import select
import socket
from pathlib import Path
from typing import Iterable

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


def raw_request(host: str, port: int, head: bytes, body_parts: Iterable[bytes],
                timeout: float = 30.0) -> tuple[int | None, str, int]:
    """Send `head` then the parts of the body on a raw socket; stop sending when the server answers (it may refuse
    a body while it arrives, and close), then read the answer (up to its Content-Length, or the end).
    Returns (status, body text, bytes of body sent)."""
    sock = socket.create_connection((host, port), timeout=timeout)
    sent = 0
    try:
        sock.sendall(head)
        for part in body_parts:
            if select.select([sock], [], [], 0)[0]:
                break  # the server answered (and may close): stop sending
            try:
                sock.sendall(part)
            except (BrokenPipeError, ConnectionResetError, socket.timeout):
                break
            sent += len(part)
        data = b""
        sock.settimeout(timeout)
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data:
                head_part, _, rest = data.partition(b"\r\n\r\n")
                m = re.search(rb"content-length: *(\d+)", head_part, re.I)
                if m and len(rest) >= int(m.group(1)):
                    break
    finally:
        sock.close()
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else None
    return status, data.partition(b"\r\n\r\n")[2].decode("utf-8", "replace"), sent


def multipart_file_head(boundary: str, filename: str = "big.wav") -> bytes:
    """The opening of a multipart body's `file` part (boundary line and part headers)."""
    return (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            f"Content-Type: audio/wav\r\n\r\n").encode()


def chunked_upload(host: str, port: int, total_mb: int, boundary: str = "chunkedupload",
                   timeout: float = 30.0) -> tuple[int | None, str, int]:
    """POST a multipart `file` of `total_mb` MB of zeros to /ser/analyze with Transfer-Encoding: chunked (256 KB
    chunks) on a raw socket, stopping when the server answers. Returns (status, body text, bytes of body sent)."""
    head = (f"POST /ser/analyze HTTP/1.1\r\nHost: {host}\r\nContent-Type: multipart/form-data; "
            f"boundary={boundary}\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    block = b"\0" * (256 * 1024)

    def chunk(data: bytes) -> bytes:
        return b"%x\r\n" % len(data) + data + b"\r\n"

    def parts():
        yield chunk(multipart_file_head(boundary))
        for _ in range(total_mb * 4):
            yield chunk(block)

    return raw_request(host, port, head, parts(), timeout=timeout)
