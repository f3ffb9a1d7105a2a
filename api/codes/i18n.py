"""Chinese and English for the consumer pages: the language a request asks for, and the
messages in it (web/translations/<lang>.json, flat keys, `str.format` placeholders).

Choice: `?lang=` if given, else the best of zh/en by the quality values of
Accept-Language, else Chinese (the goods are sold in China). A message missing in
Chinese falls back to English, then to its key, so a page never fails for a string.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

LANGUAGES = ("zh", "en")
DEFAULT = "zh"
TRANSLATIONS = Path(__file__).resolve().parents[2] / "web" / "translations"


def negotiate(accept_language: str | None, override: str | None = None) -> str:
    if override:
        wanted = override.strip().lower().split("-")[0]
        if wanted in LANGUAGES:
            return wanted
    best, best_q = None, 0.0
    for position, item in enumerate((accept_language or "").split(",")):
        tag, _, params = item.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        q -= position * 1e-6  # earlier wins among equals
        if primary in LANGUAGES and q > best_q:
            best, best_q = primary, q
    return best or (DEFAULT if not accept_language else "en")


@cache
def catalog(lang: str) -> dict[str, str]:
    return json.loads((TRANSLATIONS / f"{lang}.json").read_text(encoding="utf-8"))


class Translator:
    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGUAGES else DEFAULT
        self._own = catalog(self.lang)
        self._english = catalog("en")

    def __call__(self, key: str, **values: Any) -> str:
        template = self._own.get(key) or self._english.get(key) or key
        return template.format(**values) if values else template

    def has(self, key: str) -> bool:
        return key in self._own or key in self._english

    def text(self, value: Any) -> str:
        """A {"en": …, "zh": …} map in this language (or any), or the value as text."""
        if isinstance(value, dict):
            return str(value.get(self.lang) or value.get("en") or next(iter(value.values()), ""))
        return "" if value is None else str(value)
