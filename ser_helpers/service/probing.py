"""Refusing audio from its header alone: `probe` reads what libsndfile says (sample rate, channels, frames),
`check_header` refuses an implausible rate or channel count, zero frames or a length over the limit, and
`peek_refusal` does so from the first MB of a raw multipart body, before the form parser and the queue, so a
hostile header is refused in milliseconds even under load.

Taught in notebook 05 (05_serve_ser_api.ipynb).
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass

from .errors import RequestError, echo

MIN_SAMPLE_RATE = 4000
MAX_SAMPLE_RATE = 192000
MAX_CHANNELS = 64
UNKNOWN_FRAMES = 1 << 62         # libsndfile reports SF_COUNT_MAX when the header has no length
PEEK_BYTES = 1 << 20
# formats whose header gives the length, so it holds for a part cut at PEEK_BYTES too
LENGTH_IN_HEADER_FORMATS = ("WAV", "WAVEX", "FLAC", "AIFF", "W64", "RF64", "CAF")


@dataclass(frozen=True)
class Header:
    samplerate: int
    channels: int
    frames: int | None          # None: the header does not say (e.g. a FLAC written to a pipe)
    format: str
    subtype: str


def _clean(msg: str) -> str:
    """libsndfile's error message without the object address and file name, in the words of an upload."""
    msg = re.sub(r"<_io\.BytesIO object at 0x[0-9a-fA-F]+>", "the upload", msg)
    msg = re.sub(r"^Error opening (the upload|[^:]*): ", "", msg).strip()
    if msg.startswith("File does not exist or is not a regular file"):  # libsndfile's words for a bad stream
        msg = "not a recognised or complete audio stream"
    return msg


def undecodable(name: str, exc: Exception) -> RequestError:
    """The 400 for audio libsndfile cannot open or read."""
    return RequestError(400, f"{name}: cannot decode audio ({_clean(str(exc)) or exc.__class__.__name__})")


def probe(sf_file) -> Header:
    frames = int(sf_file.frames)
    return Header(int(sf_file.samplerate), int(sf_file.channels),
                  frames if 0 <= frames < UNKNOWN_FRAMES else None, str(sf_file.format), str(sf_file.subtype))


def check_header(h: Header, name: str, max_duration_sec: float | None) -> None:
    """Refuse from the header alone: implausible sample rate or channel count, zero or too many frames."""
    if not MIN_SAMPLE_RATE <= h.samplerate <= MAX_SAMPLE_RATE:
        raise RequestError(400, f"{name}: sample rate {h.samplerate} Hz is outside the supported range "
                                f"{MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz")
    if not 1 <= h.channels <= MAX_CHANNELS:
        raise RequestError(400, f"{name}: {h.channels} channels; at most {MAX_CHANNELS} are supported")
    if h.frames == 0:
        raise RequestError(400, f"{name}: audio is empty (zero samples)")
    if h.frames is not None and max_duration_sec is not None and h.frames / h.samplerate > max_duration_sec:
        raise RequestError(413, f"{name}: audio is {h.frames / h.samplerate:.1f} s long, over the limit of "
                                f"{max_duration_sec:g} s")


def _file_part(body: bytes, content_type: str) -> tuple[str, bytes, bool] | None:
    """(the upload's name for messages, the first PEEK_BYTES of its data, cut there?) of the multipart part named
    `file` in a raw body; None when the body is not multipart or has no such part."""
    m = re.search(r'boundary="?([^";]+)"?', content_type or "")
    if not m or "multipart/form-data" not in (content_type or "").lower():
        return None
    start = body.find(b'name="file"')
    if start < 0:
        return None
    head_end = body.find(b"\r\n\r\n", start)
    if head_end < 0:
        return None
    disposition = body[body.rfind(b"\r\n", 0, start) + 2:body.find(b"\r\n", start)]
    fm = re.search(rb'filename="([^"]*)"', disposition)
    name = f"upload {echo(fm.group(1).decode('utf-8', 'replace'))}" if fm else "upload"
    payload = body[head_end + 4:head_end + 4 + PEEK_BYTES]
    end = payload.find(b"\r\n--" + m.group(1).encode("latin-1"))
    return (name, payload[:end], False) if end >= 0 else (name, payload, True)


def peek_refusal(body: bytes, content_type: str, max_duration_sec: float | None) -> RequestError | None:
    """Probe the audio header of the multipart part named `file` in a raw body (no form parsing, no queue):
    the refusal `check_header` gives from the first MB of the part, or None (also when nothing can be said;
    the full decode then decides). Lets a hostile header be refused in milliseconds even under load."""
    import soundfile as sf
    part = _file_part(body, content_type)
    if part is None:
        return None
    name, payload, cut = part
    try:
        with sf.SoundFile(io.BytesIO(payload)) as f:
            h = probe(f)
    except Exception:  # noqa: BLE001 - not enough to say anything: the full decode reports it
        return None
    if cut and h.format not in LENGTH_IN_HEADER_FORMATS:
        h = Header(h.samplerate, h.channels, None, h.format, h.subtype)  # a cut stream: its length means nothing
    try:
        check_header(h, name, max_duration_sec)
    except RequestError as exc:
        return exc
    return None
