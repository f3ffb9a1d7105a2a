"""The resolver's links and machine-readable answers: GS1 link types, the RFC 9264
linkset of a code (`?linkType=all`), and the JSON-LD document of the consumer page.

Link types follow the GS1 Web Vocabulary (`gs1:pip` product information page — the
default —, `gs1:traceability`, `gs1:epcis`, `gs1:certificationInfo`,
`gs1:verificationService`). A request for a type this code has no link of gets the
default link, as a GS1-conformant resolver answers.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from traceability.codes.digital_link import DigitalLink

GS1 = "https://gs1.org/voc/"
DEFAULT_TYPE = "gs1:pip"
TYPES = (
    "gs1:pip",
    "gs1:verificationService",
    "gs1:traceability",
    "gs1:epcis",
    "gs1:certificationInfo",
)
CONTEXT = {
    "@vocab": "https://ns.parktrace.example/resolver/",
    "gs1": GS1,
    "schema": "https://schema.org/",
    "pt": "https://ns.parktrace.example/epcis/",
}


def normalize_type(value: str | None) -> str | None:
    """'gs1:pip' for 'gs1:pip' or 'https://gs1.org/voc/pip'; 'all'; None if absent."""
    if not value:
        return None
    if value == "all":
        return "all"
    if value.startswith(GS1):
        return "gs1:" + value[len(GS1) :]
    return value


def targets(
    link: DigitalLink, base: str, certificates: list[str]
) -> dict[str, list[dict[str, Any]]]:
    """Every link of a code, by type: where each points and what it is."""
    subject = link.instance_id or link.lot_id or link.product_id
    page = base + link.path()
    match = "MATCH_anyEPC" if link.instance_id else "MATCH_anyEPCClass"
    found: dict[str, list[dict[str, Any]]] = {
        "gs1:pip": [
            {
                "href": page,
                "title": "Product journey / 产品溯源",
                "type": "text/html",
                "hreflang": ["zh", "en"],
            }
        ],
        "gs1:verificationService": [
            {
                "href": f"{page}?linkType=gs1:verificationService",
                "title": "Authenticity and scan check (JSON)",
                "type": "application/json",
            }
        ],
        "gs1:traceability": [
            {
                "href": f"{base}/v1/products/{quote(subject, safe='')}/history",
                "title": "Full EPCIS history",
                "type": "application/json",
            }
        ],
        "gs1:epcis": [
            {
                "href": f"{base}/events?{urlencode({match: subject})}",
                "title": "EPCIS 2.0 query",
                "type": "application/ld+json",
            }
        ],
    }
    if certificates:
        found["gs1:certificationInfo"] = [
            {"href": url, "title": "Certificate or inspection report"} for url in certificates
        ]
    return found


def linkset(anchor: str, links: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """RFC 9264 JSON linkset; relation types as GS1 Web Vocabulary URIs."""
    entry: dict[str, Any] = {"anchor": anchor}
    for kind, items in links.items():
        entry[GS1 + kind.split(":", 1)[1]] = items
    return {"linkset": [entry]}


def link_header(page: str) -> str:
    return f'<{page}?linkType=all>; rel="linkset"; type="application/linkset+json"'
