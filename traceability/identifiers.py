"""One canonical key for every identifier the chain compares or indexes, however spelled.

GS1 lets one key be written many ways: a Digital Link on any resolver's host, over http
or https, with or without the lot before the serial, with data attributes, with the short
names of Digital Link 1.0 (`/gtin/…/lot/…/ser/…`), a GTIN-8/12/13 unpadded, or an EPC URN.
Rules (recall), the store's product index and the API's event index compare the key, so
every spelling of one thing finds the same events and meets the same refusals.

The canonical key is GS1's canonical Digital Link on id.gs1.org, at the level it names:

* an instance: `https://id.gs1.org/01/{GTIN-14}/21/{serial}` (GTIN and serial identify
  it; a lot or consumer product variant written before the serial is dropped);
* a lot: `https://id.gs1.org/01/{GTIN-14}/10/{lot}`; a product: `…/01/{GTIN-14}`
  (a consumer product variant is not part of the key);
* a logistic unit: `https://id.gs1.org/00/{SSCC}`;
* a location: `https://id.gs1.org/414/{GLN}[/254/{extension}]` (extension "0", the EPC
  URN's "no extension", is no extension).

Values are percent-encoded the one way `digital_link.encode_value` writes them. GTINs are
parsed by `digital_link` itself. EPC URNs (sgtin, lgtin classes, sgtin patterns naming a
class, sscc, sgln) are translated by GS1's EPCIS hash normaliser, then keyed like any
Digital Link; it also keys the other GS1 keys (GRAI, GIAI, …) it knows. Anything else —
another URI, a code with a wrong check digit — is its own key, so no two different
things share one.

A ledger rule depends on it: it is total (never raises) and a function of its input.
`key_problem` says what is wrong with the GS1 key a URI names (its check digit), for the
EPCIS rules.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from epcis_event_hash_generator.dl_normaliser import normaliser

from ledger.identifiers import ProductIndex
from traceability.codes import CodeError
from traceability.codes.attributes import CSET82, decode_component
from traceability.codes.digital_link import CANONICAL_HOST, encode_value, parse_path
from traceability.codes.gtin import check_digit

#: Primary keys keyed here (and their Digital Link short names), with their digit counts.
PRIMARY_KEYS = {"01": "GTIN", "00": "SSCC", "414": "GLN"}
_SHORT_KEYS = {"gtin": "01", "sscc": "00", "gln": "414"}
_LENGTHS = {"01": (8, 12, 13, 14), "00": (18,), "414": (13,)}
_GTIN_QUALIFIERS = frozenset({"22", "10", "21", "cpv", "lot", "ser"})
_GLN_EXTENSION = ("254", "glnx")
_AI = re.compile(r"^\d{2,4}$")
_CACHE = 1 << 16


@dataclass(frozen=True)
class _WebKey:
    """The primary key a Digital Link names and the path pairs after it."""

    ai: str
    value: str  # still percent-encoded
    pairs: tuple[tuple[str, str], ...]


def _web_key(uri: str) -> _WebKey | None:
    """The GTIN, SSCC or GLN an http(s) URI names, or None if it names none of them."""
    parts = urlsplit(uri)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or parts.fragment:
        return None
    segments = parts.path.strip("/").split("/") if parts.path.strip("/") else []
    start = next((i for i, s in enumerate(segments) if s in PRIMARY_KEYS or s in _SHORT_KEYS), None)
    if start is None:
        return None
    rest = segments[start:]
    if len(rest) % 2:
        return None
    pairs = tuple((rest[i], rest[i + 1]) for i in range(2, len(rest), 2))
    return _WebKey(_SHORT_KEYS.get(rest[0], rest[0]), rest[1], pairs)


def _digits_problem(ai: str, raw: str) -> tuple[str, str] | None:
    """(rule, message) if digits of a GS1 length for key `ai` end in a wrong check digit.

    Only digits of the key's lengths are read as the key: `/01/2024` on some site is a
    path, not a broken GTIN."""
    if not raw.isascii() or not raw.isdigit() or len(raw) not in _LENGTHS[ai]:
        return None
    expected = check_digit(raw[:-1])
    if int(raw[-1]) == expected:
        return None
    name = PRIMARY_KEYS[ai]
    return (
        f"{name.lower()}-check-digit",
        f"wrong check digit in {name} {raw}: the last digit should be {expected}, not {raw[-1]}",
    )


def _is_key(ai: str, raw: str) -> bool:
    return raw.isascii() and raw.isdigit() and len(raw) in _LENGTHS[ai]


def key_problem(identifier: str) -> tuple[str, str] | None:
    """(rule, message) if `identifier` is a Digital Link whose GTIN, SSCC or GLN has a
    wrong check digit; None otherwise. EPC URNs carry no check digit (their company prefix
    and reference are split and the digit is computed), so they have nothing to check."""
    try:
        key = _web_key(identifier)
        return None if key is None else _digits_problem(key.ai, unquote(key.value))
    except Exception:  # an identifier this cannot read has no GS1 key to check
        return None


def _gtin_key(key: _WebKey) -> str | None:
    qualifiers = [(ai, v) for ai, v in key.pairs if ai in _GTIN_QUALIFIERS]
    attributes = [ai for ai, _ in key.pairs if ai not in _GTIN_QUALIFIERS]
    if any(not _AI.fullmatch(ai) for ai in attributes):
        return None
    path = "/01/" + key.value + "".join(f"/{ai}/{v}" for ai, v in qualifiers)
    link = parse_path(path)
    return link.instance_id or link.lot_id or link.product_id


def _sscc_key(key: _WebKey) -> str | None:
    raw = decode_component(key.value, "/00")
    if not _is_key("00", raw) or _digits_problem("00", raw) is not None:
        return None
    if any(not _AI.fullmatch(ai) for ai, _ in key.pairs):
        return None
    return f"https://{CANONICAL_HOST}/00/{raw}"


def _gln_key(key: _WebKey) -> str | None:
    raw = decode_component(key.value, "/414")
    if not _is_key("414", raw) or _digits_problem("414", raw) is not None:
        return None
    extension = None
    for ai, value in key.pairs:
        if ai in _GLN_EXTENSION and extension is None:
            extension = decode_component(value, "/254")
        elif not _AI.fullmatch(ai):
            return None
    out = f"https://{CANONICAL_HOST}/414/{raw}"
    if extension is None or extension == "0":
        return out
    if not 1 <= len(extension) <= 20 or any(c not in CSET82 for c in extension):
        return None
    return f"{out}/254/{encode_value(extension)}"


_KEYERS = {"01": _gtin_key, "00": _sscc_key, "414": _gln_key}


def _digital_link_key(key: _WebKey) -> str | None:
    try:
        return _KEYERS[key.ai](key)
    except CodeError:
        return None


@functools.lru_cache(maxsize=_CACHE)
def _canonical(identifier: str) -> str:
    try:
        key = _web_key(identifier)
        if key is not None:
            return _digital_link_key(key) or identifier
        if not identifier.startswith(("urn:epc:", "http://", "https://")):
            return identifier
        translated = normaliser(identifier)
        if translated is None:
            return identifier
        key = _web_key(translated)
        if key is None:
            return translated  # another GS1 key (GRAI, GIAI, …) in GS1's canonical form
        # Only an EPC URN names a GTIN, SSCC or GLN that the Digital Link reading missed.
        if not identifier.startswith("urn:epc:"):
            return identifier
        return _digital_link_key(key) or identifier
    except Exception:  # a rule input: an identifier that breaks a parser is its own key
        return identifier


def canonical_key(identifier: str) -> str:
    """The canonical key of `identifier` (itself if it is not a GS1 key this knows).

    Memoised: a pure function, and classes, lots and locations recur event after event."""
    if not isinstance(identifier, str):
        return identifier
    return _canonical(identifier)


#: The store's product index keyed by the canonical key (`ledger.identifiers`); the name
#: changes whenever the key of some identifier would, so stores re-key once.
PRODUCT_INDEX = ProductIndex("gs1-canonical/1", canonical_key)
