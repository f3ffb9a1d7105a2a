"""The resolver's links: GS1 link types, the RFC 9264 linkset of a key at every level up to
the primary key, and the resolver description file (`/.well-known/gs1resolver`).

Link types follow the GS1 Web Vocabulary. Each level (an item, its lot, its product; a
GLN extension, its GLN; an SSCC) has one default link, its own page on this node, typed
`gs1:defaultLink` as well as by what it is (`gs1:pip`, `gs1:traceability`,
`gs1:locationInfo`). A requested type a level does not have is looked for up the tree;
absent everywhere it is a 404, never the default page (GS1-Conformant Resolver).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from traceability.codes.digital_link import DigitalLink
from traceability.codes.keys import KEYS, KeyLink

GS1 = "https://gs1.org/voc/"
#: GS1's JSON-LD context for linksets (immutable version of the resolver standard 1.2.0).
LINKSET_CONTEXT = "https://ref.gs1.org/standards/resolver/1.2.0/linkset-context"
JSONLD_CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"
DEFAULT_TYPE = "gs1:pip"
DEFAULT_LINK = "gs1:defaultLink"
#: linkType values that ask for the linkset (`all` is the deprecated name).
LINKSET_TYPES = ("linkset", "all")
#: Link types this resolver serves, for the description file.
TYPES = (
    "gs1:pip",
    "gs1:verificationService",
    "gs1:traceability",
    "gs1:epcis",
    "gs1:certificationInfo",
    "gs1:locationInfo",
    DEFAULT_LINK,
)
#: The query that asks the resolver for the JSON verdict of a code (its verification link).
JSON_FORMAT = "format=json"
CONTEXT = {
    "@vocab": "https://ns.parktrace.example/resolver/",
    "gs1": GS1,
    "schema": "https://schema.org/",
    "pt": "https://ns.parktrace.example/epcis/",
}
_LANGS = ["zh", "en"]


def normalize_type(value: str | None) -> str | None:
    """'gs1:pip' for 'gs1:pip', 'https://gs1.org/voc/pip' or 'https://ref.gs1.org/voc/pip';
    'linkset' for 'linkset' or 'all'; None if absent."""
    if not value:
        return None
    if value in LINKSET_TYPES:
        return "linkset"
    for namespace in (GS1, "https://ref.gs1.org/voc/", "https://www.gs1.org/voc/"):
        if value.startswith(namespace):
            return "gs1:" + value[len(namespace) :]
    return value


def _link(href: str, title: str, media: str, langs: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"href": href, "title": title, "type": media}
    if langs:
        out["hreflang"] = langs
    return out


@dataclass
class Level:
    """The links of one level of a key: its anchor (the Digital Link of that level on the
    resolver's host) and its links by type, the default first."""

    anchor: str
    default: str  # the link type whose first link is the default
    links: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    description: str | None = None

    def to_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"anchor": self.anchor}
        if self.description:
            entry["description"] = self.description
        for kind, items in self.links.items():
            entry[GS1 + kind.split(":", 1)[1]] = items
        first = self.links[self.default][0]
        entry[GS1 + "defaultLink"] = [{"href": first["href"], "title": first["title"]}]
        return entry


def _page(base: str, path: str, title: str, kind: str = DEFAULT_TYPE) -> dict[str, list]:
    return {kind: [_link(base + path, title, "text/html", _LANGS)]}


def _epcis(base: str, match: str, subject: str) -> dict[str, list]:
    href = f"{base}/events?{urlencode({match: subject})}"
    return {"gs1:epcis": [_link(href, "EPCIS 2.0 events", "application/ld+json")]}


def _history(base: str, subject: str) -> dict[str, list]:
    href = f"{base}/v1/products/{quote(subject, safe='')}/history"
    return {"gs1:traceability": [_link(href, "Full EPCIS history (JSON)", "application/json")]}


