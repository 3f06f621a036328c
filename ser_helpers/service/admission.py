"""Admission control for the SER service: bounded memory, bounded work and a clear answer for every request.

Taught in notebook 05 (05_serve_ser_api.ipynb); used by `ser_helpers.service` (issue 12). This module is the
admission FLOW, `AdmissionMiddleware` (pure ASGI, in front of POST /ser/analyze, /asr/transcribe, /warmup), one
named step after the other:

1. `_read_body`: refuses a body over the limit from its Content-Length, and counts the bytes of a chunked body
   as they arrive (refused after at most limit + one network chunk, before anything reaches the form parser or
   the disk), within `SER_BODY_TIMEOUT_SEC`;
2. `_refused_by_header`: a hostile audio header is refused from the raw body, before the queue (`probing`);
3. `_acquire_worker`: a bounded queue (`SER_WORKERS` running + `SER_MAX_QUEUE` waiting, then 503 + Retry-After)
   and a deadline per request (`SER_REQUEST_TIMEOUT_SEC`);
4. `_run_app`: the app gets the counted body while `_ClientExchange` watches the connection, so the work of a
   client that has gone is dropped at its next `checkpoint()` (`tickets`).

The pieces it relies on live beside it and are re-exported here (the names of this module before the split):
`errors` (RequestError, echo, ensure_finite), `settings` (AdmissionSettings), `tickets` (Ticket, checkpoint,
predict_in_chunks), `probing` (header checks), `decoding` (decode_upload, the decode budget) and `requests`
(check_analysed, check_form).
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from typing import Iterable, Mapping

from .decoding import DecodeBudget, decode_budget, decode_upload, set_decode_budget, tame_peak
from .errors import RequestError, echo, ensure_finite, is_finite_tree
from .probing import MAX_CHANNELS, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, Header, check_header, peek_refusal, probe
from .requests import ANALYSED_FACTOR, check_analysed, check_form
from .settings import MULTIPART_OVERHEAD_BYTES, AdmissionSettings
from .tickets import Ticket, checkpoint, predict_in_chunks, working_on

GUARDED_PATHS = ("/ser/analyze", "/asr/transcribe", "/warmup")

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


def _service(scope):
    """The SERService of the app behind the middleware (None before start-up or in a bare test app)."""
    return getattr(getattr(scope.get("app"), "state", None), "ser", None)


class _ClientExchange:
    """An admitted request's connection as the app sees it: `receive()` hands over the counted body once, then
    waits until the client goes; `send()` notes when the answer is out; `watch()` (a task for the whole
    request) sets `gone` when the client disconnects, and cancels the ticket unless the answer was already out
    (the server also reports a disconnect then)."""

    def __init__(self, body: bytes, ticket: Ticket, receive, send):
        self.ticket = ticket
        self.gone = asyncio.Event()
        self._body: bytes | None = body
        self._receive, self._send = receive, send
        self._answered = False

    async def receive(self):
        if self._body is not None:
            body, self._body = self._body, None  # the app owns it now: no second copy stays alive here
            return {"type": "http.request", "body": body, "more_body": False}
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message):
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self._answered = True
        await self._send(message)

    async def watch(self):
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                if not self._answered:
                    self.ticket.cancel()
                self.gone.set()
                return


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
        budget = decode_budget()
        return {"inFlight": self.in_flight, "running": self.running, "workers": self.settings.workers,
                "maxQueue": self.settings.max_queue, "refusedBusy": self.refused_busy, "served": self.served,
                "dropped": self.dropped, "requestTimeoutSec": self.settings.request_timeout_sec,
                "decodeBudgetMb": round(budget.total / 1048576, 1),
                "decodePeakMb": round(budget.peak / 1048576, 1)}

    def retry_after(self) -> str:
        waiting = max(1, self.in_flight - self.settings.workers + 1)
        return str(int(min(120, max(1, math.ceil(self._ema_sec * waiting / self.settings.workers)))))

    def _limit_bytes(self, scope) -> tuple[int, float]:
        svc = _service(scope)
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
            await self._admitted(scope, headers, receive, send, arrived, limit, limit_mb)
        finally:
            self.in_flight -= 1

    async def _admitted(self, scope, headers, receive, send, arrived, limit, limit_mb):
        body = await self._read_body(receive, send, arrived, limit, limit_mb)
        if body is None or await self._refused_by_header(scope, headers, body, send):
            return
        timeout = self.settings.request_timeout_sec
        exchange = _ClientExchange(body, Ticket(arrived + timeout, timeout), receive, send)
        del body  # the exchange hands it to the app and lets it go
        watcher = asyncio.ensure_future(exchange.watch())
        acquired = False
        try:
            acquired = await self._acquire_worker(exchange)
            if exchange.ticket.cancelled:
                return
            if not acquired:
                self.refused_busy += 1
                await _send_json(send, 503, f"the service is busy: no worker was free within the request deadline "
                                            f"of {timeout:g} s; retry later", {"Retry-After": self.retry_after()})
                return
            await self._run_app(scope, exchange)
        finally:
            if acquired:
                self._sem.release()
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher

    async def _read_body(self, receive, send, arrived, limit, limit_mb) -> bytes | None:
        """The body, counted as it arrives (nothing reaches the app, the form parser or the disk before); None
        when it was refused (408 late, 413 too large) or the client went away."""
        timeout = self.settings.body_timeout_sec
        chunks, total = [], 0
        body_deadline = arrived + timeout
        while True:
            try:
                msg = await asyncio.wait_for(receive(), timeout=max(0.01, body_deadline - time.monotonic()))
            except asyncio.TimeoutError:
                await _send_json(send, 408, f"the request body did not arrive within {timeout:g} s "
                                            f"(SER_BODY_TIMEOUT_SEC; {total / 1048576:.1f} MB received)")
                return None
            if msg["type"] == "http.disconnect":
                return None
            chunk = msg.get("body", b"")
            total += len(chunk)
            if total > limit:
                await _send_json(send, 413, f"request body is over the upload limit of {limit_mb:g} MB "
                                            f"(refused after reading {total / 1048576:.1f} MB)")
                return None
            if chunk:
                chunks.append(chunk)
            if not msg.get("more_body", False):
                return b"".join(chunks)

    async def _refused_by_header(self, scope, headers, body: bytes, send) -> bool:
        """A hostile audio header is refused now, before the queue (the full decode checks it again)."""
        if scope.get("path") == "/warmup":
            return False
        svc = _service(scope)
        refusal = peek_refusal(body, headers.get("content-type", ""),
                               float(svc.settings.max_duration_sec) if svc is not None else None)
        if refusal is None:
            return False
        await _send_json(send, refusal.status, str(refusal))
        return True

    async def _acquire_worker(self, exchange: _ClientExchange) -> bool:
        """Wait for a worker slot within the request's deadline, unless the client goes; True when one is held
        (also when it was acquired in the instant the wait gave up: the caller gives it back)."""
        acq = asyncio.ensure_future(self._sem.acquire())
        gone_wait = asyncio.ensure_future(exchange.gone.wait())
        done, _ = await asyncio.wait({acq, gone_wait}, timeout=max(0.0, exchange.ticket.remaining()),
                                     return_when=asyncio.FIRST_COMPLETED)
        gone_wait.cancel()
        if acq in done:
            return True
        acq.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await acq
        return acq.done() and not acq.cancelled() and bool(acq.result())

    async def _run_app(self, scope, exchange: _ClientExchange) -> None:
        """The app on the counted body, under the request's ticket; the counters and the time estimate behind
        Retry-After follow."""
        self.running += 1
        t0 = time.monotonic()
        try:
            with working_on(exchange.ticket):
                await self.app(scope, exchange.receive, exchange.send)
        finally:
            self.running -= 1
            self.served += 1
            self.dropped += exchange.ticket.cancelled
            self._ema_sec = 0.8 * self._ema_sec + 0.2 * (time.monotonic() - t0)


__all__ = ["RequestError", "echo", "ensure_finite", "is_finite_tree", "AdmissionSettings", "Ticket", "checkpoint",
           "predict_in_chunks", "DecodeBudget", "decode_budget", "set_decode_budget", "Header", "probe",
           "check_header", "tame_peak", "decode_upload", "check_analysed", "check_form", "AdmissionMiddleware", "stats",
           "MIN_SAMPLE_RATE", "MAX_SAMPLE_RATE", "MAX_CHANNELS", "ANALYSED_FACTOR"]
