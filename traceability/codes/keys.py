"""The GS1 primary keys the resolver answers besides GTINs: SSCC (AI 00, a carton or
pallet) and GLN (AI 414, a place, with its extension AI 254), and the spelling of any
of the three from decompressed element strings or a legacy short name.

GTIN Digital Links keep their own parser (`digital_link.parse_path`), which the ledger's
identifier keys depend on; this module never changes what it accepts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from traceability.codes import CodeError
from traceability.codes.attributes import CSET82, decode_component, parse_query
from traceability.codes.digital_link import CANONICAL_HOST, DigitalLink, encode_value, parse_path
from traceability.codes.gtin import check_digit

#: Primary keys this resolver answers, their names and digit counts.
KEYS = {"01": ("GTIN", 14), "00": ("SSCC", 18), "414": ("GLN", 13)}
#: Key qualifiers of each key, in the order the standard requires.
KEY_QUALIFIERS = {"01": ("22", "10", "21"), "00": (), "414": ("254",)}
#: Short names of Digital Link 1.0–1.2 (removed in 1.3), answered with a redirect.
SHORT_NAMES = {
    "gtin": "01",
    "cpv": "22",
    "lot": "10",
    "ser": "21",
    "sscc": "00",
    "gln": "414",
    "glnx": "254",
}


@dataclass(frozen=True)
class KeyLink:
    """An SSCC or a GLN (with its extension) as a Digital Link."""

    ai: str  # "00" or "414"
    value: str
    extension: str | None = None
    attributes: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def name(self) -> str:
        return KEYS[self.ai][0]

    @property
    def level(self) -> str:
        return "extension" if self.extension is not None else "key"

    def path(self) -> str:
        extension = f"/254/{encode_value(self.extension)}" if self.extension is not None else ""
        return f"/{self.ai}/{self.value}{extension}"

    def uri(self, host: str = CANONICAL_HOST) -> str:
        base = host if "://" in host else f"https://{host}"
        return base + self.path()

    @property
    def identifier(self) -> str:
        """The canonical key the event index keys this by (`traceability.identifiers`)."""
        return f"https://{CANONICAL_HOST}{self.path()}"

    def up(self) -> KeyLink:
        """The next level up the tree: the GLN without its extension."""
        return KeyLink(self.ai, self.value)


def _digits(ai: str, raw: str) -> str:
    name, length = KEYS[ai]
    where = f"/{ai}"
    if not raw.isascii() or not raw.isdigit() or len(raw) != length:
        raise CodeError(where, f"{name.lower()}-format", f"a {name} has {length} digits")
    expected = check_digit(raw[:-1])
    if int(raw[-1]) != expected:
        raise CodeError(
            where,
            f"{name.lower()}-check-digit",
            f"wrong check digit in {name} {raw}: the last digit should be {expected}, "
            f"not {raw[-1]}",
        )
    return raw


def parse_key(raw_path: str, raw_query: str = "") -> DigitalLink | KeyLink:
    """The Digital Link of a request path (still percent-encoded) whose first segment is
    a primary key: GTINs through `parse_path`, SSCCs and GLNs here."""
    segments = raw_path.strip("/").split("/")
    ai = segments[0]
    if ai not in ("00", "414"):
        return parse_path(raw_path, raw_query)
    if len(segments) % 2:
        raise CodeError(
            "path", "ai-value-pairs", f"AI {segments[-1]!r} has no value: the path ends after it"
        )
    value = _digits(ai, decode_component(segments[1], f"/{ai}"))
    extension = None
    pairs = segments[2:]
    if pairs:
        qualifier, raw = pairs[0], pairs[1] if len(pairs) > 1 else ""
        if ai != "414" or qualifier != "254" or len(pairs) > 2:
            allowed = "no key qualifier" if ai == "00" else "one qualifier, 254 (extension)"
            raise CodeError(
                f"/{qualifier}",
                "ai-not-qualifier",
                f"a {KEYS[ai][0]} takes {allowed}; data attributes go in the query string",
            )
        extension = decode_component(raw, "/254")
        if not 1 <= len(extension) <= 20 or any(c not in CSET82 for c in extension):
            raise CodeError(
                "/254", "ai-charset", "a GLN extension has 1 to 20 characters of GS1 set 82"
            )
    attributes, _ = parse_query(raw_query)
    return KeyLink(ai, value, extension, attributes)


def canonical_path(raw_path: str) -> str | None:
    """The numeric spelling of a path written with Digital Link 1.x short names
    (`/gtin/…/lot/…/ser/…`), or None if it has none."""
    segments = raw_path.strip("/").split("/")
    if not segments or segments[0] not in SHORT_NAMES:
        return None
    named = [SHORT_NAMES.get(s, s) if i % 2 == 0 else s for i, s in enumerate(segments)]
    return "/" + "/".join(named)


def uncompressed(elements: list[tuple[str, str]], others: list[tuple[str, str]]) -> str:
    """The uncompressed path and query of decompressed element strings: the primary key
    and its qualifiers in the path, in the standard's order; the rest in the query."""
    values = dict(elements)
    key = next((ai for ai in KEYS if ai in values), None)
    if key is None:
        raise CodeError(
            "path", "compression", "the compressed Digital Link names no GTIN, SSCC or GLN"
        )
    path = f"/{key}/{encode_value(values.pop(key))}"
    for qualifier in KEY_QUALIFIERS[key]:
        if qualifier in values:
            path += f"/{qualifier}/{encode_value(values.pop(qualifier))}"
    query = [f"{ai}={encode_value(v)}" for ai, v in values.items()]
    query += [f"{encode_value(k)}={encode_value(v)}" for k, v in others]
    return path + ("?" + "&".join(query) if query else "")
