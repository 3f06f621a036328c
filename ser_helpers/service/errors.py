"""The service's clear answers: `RequestError` (an HTTP status + message), `echo` (a user value quoted in an error,
clipped to about 80 characters) and `ensure_finite` (a non-finite number in an answer becomes a 422, never a JSON
encoding failure).

Taught in notebook 05 (05_serve_ser_api.ipynb).
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from ..common import SERError

ECHO_CHARS = 80


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
