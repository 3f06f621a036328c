"""Admission control for the SER service: bounded memory, bounded work and a clear answer for every request.

Taught in notebook 05 (the HTTP service); used by `ser_helpers.service` (issue 12). The pieces:

* `AdmissionMiddleware` (pure ASGI, in front of POST /ser/analyze, /asr/transcribe, /warmup):
  refuses a body over the limit from its Content-Length, and counts the bytes of a chunked body as they
  arrive (refused after at most limit + one network chunk, before anything reaches the form parser or the
  disk); keeps a bounded queue (`SER_WORKERS` running + `SER_MAX_QUEUE` waiting, then 503 + Retry-After);
  gives each request a deadline (`SER_REQUEST_TIMEOUT_SEC`, `SER_BODY_TIMEOUT_SEC` for the upload itself)
  and watches the connection so that the work of a client that has gone is dropped.
* `Ticket` / `checkpoint()`: the request's deadline and cancel flag, visible in the worker thread through a
  context variable; the service calls `checkpoint()` between decode blocks and inference batches.
* `decode_upload`: probes the header (sample rate 4-192 kHz, 1-64 channels, frame count against the
  duration limit) before decoding, then decodes block by block (downmix + streaming resample to 16 kHz), so
  an unknown length (a FLAC written to a pipe) is read up to the limit and memory is bounded by the 16 kHz
  output; every decode reserves its bytes from one total budget (`SER_DECODE_BUDGET_MB`). Loud float audio
  is scaled by its peak in float64.
* `check_analysed` caps the audio one request asks the model to hear (sum of segment lengths <= 2x the clip).
* `echo` clips any user value quoted in an error to about 80 characters; `ensure_finite` turns a non-finite
  number in an answer into a 422 instead of a JSON encoding failure.
"""
from __future__ import annotations

import asyncio
import contextlib
import contextvars
import io
import json
import math
import os
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np

from ..common import SAMPLE_RATE, SERError

ECHO_CHARS = 80
MIN_SAMPLE_RATE = 4000
MAX_SAMPLE_RATE = 192000
MAX_CHANNELS = 64
ANALYSED_FACTOR = 2.0            # sum of segment lengths <= this x the clip (one segment always allowed)
UNKNOWN_FRAMES = 1 << 62         # libsndfile reports SF_COUNT_MAX when the header has no length
BLOCK_SAMPLES = 1 << 20          # samples (frames x channels) decoded per block
MULTIPART_OVERHEAD_BYTES = 256 * 1024
GUARDED_PATHS = ("/ser/analyze", "/asr/transcribe", "/warmup")
INFERENCE_CHUNK = 32             # segments per model call between checkpoints (a multiple of the batch size)
MAX_CALL_SAMPLES = 8 * 15 * SAMPLE_RATE  # audio per model call (8 x 15 s, as in evaluation); longer segments: fewer per call


# ----------------------------------------------------------------------------- errors and echoes
class RequestError(SERError):
    """A request the service answers with an HTTP error (status + message, optional headers)."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.headers = dict(headers or {})


def echo(value: Any, limit: int = ECHO_CHARS) -> str:
    """repr() of a user value, clipped to about `limit` characters (the length is said when clipped)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    size = len(value) if isinstance(value, (str, bytes)) else len(text)
    return f"{text[:limit]}... ({size} characters)"


def ensure_finite(obj: Any, where: str = "answer") -> None:
    """RequestError 422 naming the first non-finite number in a JSON-bound object."""
    def walk(o, path):
        if isinstance(o, Mapping):
            for k, v in o.items():
                walk(v, f"{path}.{k}")
        elif isinstance(o, (list, tuple)):
            for i, v in enumerate(o):
                walk(v, f"{path}[{i}]")
        elif isinstance(o, (float, np.floating)) and not math.isfinite(float(o)):
            raise RequestError(422, f"the {where} holds a non-finite value at {path[1:]}; the input cannot be "
                                    f"analysed (check the audio and the posted text features)")
    walk(obj, "")


