"""Word error rate of recognised transcripts against references, after one normalisation (lower case, numbers
spelled out, punctuation dropped) on both sides.

Taught in notebook 06 (06_build_fusion_features.ipynb).
"""
from __future__ import annotations

import re
import unicodedata
from typing import Sequence

from ..common import SERError

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
         "seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_ORDINAL = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth", "nine": "ninth",
            "twelve": "twelfth"}


def number_words(n: int) -> str:
    """0 <= n < 10**9 in words: 12 -> twelve, 305 -> three hundred five, 2024 -> two thousand twenty four."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        return _ONES[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + number_words(n % 100))
    for size, name in ((10 ** 6, "million"), (1000, "thousand")):
        if n >= size:
            return number_words(n // size) + f" {name}" + ("" if n % size == 0 else " " + number_words(n % size))
    return str(n)


def _spell_numbers(text: str) -> str:
    def time_(m):  # 10:15 -> ten fifteen, 3:00 -> three o'clock, 8:05 -> eight oh five
        h, mm = int(m.group(1)), m.group(2)
        if mm == "00":
            return f"{number_words(h)} o'clock"
        return f"{number_words(h)} " + ("oh " + number_words(int(mm)) if mm.startswith("0") else number_words(int(mm)))

    def ordinal(m):
        words = number_words(int(m.group(1))).split()
        last = words[-1]
        last = _ORDINAL.get(last, (last[:-1] + "ieth") if last.endswith("y") else last + "th")
        return " ".join(words[:-1] + [last])

    text = re.sub(r"\b(\d{1,2})[:.](\d{2})\b", time_, text)
    text = re.sub(r"\b(\d+)(?:st|nd|rd|th)\b", ordinal, text)
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)              # 1,000 -> 1000
    text = re.sub(r"\b(\d+)%", lambda m: m.group(1) + " percent", text)
    text = re.sub(r"\d+", lambda m: f" {number_words(int(m.group(0)))} " if len(m.group(0)) < 10 else m.group(0),
                  text)
    return text


def normalize_for_wer(text: str, numbers: str = "spell") -> str:
    """Lower case, digits spelled out (`numbers="spell"`: 10:15 -> ten fifteen, 3:00 -> three o'clock,
    12 -> twelve, 2nd -> second; `"keep"` leaves them), hyphens as spaces, punctuation dropped except apostrophes
    inside words, whitespace collapsed. Other ways of saying a number (half past two vs 2:30) still differ."""
    text = unicodedata.normalize("NFKC", str(text or "")).lower().replace("’", "'")
    if numbers == "spell":
        text = _spell_numbers(text)
    elif numbers != "keep":
        raise SERError(f"numbers={numbers!r}: expected 'spell' or 'keep'")
    text = re.sub(r"[-‐‑–—/]", " ", text)
    text = re.sub(r"[^\w\s']", " ", text)
    text = re.sub(r"(?<!\w)'|'(?!\w)", " ", text)
    return " ".join(text.split())


def edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    """Levenshtein distance between two word lists (substitutions, insertions, deletions cost 1)."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def wer(references: Sequence[str], hypotheses: Sequence[str], numbers: str = "spell") -> dict:
    """Corpus word error rate: sum of word edit distances / number of reference words, after
    `normalize_for_wer` on both sides. Returns {"wer", "errors", "ref_words", "n", "exact"} (exact = utterances
    with no error)."""
    if len(references) != len(hypotheses):
        raise SERError(f"wer: {len(references)} references but {len(hypotheses)} hypotheses")
    errors = words = exact = 0
    for r, h in zip(references, hypotheses):
        rw, hw = normalize_for_wer(r, numbers).split(), normalize_for_wer(h, numbers).split()
        e = edit_distance(rw, hw)
        errors += e
        words += len(rw)
        exact += int(e == 0)
    return {"wer": errors / words if words else float("nan"), "errors": int(errors), "ref_words": int(words),
            "n": len(references), "exact": int(exact), "numbers": numbers}
