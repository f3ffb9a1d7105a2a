"""SSCC and GLN Digital Links: the page of a carton or pallet (`/00/{SSCC}`: what was
packed into it, from its aggregation events, and where it went) and of a place
(`/414/{GLN}[/254/{extension}]`: the member that holds the GLN's company prefix, or else
the members that recorded there, and what they recorded).

Both answer like a GTIN code: HEAD, the linkset, `?linkType=` with a 307 or a 404, a
400 for a malformed key, a 404 when the ledger records nothing about it; an unknown GLN
extension walks up to its GLN.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

from traceability.codes import CodeError
from traceability.codes.digital_link import DigitalLink, parse_uri
from traceability.codes.journey import Party, Step, event_step
from traceability.codes.keys import KeyLink, parse_key
from traceability.codes.links import CONTEXT, key_levels
from traceability.epcis.index import IndexedEvent, canonical_identifier
from traceability.epcis.query import EventQuery, run_query

from ..codes.pages import render
from ..errors import ApiError
from ..services import Svc
from .resolver import Codes, Resolution, _resolve, _resolver_responses

router = APIRouter(tags=["Resolver"])
#: At most this many events a page reads (a busy dock's history is the audit API's job).
MAX_EVENTS = 200


def _events(res: Resolution, filters: dict[str, list[str]]) -> list[IndexedEvent]:
    found, _ = run_query(res.svc.index, EventQuery(filters, per_page=MAX_EVENTS))
    return found


def _steps(res: Resolution, found: list[IndexedEvent]) -> list[Step]:
    membership = res.svc.node.membership
    steps = [
        event_step(
            {
                "event": e.event,
                "transaction": e.tx_id,
                "height": e.height,
                "logIndex": e.log_index,
                "eventID": e.event_id,
            },
            e.signer,
            membership,
        )
        for e in found
    ]
    return sorted(steps, key=lambda s: (s.time, s.log_index))


def _contents(sscc: str, found: list[IndexedEvent]) -> list[dict[str, Any]]:
    """What aggregation events packed into the carton and did not take out again."""
    inside: dict[str, dict[str, Any]] = {}
    for e in sorted(found, key=lambda e: e.log_index):
        event = e.event
        parent = event.get("parentID")
        if event.get("type") != "AggregationEvent" or not isinstance(parent, str):
            continue
        if canonical_identifier(parent) != sscc:
            continue
        children = [c for c in event.get("childEPCs") or () if isinstance(c, str)]
        for child in children:
            if event.get("action") == "DELETE":
                inside.pop(child, None)
            else:
                inside[child] = _child(child)
    return list(inside.values())


def _child(child: str) -> dict[str, Any]:
    """A packed item or box, with the page it has on this resolver if it has one."""
    try:
        link = parse_uri(child)
    except CodeError:
        key = canonical_identifier(child)
        href = key.split("id.gs1.org", 1)[1] if key.startswith("https://id.gs1.org/00/") else None
        sscc = key.rsplit("/", 1)[1] if href else None
        return {"id": child, "href": href, "gtin": None, "serial": None, "sscc": sscc}
    return {
        "id": child,
        "href": link.path(),
        "gtin": link.gtin,
        "serial": link.serial,
        "sscc": None,
    }


def _holders(res: Resolution, key: KeyLink, steps: list[Step]) -> list[Party]:
    """The member holding the GLN's company prefix; else those that recorded there."""
    membership = res.svc.node.membership
    grant = membership.prefix_owner(key.value, res.svc.node.store.height())
    if grant is not None:
        org = membership.organizations.get(grant.org)
        if org is not None:
            return [Party(org.id, {"en": org.name, "zh": org.name_zh or org.name}, "", "")]
    seen: dict[str, Party] = {}
    for step in steps:
        seen.setdefault(step.party.org, step.party)
    return list(seen.values())


def resolve_key(res: Resolution, key: KeyLink) -> Response:
    """Answer an SSCC or GLN Digital Link."""
    if key.ai == "00":
        found = _events(res, {"MATCH_anyEPC": [key.identifier]})
    else:
        found = _events(res, {"EQ_bizLocation": [key.identifier]})
        found += [
            e
            for e in _events(res, {"EQ_readPoint": [key.identifier]})
            if e.log_index not in {f.log_index for f in found}
        ]
    if not found:
        if key.extension is not None:
            return res.redirect(key.up().path())  # an unknown extension: walk up
        if res.media == "text/html" and res.link_type is None and not res.wants_linkset():
            return res.not_genuine(key.uri(res.codes.settings.resolver_host), None, 404)
        raise ApiError(
            "not_found", f"{key.uri()}: the ledger records nothing about this {key.name}"
        )
    host = res.codes.settings.resolver_host
    levels = key_levels(key, res.base, host, None)
    answer = res.links_answer(key.path(), levels)
    if answer is not None:
        return answer
    steps = _steps(res, found)
    contents = _contents(key.identifier, found) if key.ai == "00" else []
    holders = _holders(res, key, steps) if key.ai == "414" else []
    headers = res.headers(key.path())
    if res.media != "text/html" or res.params.get("format") == "json":
        doc = {
            "@context": CONTEXT,
            "@id": key.uri(host),
            "@type": "gs1:Place" if key.ai == "414" else "gs1:LogisticUnit",
            "contents": contents,
            "holders": [p.to_json() for p in holders],
            "events": [s.to_json() for s in steps],
            "links": {k: v for level in levels for k, v in level.links.items()},
        }
        return JSONResponse(doc, headers=headers)
    other = "en" if res.t.lang == "zh" else "zh"
    html = render(
        "carton.html" if key.ai == "00" else "place.html",
        res.t,
        key=key,
        contents=contents,
        holders=holders,
        steps=steps,
        other_lang_url=res.own_url(lang=other),
        linkset_url=res.own_url(linkType="linkset", lang=None),
    )
    return HTMLResponse(html, headers=headers)


def resolve_link(res: Resolution, link: DigitalLink | KeyLink) -> Response:
    """Answer any parsed key: a decompressed URI or a key route."""
    return _resolve(res, link) if isinstance(link, DigitalLink) else resolve_key(res, link)


def _answer(request: Request, svc: Svc, codes: Codes) -> Response:
    res = Resolution(request, svc, codes)
    try:
        key = parse_key(res.raw_path, res.raw_query)
    except CodeError as exc:
        return res.invalid(exc)
    return resolve_link(res, key)


@router.head("/00/{code:path}", include_in_schema=False)
@router.get(
    "/00/{code:path}",
    summary="Resolve an SSCC: a carton's or pallet's contents and journey",
    response_class=HTMLResponse,
    responses=_resolver_responses(),
)
def resolve_sscc(
    request: Request,
    svc: Svc,
    codes: Codes,
    code: str = Path(description="the 18-digit SSCC"),
) -> Response:
    return _answer(request, svc, codes)


@router.head("/414/{code:path}", include_in_schema=False)
@router.get(
    "/414/{code:path}",
    summary="Resolve a GLN: the place, the member that holds it and what was recorded there",
    response_class=HTMLResponse,
    responses=_resolver_responses(),
)
def resolve_gln(
    request: Request,
    svc: Svc,
    codes: Codes,
    code: str = Path(description="the 13-digit GLN, then /254/{extension} if any"),
) -> Response:
    return _answer(request, svc, codes)