def is_finite_tree(obj: Any) -> bool:
    try:
        ensure_finite(obj)
    except RequestError:
        return False
    return True


# ----------------------------------------------------------------------------- settings
def _env_number(env: Mapping[str, str], var: str, default, cast, minimum):
    raw = env.get(var)
    if raw is None or str(raw).strip() == "":
        return default
    try:
        value = cast(str(raw).strip())
    except ValueError:
        raise SERError(f"{var}={echo(raw)} is not a number") from None
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= minimum):
        raise SERError(f"{var}={echo(raw)} must be a number >= {minimum}")
    return value


@dataclass(frozen=True)
class AdmissionSettings:
    """The admission knobs (environment names in brackets)."""
    workers: int = 2                    # SER_WORKERS: requests processed at once
    max_queue: int = 8                  # SER_MAX_QUEUE: requests waiting; more -> 503 + Retry-After
    request_timeout_sec: float = 300.0  # SER_REQUEST_TIMEOUT_SEC: deadline from arrival to answer
    body_timeout_sec: float = 60.0      # SER_BODY_TIMEOUT_SEC: the upload must arrive within this
    decode_budget_mb: float = 512.0     # SER_DECODE_BUDGET_MB: decoding memory of all requests together

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "AdmissionSettings":
        env = os.environ if env is None else env
        return cls(workers=_env_number(env, "SER_WORKERS", cls.workers, int, 1),
                   max_queue=_env_number(env, "SER_MAX_QUEUE", cls.max_queue, int, 0),
                   request_timeout_sec=_env_number(env, "SER_REQUEST_TIMEOUT_SEC", cls.request_timeout_sec, float, 0.1),
                   body_timeout_sec=_env_number(env, "SER_BODY_TIMEOUT_SEC", cls.body_timeout_sec, float, 1),
                   decode_budget_mb=_env_number(env, "SER_DECODE_BUDGET_MB", cls.decode_budget_mb, float, 16))


# ----------------------------------------------------------------------------- tickets (deadline + cancel)
class Ticket:
    """One admitted request: its deadline and whether its client has gone."""

    def __init__(self, deadline: float, timeout_sec: float):
        self.deadline = deadline
        self.timeout_sec = timeout_sec
        self._gone = threading.Event()

    def cancel(self) -> None:
        self._gone.set()

    @property
    def cancelled(self) -> bool:
        return self._gone.is_set()

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def check(self) -> None:
        if self._gone.is_set():
            raise RequestError(499, "the client closed the connection; the work was dropped")
        if time.monotonic() > self.deadline:
            raise RequestError(503, f"the request took longer than its deadline of {self.timeout_sec:g} s "
                                    f"(SER_REQUEST_TIMEOUT_SEC); retry later or send a shorter clip",
                               headers={"Retry-After": "10"})


_ticket: contextvars.ContextVar[Ticket | None] = contextvars.ContextVar("ser_admission_ticket", default=None)


def checkpoint() -> None:
    """Stop the current request's work if its client has gone or its deadline passed (no-op outside requests)."""
    ticket = _ticket.get()
    if ticket is not None:
        ticket.check()


