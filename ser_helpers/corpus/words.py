"""The word lists of the generated corpus, kept as data files: `words/en.json` and `words/zh.json`.

Each file holds the sentence templates per wording category (`neutral pos ang sad sur fea`), the
slot fillers the templates name (`{place}`, `{bad}` ...), the emotion key phrases that open most
emotionally worded sentences (`key_openers`) and, for English, the sentence openers (`openers`;
Mandarin keeps its openers as the `o` slot). Edit the JSON to change the wording: the corpus
changes with it, so bump `settings.GENERATOR_VERSION` when you do. Taught in notebook 00
(`00_make_demo_corpus.ipynb`).
"""
from __future__ import annotations

import json
from importlib import resources


def load_words(lang: str) -> dict:
    """The word lists of one language ('en' or 'zh') as a dict (openers, slots, templates, key_openers)."""
    return json.loads(resources.files(__package__).joinpath("words", f"{lang}.json").read_text(encoding="utf-8"))


_EN, _ZH = load_words("en"), load_words("zh")
EN_OPENERS: list[str] = _EN["openers"]
EN_SLOTS: dict[str, list[str]] = _EN["slots"]
EN_TEMPLATES: dict[str, list[str]] = _EN["templates"]
ZH_SLOTS: dict[str, list[str]] = _ZH["slots"]
ZH_TEMPLATES: dict[str, list[str]] = _ZH["templates"]
#: emotion key phrases that open most emotionally worded sentences (what a text model can learn)
KEY_OPENERS: dict[str, dict[str, list[str]]] = {"en": _EN["key_openers"], "zh": _ZH["key_openers"]}
