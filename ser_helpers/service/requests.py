"""Request parsing and validation: segmentation, form fields, language hints, text features, and the bounds on
the shape of a request (a form field sent once, segments that analyse at most ANALYSED_FACTOR x the clip).

Taught in notebook 05 (05_serve_ser_api.ipynb).
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

from ..common import SAMPLE_RATE
from .errors import RequestError, echo
from .settings import (_UNIT_INTERVAL_FIELDS, DEFAULT_OVERLAP_MS, DEFAULT_SEGMENT_MS, LANGUAGE_ALIASES, MAX_ENTROPY4,
                       MAX_SEGMENT_MS, MIN_SEGMENT_MS, MIN_TAIL_MS, NO_HINT, TEXT_FEATURE_FIELDS)

ANALYSED_FACTOR = 2.0            # sum of segment lengths <= this x the clip (one segment always allowed)


def _window(segment_ms: int, overlap_ms: int, sample_rate: int) -> tuple[int, int]:
    """(window length, step) in samples."""
    seg = max(1, int(round(segment_ms * sample_rate / 1000)))
    return seg, max(1, seg - int(round(overlap_ms * sample_rate / 1000)))


def segment_bounds(n_samples: int, segment_ms: int, overlap_ms: int,
                   sample_rate: int = SAMPLE_RATE) -> list[tuple[int, int]]:
    """Cut [0, n) into windows of segment_ms with overlap_ms overlap; a tail under MIN_TAIL_MS joins the last one."""
    seg, step = _window(segment_ms, overlap_ms, sample_rate)
    min_tail = int(MIN_TAIL_MS * sample_rate / 1000)
    bounds: list[tuple[int, int]] = []
    start = 0
    while True:
        end = min(start + seg, n_samples)
        # only the trailing piece may join the previous window (segments shorter than MIN_TAIL_MS must not
        # all merge into one window over the whole clip)
        if bounds and end == n_samples and end - start < min(min_tail, seg):
            bounds[-1] = (bounds[-1][0], end)
        else:
            bounds.append((start, end))
        if end >= n_samples:
            break
        start += step
    return bounds


def count_segments(n_samples: int, segment_ms: int, overlap_ms: int, sample_rate: int = SAMPLE_RATE) -> int:
    seg, step = _window(segment_ms, overlap_ms, sample_rate)
    return 1 + max(0, math.ceil((n_samples - seg) / step))



def parse_int_field(name: str, raw, default: int) -> int:
    if raw is None or str(raw).strip() == "":
        return default
    try:
        value = float(str(raw).strip())
    except ValueError:
        raise RequestError(400, f"{name}={echo(raw)} is not an integer number of milliseconds") from None
    if not math.isfinite(value) or value != int(value):
        raise RequestError(400, f"{name}={echo(raw)} is not an integer number of milliseconds")
    return int(value)


def parse_segmentation(segment_ms, overlap_ms) -> tuple[int, int]:
    """Validate segment_ms / overlap_ms form values (400 unless 0 <= overlap < segment, segment in range)."""
    seg = parse_int_field("segment_ms", segment_ms, DEFAULT_SEGMENT_MS)
    ovl = parse_int_field("overlap_ms", overlap_ms, DEFAULT_OVERLAP_MS)
    if not MIN_SEGMENT_MS <= seg <= MAX_SEGMENT_MS:
        raise RequestError(400, f"segment_ms={seg} is out of range; use {MIN_SEGMENT_MS}..{MAX_SEGMENT_MS}")
    if not 0 <= ovl < seg:
        raise RequestError(400, f"overlap_ms={ovl} is invalid; it must satisfy 0 <= overlap_ms < segment_ms ({seg})")
    return seg, ovl


def parse_language_hint(raw) -> str | None:
    """'en'/'zh' (and common spellings) -> route language; empty/auto/none -> None; anything else -> 400."""
    if raw is None:
        return None
    hint = str(raw).strip().lower()
    if hint in NO_HINT:
        return None
    if hint in LANGUAGE_ALIASES:
        return LANGUAGE_ALIASES[hint]
    raise RequestError(400, f"language_hint={echo(raw)} is not supported; use en, zh or leave it empty")


def parse_text_features(form: Mapping[str, Any]) -> dict[str, float]:
    """The posted text-feature fields, parsed and normalised (floats; text4_ready 0/1; probability triples
    and the text4 distribution rescaled to sum to 1). Fields not posted are left out; bad values -> 400."""
    feats: dict[str, float] = {}
    for name in TEXT_FEATURE_FIELDS:
        raw = form.get(name)
        if raw is None or str(raw).strip() == "":
            continue
        text = str(raw).strip()
        if name == "text4_ready":
            lowered = text.lower()
            if lowered in ("1", "1.0", "true", "yes"):
                feats[name] = 1.0
            elif lowered in ("0", "0.0", "false", "no"):
                feats[name] = 0.0
            else:
                raise RequestError(400, f"{name}={echo(raw)} must be 0/1 (or true/false)")
            continue
        try:
            value = float(text)
        except ValueError:
            raise RequestError(400, f"{name}={echo(raw)} is not a number") from None
        if not math.isfinite(value):
            raise RequestError(400, f"{name}={echo(raw)} must be finite")
        if name in _UNIT_INTERVAL_FIELDS and not -1e-6 <= value <= 1 + 1e-6:
            raise RequestError(400, f"{name}={echo(raw)} must lie in [0, 1]")
        if name == "text_negative_score" and not -1 - 1e-6 <= value <= 1 + 1e-6:
            raise RequestError(400, f"{name}={echo(raw)} must lie in [-1, 1] (negative minus positive)")
        if name == "text4_entropy" and not 0 <= value <= MAX_ENTROPY4 + 1e-6:
            raise RequestError(400, f"{name}={echo(raw)} must lie in [0, ln 4 = {MAX_ENTROPY4:.4f}] "
                                    f"(the entropy of 4 classes)")
        if name == "text4_entropy":
            value = min(value, MAX_ENTROPY4)
        feats[name] = float(min(max(value, 0.0), 1.0)) if name in _UNIT_INTERVAL_FIELDS else value
    for group in (("text_negative", "text_neutral", "text_positive"),
                  ("text4_prob_ang", "text4_prob_hap", "text4_prob_neu", "text4_prob_sad")):
        if all(g in feats for g in group):
            total = sum(feats[g] for g in group)
            if total <= 0:
                raise RequestError(400, f"{', '.join(group)} sum to 0; they must be probabilities")
            for g in group:
                feats[g] = feats[g] / total
    return feats


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