def predict_in_chunks(predict, clips: list[np.ndarray], n_labels: int | None = None,
                      chunk: int = INFERENCE_CHUNK, max_call_samples: int = MAX_CALL_SAMPLES) -> np.ndarray:
    """`predict(clips)` in chunks with a checkpoint before each; the chunks follow the classifier's own
    length order (stable sort, `chunk` a multiple of its batch size), so the batches and the numbers are the
    ones a single call gives. Segments so long that `chunk` of them would exceed `max_call_samples` go in
    calls of fewer (so one batch of 60 s segments cannot take gigabytes of attention memory)."""
    n = len(clips)
    longest = max((len(c) for c in clips), default=0)
    if longest * min(chunk, 8) > max_call_samples:
        chunk = max(1, max_call_samples // max(1, longest))
    order = np.argsort([len(c) for c in clips], kind="stable")
    out = None
    for i in range(0, n, chunk):
        checkpoint()
        idx = order[i:i + chunk]
        probs = np.asarray(predict([clips[j] for j in idx]), dtype=float)
        if out is None:
            out = np.zeros((n, probs.shape[1]), dtype=float)
        out[idx] = probs
    checkpoint()
    return out if out is not None else np.zeros((0, n_labels or 0))


# ----------------------------------------------------------------------------- decode memory budget
class DecodeBudget:
    """Bytes of decoding memory shared by all requests; a decode waits (within its deadline) for its share."""

    def __init__(self, total_bytes: int):
        self.total = int(total_bytes)
        self.used = 0
        self.peak = 0
        self._cond = threading.Condition()

    @contextlib.contextmanager
    def reserve(self, nbytes: int, name: str = "upload"):
        nbytes = int(nbytes)
        if nbytes > self.total:
            raise RequestError(413, f"{name}: decoding it needs about {nbytes / 1048576:.0f} MB, over the decode "
                                    f"budget of {self.total / 1048576:.0f} MB (SER_DECODE_BUDGET_MB)")
        with self._cond:
            while self.used + nbytes > self.total:
                checkpoint()
                self._cond.wait(timeout=0.1)
            self.used += nbytes
            self.peak = max(self.peak, self.used)
        try:
            yield
        finally:
            with self._cond:
                self.used -= nbytes
                self._cond.notify_all()


_budget = DecodeBudget(int(AdmissionSettings().decode_budget_mb * 1048576))


def set_decode_budget(total_mb: float) -> DecodeBudget:
    global _budget
    _budget = DecodeBudget(int(total_mb * 1048576))
    return _budget


def decode_budget() -> DecodeBudget:
    return _budget


# ----------------------------------------------------------------------------- decoding with admission
@dataclass(frozen=True)
class Header:
    samplerate: int
    channels: int
    frames: int | None          # None: the header does not say (e.g. a FLAC written to a pipe)
    format: str
    subtype: str


def _clean(msg: str) -> str:
    msg = re.sub(r"<_io\.BytesIO object at 0x[0-9a-fA-F]+>", "the upload", msg)
    msg = re.sub(r"^Error opening (the upload|[^:]*): ", "", msg).strip()
    if msg.startswith("File does not exist or is not a regular file"):  # libsndfile's words for a bad stream
        msg = "not a recognised or complete audio stream"
    return msg


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


PEEK_BYTES = 1 << 20


def peek_refusal(body: bytes, content_type: str, max_duration_sec: float | None) -> RequestError | None:
    """Probe the audio header of the multipart part named `file` in a raw body (no form parsing, no queue):
    the refusal `check_header` gives from the first MB of the part, or None (also when nothing can be said;
    the full decode then decides). Lets a hostile header be refused in milliseconds even under load."""
    import soundfile as sf
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
    if end >= 0:
        payload = payload[:end]
    try:
        with sf.SoundFile(io.BytesIO(payload)) as f:
            h = probe(f)
    except Exception:  # noqa: BLE001 - not enough to say anything: the full decode reports it
        return None
    if end < 0 and h.format not in ("WAV", "WAVEX", "FLAC", "AIFF", "W64", "RF64", "CAF"):
        h = Header(h.samplerate, h.channels, None, h.format, h.subtype)  # a cut stream: its length means nothing
    try:
        check_header(h, name, max_duration_sec)
    except RequestError as exc:
        return exc
    return None


def tame_peak(y: np.ndarray) -> np.ndarray:
    """Scale a clip whose peak is above 1 (loud float audio) down to peak 1, in float64; float32 out."""
    y = np.asarray(y)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak > 1.0 and math.isfinite(peak):
        y = np.asarray(y, dtype=np.float64) / peak
    return np.asarray(y, dtype=np.float32)


def decode_upload(data: bytes, name: str = "upload", max_duration_sec: float | None = 600.0,
                  min_duration_sec: float = 0.0, sample_rate: int = SAMPLE_RATE, silence_peak: float = 1e-4,
                  budget: DecodeBudget | None = None) -> np.ndarray:
    """Upload bytes -> mono float32 at `sample_rate`, refusing from the header what can be refused there and
    decoding block by block (memory bounded by the output); RequestError 400/413 naming `name` otherwise.

    For a 16 kHz file the samples equal `audio.decode_audio`'s; other rates go through the same soxr HQ
    resampler as a stream (same numbers as the one-shot call)."""
    import soundfile as sf
    import soxr
    from ..audio import read_block
    if not data:
        raise RequestError(400, f"{name}: file is empty (0 bytes)")
    try:
        f = sf.SoundFile(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - LibsndfileError, RuntimeError, TypeError
        raise RequestError(400, f"{name}: cannot decode audio ({_clean(str(exc)) or exc.__class__.__name__})") from None
    with f:
        h = probe(f)
        check_header(h, name, max_duration_sec)
        file_rate, ch = h.samplerate, h.channels
        max_frames = None if max_duration_sec is None else int(math.floor(max_duration_sec * file_rate)) + 1
        expect = h.frames if h.frames is not None else max_frames
        if expect is None:
            expect = int(600 * file_rate)
        wide = h.subtype in ("FLOAT", "DOUBLE")   # float files can be arbitrarily loud: work in float64
        dtype = "float64" if wide else "float32"
        out_bytes = int(expect * sample_rate / file_rate + 1024) * (8 if wide else 4)
        block = max(1024, BLOCK_SAMPLES // ch)
        need = 2 * out_bytes + block * ch * (8 if wide else 4) * 3
        stream = (None if file_rate == sample_rate
                  else soxr.ResampleStream(file_rate, sample_rate, 1, dtype=dtype, quality="HQ"))
        with (budget or _budget).reserve(need, name):
            parts: list[np.ndarray] = []
            total = 0
            while True:
                checkpoint()
                try:
                    chunk = read_block(f, block, dtype)
                except Exception as exc:  # noqa: BLE001 - a truncated or corrupt stream mid-way
                    raise RequestError(400, f"{name}: cannot decode audio ({_clean(str(exc)) or exc.__class__.__name__})") from None
                n = chunk.shape[0]
                last = n < block
                total += n
                if max_frames is not None and total > max_frames:
                    raise RequestError(413, f"{name}: audio is over the limit of {max_duration_sec:g} s "
                                            f"(decoding stopped there; the header did not give its length)")
                if n and not np.isfinite(chunk).all():
                    raise RequestError(400, f"{name}: audio contains NaN or infinite samples")
                mono = chunk[:, 0] if ch == 1 else chunk.mean(axis=1)
                if stream is not None:
                    mono = stream.resample_chunk(np.ascontiguousarray(mono), last=last)
                if mono.size:
                    parts.append(np.array(mono, copy=True))
                if last:
                    break
            y = np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)
    if total == 0 or y.size == 0:
        raise RequestError(400, f"{name}: audio is empty (zero samples)")
    if not np.isfinite(y).all():
        raise RequestError(400, f"{name}: sample values are too large to process")
    dur = total / float(file_rate)
    if dur < min_duration_sec:
        raise RequestError(400, f"{name}: audio is {dur:.3f} s long, under the minimum of {min_duration_sec:g} s")
    y = tame_peak(y)
    if float(np.max(np.abs(y))) < silence_peak:
        raise RequestError(400, f"{name}: audio is silent (peak amplitude below {silence_peak:g})")
    return y


# ----------------------------------------------------------------------------- bounded work per request
def check_analysed(bounds: Iterable[tuple[int, int]], n_samples: int, segment_ms: int, overlap_ms: int,
                   sample_rate: int = SAMPLE_RATE) -> None:
    """400 when the segments would make the model hear more than ANALYSED_FACTOR x the clip."""
    analysed = sum(b - a for a, b in bounds)
    seg = int(round(segment_ms * sample_rate / 1000))
    allowed = max(ANALYSED_FACTOR * n_samples, n_samples + seg)
    if analysed > allowed:
        raise RequestError(400, f"segment_ms={segment_ms} with overlap_ms={overlap_ms} analyses "
                                f"{analysed / sample_rate:.1f} s of audio for a {n_samples / sample_rate:.1f} s clip; "
                                f"the limit is {ANALYSED_FACTOR:g}x the clip (use overlap_ms <= segment_ms / 2)")


def check_form(form, names: Iterable[str]) -> None:
    """400 when a known form field is sent more than once (which value would count is ambiguous)."""
    for name in names:
        values = form.getlist(name) if hasattr(form, "getlist") else []
        if len(values) > 1:
            raise RequestError(400, f"form field {name!r} was sent {len(values)} times; send it once")


# ----------------------------------------------------------------------------- the ASGI middleware
_current_middleware: "AdmissionMiddleware | None" = None


def stats() -> dict | None:
    """The admission counters of this process's middleware (shown by /health), None before the first request."""
    return _current_middleware.stats() if _current_middleware is not None else None


async def _send_json(send, status: int, detail: str, headers: Mapping[str, str] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
           (b"connection", b"close")]
    raw += [(k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class AdmissionMiddleware:
    """Body limit, bounded queue, deadlines and disconnect watching for the guarded POST routes."""

    def __init__(self, app, settings: AdmissionSettings | None = None, guarded: Iterable[str] = GUARDED_PATHS):
        self.app = app
        self.settings = settings or AdmissionSettings.from_env()
        self.guarded = set(guarded)
        self.in_flight = 0
        self.running = 0
        self.served = 0
        self.refused_busy = 0
        self.dropped = 0          # requests whose client went away; their work was stopped
        self._sem: asyncio.Semaphore | None = None
        self._ema_sec = 1.0
        set_decode_budget(self.settings.decode_budget_mb)
        global _current_middleware
        _current_middleware = self

    @property
    def capacity(self) -> int:
        return self.settings.workers + self.settings.max_queue

    def stats(self) -> dict:
        return {"inFlight": self.in_flight, "running": self.running, "workers": self.settings.workers,
                "maxQueue": self.settings.max_queue, "refusedBusy": self.refused_busy, "served": self.served,
                "dropped": self.dropped, "requestTimeoutSec": self.settings.request_timeout_sec,
                "decodeBudgetMb": round(_budget.total / 1048576, 1),
                "decodePeakMb": round(_budget.peak / 1048576, 1)}

    def retry_after(self) -> str:
        waiting = max(1, self.in_flight - self.settings.workers + 1)
        return str(int(min(120, max(1, math.ceil(self._ema_sec * waiting / self.settings.workers)))))

    def _limit_bytes(self, scope) -> tuple[int, float]:
        svc = getattr(getattr(scope.get("app"), "state", None), "ser", None)
        mb = float(svc.settings.max_upload_mb) if svc is not None else 25.0
        return int(mb * 1048576) + MULTIPART_OVERHEAD_BYTES, mb

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "POST" or scope.get("path") not in self.guarded:
            await self.app(scope, receive, send)
            return
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.settings.workers)
        arrived = time.monotonic()
        limit, limit_mb = self._limit_bytes(scope)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        length = headers.get("content-length", "").strip()
        if length.isdigit() and int(length) > limit:
            await _send_json(send, 413, f"request body of {int(length) / 1048576:.1f} MB is over the upload limit "
                                        f"of {limit_mb:g} MB")
            return
        if self.in_flight >= self.capacity:
            self.refused_busy += 1
            await _send_json(send, 503, f"the service is busy ({self.in_flight} requests in progress or queued, "
                                        f"limit {self.capacity}); retry later", {"Retry-After": self.retry_after()})
            return
        self.in_flight += 1
        try:
            await self._admitted(scope, receive, send, arrived, limit, limit_mb)
        finally:
            self.in_flight -= 1

    async def _admitted(self, scope, receive, send, arrived, limit, limit_mb):
        s = self.settings
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        # 1. the body, counted as it arrives (nothing reaches the app, the form parser or the disk before)
        chunks, total = [], 0
        body_deadline = arrived + s.body_timeout_sec
        while True:
            try:
                msg = await asyncio.wait_for(receive(), timeout=max(0.01, body_deadline - time.monotonic()))
            except asyncio.TimeoutError:
                await _send_json(send, 408, f"the request body did not arrive within {s.body_timeout_sec:g} s "
                                            f"(SER_BODY_TIMEOUT_SEC; {total / 1048576:.1f} MB received)")
                return
            if msg["type"] == "http.disconnect":
                return
            body = msg.get("body", b"")
            total += len(body)
            if total > limit:
                await _send_json(send, 413, f"request body is over the upload limit of {limit_mb:g} MB "
                                            f"(refused after reading {total / 1048576:.1f} MB)")
                return
            if body:
                chunks.append(body)
            if not msg.get("more_body", False):
                break
        body = b"".join(chunks)
        del chunks
        # 2. a hostile audio header is refused now, before the queue (the full decode checks it again)
        svc = getattr(getattr(scope.get("app"), "state", None), "ser", None)
        if scope.get("path") != "/warmup":
            refusal = peek_refusal(body, headers.get("content-type", ""),
                                   float(svc.settings.max_duration_sec) if svc is not None else None)
            if refusal is not None:
                await _send_json(send, refusal.status, str(refusal))
                return
        ticket = Ticket(arrived + s.request_timeout_sec, s.request_timeout_sec)
        gone = asyncio.Event()
        answered = False

        async def send_watched(message):
            nonlocal answered
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                answered = True
            await send(message)

        async def watch():
            while True:
                m = await receive()
                if m["type"] == "http.disconnect":
                    if not answered:  # (the server also reports a disconnect once the answer is out)
                        ticket.cancel()
                    gone.set()
                    return

        watcher = asyncio.ensure_future(watch())
        acquired = False
        try:
            # 3. wait for a worker slot, within the deadline, unless the client goes
            acq = asyncio.ensure_future(self._sem.acquire())
            gone_wait = asyncio.ensure_future(gone.wait())
            done, _ = await asyncio.wait({acq, gone_wait}, timeout=max(0.0, ticket.remaining()),
                                         return_when=asyncio.FIRST_COMPLETED)
            gone_wait.cancel()
            if acq in done:
                acquired = True
            else:
                acq.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await acq
                if acq.done() and not acq.cancelled() and acq.result():
                    acquired = True  # acquired in the same instant: give it back below
            if ticket.cancelled:
                return
            if not acquired:
                self.refused_busy += 1
                await _send_json(send, 503, f"the service is busy: no worker was free within the request deadline "
                                            f"of {s.request_timeout_sec:g} s; retry later",
                                 {"Retry-After": self.retry_after()})
                return
            # 4. run the app on the counted body; its receive() then waits for the disconnect
            sent = False

            async def replay():
                nonlocal sent, body
                if not sent:
                    sent = True
                    out, body = body, b""
                    return {"type": "http.request", "body": out, "more_body": False}
                await gone.wait()
                return {"type": "http.disconnect"}

            self.running += 1
            t0 = time.monotonic()
            token = _ticket.set(ticket)
            try:
                await self.app(scope, replay, send_watched)
            finally:
                _ticket.reset(token)
                self.running -= 1
                self.served += 1
                self.dropped += ticket.cancelled
                self._ema_sec = 0.8 * self._ema_sec + 0.2 * (time.monotonic() - t0)
        finally:
            if acquired:
                self._sem.release()
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher


__all__ = ["RequestError", "echo", "ensure_finite", "is_finite_tree", "AdmissionSettings", "Ticket", "checkpoint",
           "predict_in_chunks", "DecodeBudget", "decode_budget", "set_decode_budget", "Header", "probe",
           "check_header", "tame_peak", "decode_upload", "check_analysed", "check_form", "AdmissionMiddleware", "stats",
           "MIN_SAMPLE_RATE", "MAX_SAMPLE_RATE", "MAX_CHANNELS", "ANALYSED_FACTOR"]
