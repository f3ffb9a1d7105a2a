"""GS1 data attributes of a Digital Link URI: the query string's Application Identifiers
(harvest date 7007, country of origin 422, expiry 17, …), checked and named.

Known AIs are validated by their GS1 format; other 2–4 digit AIs pass through if their
value is plain GS1 text, so that a code carrying an attribute this resolver does not
display still resolves. Key qualifiers and primary keys belong in the path and are
refused here with a message saying so.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from traceability.codes import CodeError

#: GS1 AI encodable character set 82.
CSET82 = frozenset(
    "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
)
#: AIs that are keys or key qualifiers of a GTIN: they belong in the path.
PATH_AIS = {"01": "GTIN", "22": "consumer product variant", "10": "lot", "21": "serial"}
_DIGITS = re.compile(r"^\d+$")
_AI = re.compile(r"^\d{2,4}$")


@dataclass(frozen=True)
class AttributeSpec:
    name: str  # English label; translations are keyed by "ai.<AI>"
    pattern: str  # regular expression of the value
    kind: str  # date | date_range | datetime | country | decimal | count | text
    example: str


_DATE = r"\d{6}"
SPECS: dict[str, AttributeSpec] = {
    "11": AttributeSpec("production date", _DATE, "date", "261105"),
    "13": AttributeSpec("packaging date", _DATE, "date", "261106"),
    "15": AttributeSpec("best before date", _DATE, "date", "261231"),
    "16": AttributeSpec("sell by date", _DATE, "date", "261215"),
    "17": AttributeSpec("expiration date", _DATE, "date", "281031"),
    "7006": AttributeSpec("first freeze date", _DATE, "date", "261110"),
    "7007": AttributeSpec("harvest date", r"\d{6}(\d{6})?", "date_range", "261103"),
    "7003": AttributeSpec("expiration date and time", r"\d{10}", "datetime", "2612311800"),
    "422": AttributeSpec("country of origin", r"\d{3}", "country", "156"),
    "424": AttributeSpec("country of processing", r"\d{3}", "country", "156"),
    "426": AttributeSpec("country of full process", r"\d{3}", "country", "156"),
    "427": AttributeSpec("country subdivision of origin", r"[!-z]{1,3}", "text", "JX"),
    "30": AttributeSpec("variable count", r"\d{1,8}", "count", "12"),
    "37": AttributeSpec("count of trade items", r"\d{1,8}", "count", "50"),
    **{
        f"310{d}": AttributeSpec("net weight (kg)", r"\d{6}", "decimal", "005000") for d in range(6)
    },
    **{
        f"723{d}": AttributeSpec("certification reference", r"[!-z]{2,30}", "text", "GAP2026")
        for d in range(10)
    },
}
MAX_UNKNOWN_VALUE = 90


def _check_date(ai: str, text: str, field: str) -> None:
    month, day = int(text[2:4]), int(text[4:6])
    year = 2000 + int(text[0:2])
    if not 1 <= month <= 12:
        raise CodeError(field, "ai-date", f"AI {ai} date {text}: month {text[2:4]} is not 01–12")
    last = calendar.monthrange(year, month)[1]
    if day > last or (day == 0 and ai == "7007"):
        raise CodeError(
            field, "ai-date", f"AI {ai} date {text}: day {text[4:6]} does not exist in that month"
        )


def check_attribute(ai: str, value: str, field: str | None = None) -> str:
    """The value if it is valid for `ai`; CodeError naming the AI and the rule otherwise."""
    field = field or f"?{ai}"
    if ai in PATH_AIS:
        raise CodeError(
            field,
            "ai-in-query",
            f"AI {ai} ({PATH_AIS[ai]}) is part of the identifier: put it in the path, not the "
            "query string",
        )
    if not _AI.fullmatch(ai):
        raise CodeError(field, "ai-unknown", f"{ai!r} is not a GS1 Application Identifier")
    bad = next((c for c in value if c not in CSET82), None)
    if bad is not None or not value:
        what = f"character {bad!r}" if bad is not None else "an empty value"
        raise CodeError(field, "ai-charset", f"AI {ai} has {what}; GS1 values use character set 82")
    spec = SPECS.get(ai)
    if spec is None:
        if len(value) > MAX_UNKNOWN_VALUE:
            raise CodeError(field, "ai-length", f"AI {ai} value is longer than 90 characters")
        return value
    if not re.fullmatch(spec.pattern, value):
        raise CodeError(
            field,
            "ai-format",
            f"AI {ai} ({spec.name}) has the wrong format: {value!r} (e.g. {spec.example})",
        )
    if spec.kind in ("date", "date_range", "datetime"):
        _check_date(ai, value[:6], field)
        if spec.kind == "date_range" and len(value) == 12:
            _check_date(ai, value[6:], field)
            if value[6:] < value[:6]:
                raise CodeError(
                    field, "ai-date", f"AI {ai}: the range {value} ends before it starts"
                )
        if spec.kind == "datetime" and (int(value[6:8]) > 23 or int(value[8:10]) > 59):
            raise CodeError(field, "ai-date", f"AI {ai}: {value[6:10]} is not a time HHMM")
    return value


def decode_component(raw: str, field: str) -> str:
    """Percent-decode one URI component strictly (UTF-8, two hex digits per escape)."""
    for match in re.finditer("%", raw):
        escape = raw[match.start() + 1 : match.start() + 3]
        if len(escape) != 2 or not all(c in "0123456789abcdefABCDEF" for c in escape):
            raise CodeError(
                field, "percent-encoding", f"'%' must start an escape like %2F; found {raw!r}"
            )
    try:
        return unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise CodeError(field, "percent-encoding", "escapes do not decode as UTF-8") from None


def parse_query(raw_query: str) -> tuple[dict[str, str], dict[str, str]]:
    """(data attributes by AI, other parameters) of a Digital Link query string.

    Non-numeric parameters (linkType, context, lang, …) are not GS1 data and are returned
    apart; the first value of each wins. A repeated AI is an error."""
    attributes: dict[str, str] = {}
    others: dict[str, str] = {}
    for part in raw_query.split("&") if raw_query else ():
        if not part:
            continue
        raw_key, _, raw_value = part.partition("=")
        key = decode_component(raw_key, "query")
        if _DIGITS.fullmatch(key):
            field = f"?{key}"
            if key in attributes:
                raise CodeError(field, "ai-repeated", f"AI {key} appears twice in the query")
            attributes[key] = check_attribute(key, decode_component(raw_value, field), field)
        else:
            others.setdefault(key, decode_component(raw_value.replace("+", " "), key))
    return dict(sorted(attributes.items(), key=lambda kv: (len(kv[0]), kv[0]))), others


def check_attributes(given: object, field: str = "attributes") -> dict[str, str]:
    """Data attributes given as a JSON object {AI: value} (issuance requests)."""
    if given is None:
        return {}
    if not isinstance(given, dict):
        raise CodeError(field, "schema", 'expected an object like {"7007": "261103"}')
    out = {}
    for ai, value in given.items():
        if not isinstance(value, str):
            raise CodeError(f"{field}.{ai}", "schema", "expected a string value")
        out[str(ai)] = check_attribute(str(ai), value, f"{field}.{ai}")
    return dict(sorted(out.items(), key=lambda kv: (len(kv[0]), kv[0])))


def display_date(ai: str, value: str) -> str:
    """YYMMDD (or a YYMMDD range, or YYMMDDHHMM) as ISO dates; DD 00 is the month's end."""

    def one(text: str) -> str:
        year, month, day = 2000 + int(text[:2]), int(text[2:4]), int(text[4:6])
        day = day or calendar.monthrange(year, month)[1]
        return f"{year:04d}-{month:02d}-{day:02d}"

    spec = SPECS.get(ai)
    if spec is None:
        return value
    if spec.kind == "date":
        return one(value)
    if spec.kind == "date_range":
        return one(value[:6]) + (f" – {one(value[6:])}" if len(value) == 12 else "")
    if spec.kind == "datetime":
        return f"{one(value[:6])} {value[6:8]}:{value[8:10]}"
    if spec.kind == "decimal":
        places = int(ai[-1])
        number = int(value)
        return f"{number / 10**places:g}"
    return value


@dataclass(frozen=True)
class Mismatch:
    """A value on the scanned label that differs from what the batch recorded."""

    ai: str
    scanned: str
    recorded: str


def mismatches(scanned: dict[str, str], recorded: dict[str, str]) -> list[Mismatch]:
    """The scanned label's values (lot as AI 10, data attributes) that the ledger recorded
    otherwise: a genuine serial on a label whose dates were altered is still a warning."""
    return [
        Mismatch(ai, value, recorded[ai])
        for ai, value in scanned.items()
        if ai in recorded and recorded[ai] != value
    ]
