"""Deadlines and cancellation inside the worker thread: a `Ticket` per admitted request (its deadline and whether
its client has gone), visible through a context variable, so the service calls `checkpoint()` between decode
blocks and inference chunks (`predict_in_chunks`) and the work of a late or abandoned request stops there.

Taught in notebook 05 (05_serve_ser_api.ipynb).
"""
from __future__ import annotations

import contextlib
import contextvars
import threading
import time

import numpy as np

from ..common import SAMPLE_RATE
from .errors import RequestError

INFERENCE_CHUNK = 32             # segments per model call between checkpoints (a multiple of the batch size)
MAX_CALL_SAMPLES = 8 * 15 * SAMPLE_RATE  # audio per model call (8 x 15 s, as in evaluation); longer segments: fewer per call


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


@contextlib.contextmanager
def working_on(ticket: Ticket):
    """Make `ticket` the current request's within the block (the worker threads it starts inherit it)."""
    token = _ticket.set(ticket)
    try:
        yield ticket
    finally:
        _ticket.reset(token)


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
