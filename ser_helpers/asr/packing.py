"""Packed-window recognition, the arithmetic part: Whisper always decodes a 30 s window (shorter windows make its
decoder repeat itself), so a 3 s clip costs as much as a 30 s one. Clips are laid 1 s of silence apart in one
<= 28 s window (`pack_clips`, `join_clips`), the window is decoded once with word timestamps, and each word goes to
the clip its time midpoint falls in (`split_words`; nearest clip when it falls in a gap). A clip whose share looks
wrong (`share_looks_wrong`: speech but no words, or implausibly many words per second) is decoded again on its own;
when that decode looks wrong too (a decoder loop: "thank you for watching" 40 times), the less implausible of the
two is kept (`better_share`).

Taught in notebook 06 (06_build_fusion_features.ipynb).
"""
from __future__ import annotations

import numpy as np

PACK_WINDOW_SEC = 28.0   # clips packed into one window up to this length (Whisper's window is 30 s)
PACK_GAP_SEC = 1.0       # silence between packed clips
SILENCE_RMS = 1e-3       # a clip quieter than this (about -60 dBFS) is not retried when it gets no words
MAX_WORDS_PER_SEC = 6.0  # more words than this per second of clip (+3) = a suspicious share: decode it alone


def pack_clips(durations, window_sec: float = PACK_WINDOW_SEC, gap_sec: float = PACK_GAP_SEC) -> list[list[int]]:
    """Greedy, in order: indices of the clips that share each window (total length incl. gaps <= window_sec).
    A clip longer than the window is a window of its own."""
    groups: list[list[int]] = []
    cur: list[int] = []
    length = 0.0
    for i, d in enumerate(durations):
        d = float(d)
        need = d if not cur else length + gap_sec + d
        if cur and need > window_sec:
            groups.append(cur)
            cur, length = [], 0.0
            need = d
        cur.append(i)
        length = need
    if cur:
        groups.append(cur)
    return groups


def join_clips(audios, gap_sec: float = PACK_GAP_SEC, sample_rate: int = 16000) -> tuple[np.ndarray, list]:
    """One waveform with `gap_sec` of silence between clips, and each clip's (start, end) in seconds."""
    gap = np.zeros(int(round(gap_sec * sample_rate)), dtype=np.float32)
    parts, spans, pos = [], [], 0
    for k, a in enumerate(audios):
        a = np.asarray(a, dtype=np.float32).reshape(-1)
        if k:
            parts.append(gap)
            pos += gap.size
        spans.append((pos / sample_rate, (pos + a.size) / sample_rate))
        parts.append(a)
        pos += a.size
    return (np.concatenate(parts) if parts else np.zeros(0, np.float32)), spans


def split_words(words, spans) -> list[list[str]]:
    """Give each (start, end, text) word to the clip span its time midpoint falls in; a midpoint in a gap goes
    to the nearest span. Returns the words of each span, in time order."""
    out: list[list[str]] = [[] for _ in spans]
    if not spans:
        return out
    for start, end, text in words:
        mid = 0.5 * (float(start) + float(end))
        dist = [0.0 if a <= mid <= b else min(abs(mid - a), abs(mid - b)) for a, b in spans]
        out[int(np.argmin(dist))].append(str(text))
    return out


def _join_words(words) -> str:
    """faster-whisper words carry their leading space (" Hello", ","): concatenation restores the text."""
    return " ".join("".join(words).split())


def share_looks_wrong(text: str, audio: np.ndarray, span: tuple[float, float]) -> bool:
    """A clip's share of a packed window is suspect (decode the clip alone): no words although the clip is not
    silent, or more words than MAX_WORDS_PER_SEC per second of the clip (+3)."""
    n_words = len(text.split())
    samples = np.asarray(audio)
    rms = float(np.sqrt(np.mean(np.square(np.asarray(audio, dtype=np.float64))))) if samples.size else 0.0
    start, end = span
    return (n_words == 0 and rms > SILENCE_RMS) or n_words > MAX_WORDS_PER_SEC * (end - start) + 3


def excess_words(text: str, span: tuple[float, float]) -> float:
    """Words beyond the plausible maximum for a clip of this span (MAX_WORDS_PER_SEC per second, +3)."""
    start, end = span
    return len(text.split()) - (MAX_WORDS_PER_SEC * (end - start) + 3)


def better_share(packed: str, alone: str, audio: np.ndarray, span: tuple[float, float]) -> str:
    """The clip's text after a retry: the clip decoded alone, unless that looks wrong too and has more excess
    words than its share of the packed window (a decoder loop on a lone short clip)."""
    if not share_looks_wrong(alone, audio, span) or excess_words(alone, span) <= excess_words(packed, span):
        return alone
    return packed
