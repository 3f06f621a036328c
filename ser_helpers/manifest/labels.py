"""Label names -> canonical IEMOCAP codes: aliases, `--allowed-labels`, label-map JSON, the 4-class map.

Taught in notebook 02 (`02_folder_manifest.ipynb`), where folder names such as `angry/` or `ANGER/`
become the codes `ang hap neu sad`.
"""
from __future__ import annotations

from ..common import LABEL_ALIASES, LABELS, SERError
from .base import _as_list


IEMOCAP_4CLASS_CODES = ("ang", "hap", "neu", "sad")


def resolve_label(name: str) -> str | None:
    """A word or code (any case) -> canonical code, or None if unknown ('ANGRY' -> 'ang')."""
    return LABEL_ALIASES.get(str(name).strip().lower())


def parse_allowed_labels(value) -> list[str]:
    """`--allowed-labels` (comma list of words or codes, any case) -> sorted codes; empty keeps all."""
    codes = []
    for item in _as_list(value):
        code = resolve_label(item)
        if code is None:
            raise SERError(f"--allowed-labels: unknown label {item!r} (known words/codes: "
                           f"{', '.join(sorted(LABEL_ALIASES))})")
        codes.append(code)
    return sorted(set(codes))


class _LabelResolver:
    """Folder name -> (code or None, reason); label-map JSON first, then the alias table."""

    def __init__(self, label_map: dict | None, use_iemocap_map: bool, allowed: list[str]):
        self.label_map = {str(k).strip().lower(): v for k, v in (label_map or {}).items()}
        for k, v in list(self.label_map.items()):
            code = resolve_label(v) or (v if v in LABELS else None)
            if code is None:
                raise SERError(f"--label-map-json: {k!r} maps to {v!r}, which is not a known label word or code")
            self.label_map[k] = code
        self.use_iemocap_map = use_iemocap_map
        self.allowed = allowed

    def code(self, name: str) -> str | None:
        key = name.strip().lower()
        if key in self.label_map:
            return self.label_map[key]
        return resolve_label(key)

    def keep(self, code: str) -> str | None:
        """None if kept, else why it is dropped."""
        if self.use_iemocap_map and code not in IEMOCAP_4CLASS_CODES:
            return "not in the IEMOCAP 4-class map"
        if self.allowed and code not in self.allowed:
            return "not in --allowed-labels"
        return None
