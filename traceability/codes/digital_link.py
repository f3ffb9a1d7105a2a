"""GS1 Digital Link URIs of trade items: `https://{host}/01/{GTIN-14}[/22/{cpv}][/10/{lot}]
[/21/{serial}][?{AI}={value}&…]`.

Parsing is strict where the standard is (GTIN check digit, the order of key qualifiers
22 → 10 → 21, GS1 character set 82, lengths, data attributes in the query string) and
every refusal names the segment and the rule. Formatting produces one spelling: GTIN-14,
qualifiers in order, and percent-encoding of every character except A–Z a–z 0–9 - . _
(the Digital Link grammar lets only those stand unencoded).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from traceability.codes import CodeError
from traceability.codes.attributes import CSET82, check_attributes, decode_component, parse_query
from traceability.codes.gtin import normalize_gtin

#: GS1's canonical domain, used for identifiers stored on the ledger.
CANONICAL_HOST = "id.gs1.org"
#: Key qualifiers of a GTIN in the order the standard requires, and their limits.
QUALIFIERS = {"22": ("consumer product variant", 20), "10": ("lot", 20), "21": ("serial", 20)}
ORDER = tuple(QUALIFIERS)
#: Short names of Digital Link 1.0–1.2, accepted on input and written as numbers.
SHORT_NAMES = {"gtin": "01", "cpv": "22", "lot": "10", "ser": "21"}
#: Primary keys this resolver does not answer, for a clear message.
OTHER_KEYS = {
    "00": "SSCC",
    "253": "GDTI",
    "255": "GCN",
    "401": "GINC",
    "402": "GSIN",
    "414": "GLN",
    "417": "party GLN",
    "8003": "GRAI",
    "8004": "GIAI",
    "8006": "ITIP",
    "8010": "CPID",
    "8013": "GMN",
    "8017": "GSRN provider",
    "8018": "GSRN",
}
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._")
_URI_CHARS = re.compile(r"^[A-Za-z0-9\-._~%!$&'()*+,;=:@/]*$")


def encode_value(value: str) -> str:
    """Percent-encode an AI value the Digital Link way (uppercase hex)."""
    return "".join(c if c in _SAFE else "".join(f"%{b:02X}" for b in c.encode()) for c in value)


@dataclass(frozen=True)
class DigitalLink:
    gtin: str  # GTIN-14
    lot: str | None = None
    serial: str | None = None
    cpv: str | None = None
    attributes: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    # -- spelling ---------------------------------------------------------------------
    def path(self) -> str:
        out = f"/01/{self.gtin}"
        for ai, value in (("22", self.cpv), ("10", self.lot), ("21", self.serial)):
            if value is not None:
                out += f"/{ai}/{encode_value(value)}"
        return out

    def query(self) -> str:
        return "&".join(f"{ai}={encode_value(v)}" for ai, v in self.attributes.items())

    def uri(self, host: str = CANONICAL_HOST, *, attributes: bool = True) -> str:
        """The URI on resolver `host`: a host name (https) or a base URL with its scheme
        (`http://192.168.1.20:8601`, what a demo on a LAN serves)."""
        query = self.query() if attributes else ""
        base = host if "://" in host else f"https://{host}"
        return f"{base}{self.path()}" + (f"?{query}" if query else "")

    # -- identifiers on the ledger (GS1 canonical form, as EPCIS indexes them) ---------
    @property
    def product_id(self) -> str:
        return f"https://{CANONICAL_HOST}/01/{self.gtin}"

    @property
    def lot_id(self) -> str | None:
        if self.lot is None:
            return None
        return f"https://{CANONICAL_HOST}/01/{self.gtin}/10/{encode_value(self.lot)}"

    @property
    def instance_id(self) -> str | None:
        """The serialised item (GS1's canonical instance form drops the lot)."""
        if self.serial is None:
            return None
        return f"https://{CANONICAL_HOST}/01/{self.gtin}/21/{encode_value(self.serial)}"

    @property
    def level(self) -> str:
        return "item" if self.serial else "lot" if self.lot else "product"

    def without_attributes(self) -> DigitalLink:
        return replace(self, attributes={})


def _check_value(ai: str, value: str, where: str) -> str:
    name, limit = QUALIFIERS[ai]
    bad = next((c for c in value if c not in CSET82), None)
    if bad is not None:
        shown = repr(bad) if bad.isprintable() and bad != " " else f"U+{ord(bad):04X}"
        raise CodeError(
            where,
            "ai-charset",
            f"character {shown} is not allowed in a GS1 {name} (AI {ai}); only the 82 "
            "characters of GS1 character set 82 are",
        )
    if not 1 <= len(value) <= limit:
        raise CodeError(
            where,
            "ai-length",
            f"a GS1 {name} (AI {ai}) has 1 to {limit} characters; this one has {len(value)}",
        )
    return value


def parse_path(raw_path: str, raw_query: str = "") -> DigitalLink:
    """A Digital Link from the path (still percent-encoded) and query of a request.

    The path may carry a prefix of the resolver's own before the GTIN (`/p/01/…`)."""
    if not _URI_CHARS.fullmatch(raw_path):
        bad = next(c for c in raw_path if not _URI_CHARS.fullmatch(c))
        shown = repr(bad) if bad.isprintable() and bad != " " else f"U+{ord(bad):04X}"
        raise CodeError(
            "path", "uri-character", f"character {shown} may not appear in a URI unencoded"
        )
    segments = raw_path.strip("/").split("/") if raw_path.strip("/") else []
    start = next((i for i, s in enumerate(segments) if s in ("01", "gtin")), None)
    if start is None:
        other = next((s for s in segments if s in OTHER_KEYS), None)
        if other is not None:
            raise CodeError(
                "path",
                "unsupported-key",
                f"this resolver answers GTIN codes (AI 01); AI {other} ({OTHER_KEYS[other]}) "
                "is not served here",
            )
        raise CodeError(
            "path",
            "no-primary-key",
            "not a GS1 Digital Link: expected /01/{GTIN} (compressed Digital Link URIs are "
            "not supported)",
        )
    pairs = segments[start:]
    if len(pairs) % 2:
        raise CodeError(
            "path", "ai-value-pairs", f"AI {pairs[-1]!r} has no value: the path ends after it"
        )
    gtin = normalize_gtin(decode_component(pairs[1], "/01"), "/01")
    values: dict[str, str] = {}
    last = -1
    for i in range(2, len(pairs), 2):
        ai = SHORT_NAMES.get(pairs[i], pairs[i])
        where = f"/{ai}"
        if ai not in QUALIFIERS:
            if re.fullmatch(r"\d{2,4}", ai):
                raise CodeError(
                    where,
                    "ai-not-qualifier",
                    f"AI {ai} is not a key qualifier of a GTIN (22, 10, 21); data attributes "
                    f"go in the query string, e.g. ?{ai}=…",
                )
            raise CodeError(
                where, "ai-unknown", f"{pairs[i]!r} is not a GS1 Application Identifier"
            )
        if ai in values:
            raise CodeError(where, "ai-repeated", f"AI {ai} appears twice in the path")
        position = ORDER.index(ai)
        if position < last:
            after = ORDER[last]
            raise CodeError(
                where,
                "qualifier-order",
                f"key qualifiers out of order: AI {ai} ({QUALIFIERS[ai][0]}) must come before "
                f"AI {after} ({QUALIFIERS[after][0]}); the order is /22/…/10/…/21/…",
            )
        last = position
        values[ai] = _check_value(ai, decode_component(pairs[i + 1], where), where)
    attributes, _ = parse_query(raw_query)
    return DigitalLink(gtin, values.get("10"), values.get("21"), values.get("22"), attributes)


def parse_uri(uri: str, field: str = "uri") -> DigitalLink:
    """A whole Digital Link URI (http or https, any host)."""
    if not isinstance(uri, str) or len(uri) > 2048:
        raise CodeError(field, "uri", "expected a Digital Link URI of at most 2048 characters")
    parts = urlsplit(uri.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise CodeError(field, "uri-scheme", "a Digital Link starts with https://{host}/")
    if parts.fragment:
        raise CodeError(field, "uri-fragment", "a Digital Link has no #fragment")
    return parse_path(parts.path, parts.query)


def build(
    gtin: str,
    lot: str | None = None,
    serial: str | None = None,
    attributes: dict[str, str] | None = None,
) -> DigitalLink:
    """A checked Digital Link from plain values (GTIN of any length)."""
    return DigitalLink(
        normalize_gtin(gtin),
        None if lot is None else _check_value("10", lot, "lot"),
        None if serial is None else _check_value("21", serial, "serial"),
        attributes=check_attributes(attributes),
    )
