"""Timestamps in signed objects: RFC 3339, UTC, millisecond precision, one spelling only.

One spelling matters because the string is hashed: "…00.000Z" and "…00Z" would be the same
instant with two different ids.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from .errors import SchemaError

_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def format_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("naive datetime: give a timezone")
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def now() -> str:
    return format_time(datetime.now(UTC))


def parse_time(text: object, field: str = "timestamp") -> datetime:
    if not isinstance(text, str) or not _RE.match(text):
        raise SchemaError(f"{field}: expected UTC time like 2026-11-22T08:30:00.000Z, got {text!r}")
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise SchemaError(f"{field}: {exc}") from exc