def gtin_levels(
    link: DigitalLink, base: str, host: str, certificates: list[str], description: str | None
) -> list[Level]:
    """The levels of a GTIN Digital Link, most granular first: item, lot, product."""
    product = DigitalLink(link.gtin)
    levels: list[Level] = []
    if link.serial is not None:
        item = link.without_attributes()
        page = item.path()
        links = {
            **_page(base, page, "Product journey and authenticity / 产品溯源与验真"),
            "gs1:verificationService": [
                _link(
                    f"{base}{page}?{JSON_FORMAT}",
                    "Authenticity and scan check (JSON)",
                    "application/json",
                )
            ],
            **_history(base, link.instance_id or ""),
            **_epcis(base, "MATCH_anyEPC", link.instance_id or ""),
        }
        levels.append(Level(item.uri(host, attributes=False), DEFAULT_TYPE, links, description))
    if link.lot is not None:
        lot = DigitalLink(link.gtin, link.lot)
        links = {
            **_page(base, lot.path(), "Lot journey / 批次溯源"),
            **_history(base, link.lot_id or ""),
            **_epcis(base, "MATCH_anyEPCClass", link.lot_id or ""),
        }
        if certificates:
            links["gs1:certificationInfo"] = [
                _link(url, "Certificate or inspection report", "text/html") for url in certificates
            ]
        levels.append(Level(lot.uri(host, attributes=False), DEFAULT_TYPE, links, description))
    links = _page(base, product.path(), "Lots on the ledger / 账本上的批次")
    levels.append(Level(product.uri(host, attributes=False), DEFAULT_TYPE, links, description))
    return levels


def key_levels(key: KeyLink, base: str, host: str, description: str | None) -> list[Level]:
    """The levels of an SSCC (one) or a GLN (its extension, then the GLN)."""
    if key.ai == "00":
        links = {
            **_page(base, key.path(), "Carton contents / 物流单元内容", "gs1:traceability"),
            **_epcis(base, "MATCH_anyEPC", key.identifier),
        }
        return [Level(key.uri(host), "gs1:traceability", links, description)]
    levels = []
    for level in (key, key.up()) if key.extension is not None else (key,):
        links = {
            **_page(base, level.path(), "Place and its records / 地点与记录", "gs1:locationInfo"),
            **_epcis(base, "EQ_bizLocation", level.identifier),
        }
        levels.append(Level(level.uri(host), "gs1:locationInfo", links, description))
    return levels


def find(levels: list[Level], kind: str) -> dict[str, Any] | None:
    """The first link of `kind`, from the most granular level up; None if none has one."""
    if kind == DEFAULT_LINK:
        return levels[0].links[levels[0].default][0] if levels else None
    for level in levels:
        if level.links.get(kind):
            return level.links[kind][0]
    return None


def linkset(levels: list[Level]) -> dict[str, Any]:
    """RFC 9264 JSON linkset; relation types as GS1 Web Vocabulary URIs."""
    return {"linkset": [level.to_json() for level in levels]}


def link_header(linkset_url: str, *, context: bool = False, same_as: str | None = None) -> str:
    """The Link header of every answer: the linkset (even when redirecting), its JSON-LD
    context on a linkset, the uncompressed URI when the request was compressed."""
    links = [f'<{linkset_url}>; rel="linkset"; type="application/linkset+json"']
    if context:
        links.append(f'<{LINKSET_CONTEXT}>; rel="{JSONLD_CONTEXT_REL}"; type="application/ld+json"')
    if same_as:
        links.append(f'<{same_as}>; rel="owl:sameAs"')
    return ", ".join(links)


def description_file(root: str, name: str) -> dict[str, Any]:
    """The resolver description file of GS1-Conformant Resolver 1.x."""
    return {
        "name": name,
        "resolverRoot": root,
        "supportedPrimaryKeys": list(KEYS),
        "supportedLinkType": [{"namespace": GS1, "prefix": "gs1:"}],
        "linkTypes": list(TYPES),
        "linkTypeDefaultCanBeLinkset": False,
        "jsonLdContextLocation": LINKSET_CONTEXT,
    }
