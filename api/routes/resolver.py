"""The GS1 Digital Link resolver: what a phone opens when it scans a ParkTrace code.

`GET /01/{GTIN}/10/{lot}/21/{serial}` (and the shorter lot and product forms) answers a
browser with the product's verified journey as a server-rendered page (Chinese or
English by Accept-Language; readable without JavaScript, which only verifies the ledger
proof in the browser), a program with the same data as JSON or JSON-LD, and
`?linkType=` per the Digital Link standard (`all` gives the linkset). Every resolution
of a serialised code is logged in this node's scan log and judged for signs of copying.
A malformed code is a 400 and an unknown one a 404, both explained.
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse

from traceability.audit.recall_status import recall_for
from traceability.codes import CodeError
from traceability.codes.batch import RecordedBatch
from traceability.codes.copies import Verdict, judge
from traceability.codes.digital_link import DigitalLink, parse_path
from traceability.codes.journey import Journey, Party, build_journey, party_of
from traceability.codes.links import (
    CONTEXT,
    DEFAULT_TYPE,
    link_header,
    linkset,
    normalize_type,
    targets,
)
from traceability.codes.regions import region as find_region
from traceability.codes.scanlog import REGION_GRACE, Scan

from ..codes.i18n import Translator, negotiate
from ..codes.pages import (
    STATIC,
    attribute_rows,
    problem_text,
    render,
    verify_messages,
    warning_text,
)
from ..codes.service import Authenticity, CodesService, codes_service
from ..codes.summary import key_steps, origin_of, proof_rows, recall_view, verdict_of
from ..codes.trust_view import trust_view
from ..errors import ApiError, error_responses
from ..services import Services, Svc

router = APIRouter(tags=["Resolver"])
Codes = Annotated[CodesService, Depends(codes_service)]

_MEDIA = ("text/html", "application/ld+json", "application/json", "application/linkset+json")
_STATIC_NAME = re.compile(r"^[a-z0-9-]+\.(css|js|png)$")
_STATIC_TYPES = {"css": "text/css", "js": "text/javascript", "png": "image/png"}
#: Where a shopper reports a product: the national market-supervision complaints platform.
REPORT_URL = "https://www.12315.cn/"
#: Query parameters that are about this request, not the code.
_OWN_PARAMS = ("lang", "scan", "region", "linkType")


def _resolver_responses() -> dict[int | str, dict[str, Any]]:
    """Errors come as JSON to programs and as a "not a genuine code" page to browsers."""
    out: dict[int | str, dict[str, Any]] = {
        200: {
            "description": "The consumer page (text/html) or its data (JSON, JSON-LD, linkset)",
            "content": {media: {} for media in _MEDIA},
        },
        307: {"description": "Redirect to the link of the requested linkType"},
        **error_responses(400, 404),
    }
    for status in (400, 404, 422):
        described = {k: v for k, v in out[status].items() if k != "model"}
        described["content"] = {
            "application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}},
            "text/html": {"schema": {"type": "string"}},
        }
        out[status] = described
    return out


def wanted_media(accept: str | None) -> str:
    """The best of the media types we serve for an Accept header (HTML by default)."""
    best, best_q = "text/html", 0.0
    for position, item in enumerate((accept or "").split(",")):
        media, _, params = item.strip().partition(";")
        media = media.strip().lower()
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        q -= position * 1e-6
        if media in _MEDIA and q > best_q:
            best, best_q = media, q
        elif media in ("text/*", "*/*") and q > best_q:
            best, best_q = "text/html", q
    return best


class Resolution:
    """Everything one request needs, worked out once."""

    def __init__(self, request: Request, svc: Services, codes: CodesService) -> None:
        self.request = request
        self.svc = svc
        self.codes = codes
        self.media = wanted_media(request.headers.get("accept"))
        params = dict(request.query_params)
        self.t = Translator(negotiate(request.headers.get("accept-language"), params.get("lang")))
        self.raw_path = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
        self.raw_query = request.scope.get("query_string", b"").decode("latin-1")
        self.params = params
        self.base = str(request.base_url).rstrip("/")

    def own_url(self, **changes: str | None) -> str:
        kept = [(k, v) for k, v in self.request.query_params.multi_items() if k not in changes]
        kept += [(k, v) for k, v in changes.items() if v is not None]
        return self.raw_path + (f"?{urlencode(kept)}" if kept else "")

    def not_genuine(self, scanned: str, problem: str | None, status: int) -> Response:
        other = "en" if self.t.lang == "zh" else "zh"
        html = render(
            "not_genuine.html",
            self.t,
            problem=problem,
            scanned=scanned,
            other_lang_url=self.own_url(lang=other),
            report_url=REPORT_URL,
        )
        return HTMLResponse(html, status_code=status)


def _scan(res: Resolution, link: DigitalLink, auth: Authenticity) -> tuple[Scan | None, bool]:
    """Log this resolution, or find the scan it follows up (language switch, region form).
    Returns the current scan and whether a region was just added to it."""
    codes, code = res.codes, link.instance_id or ""
    now = codes.now()
    given = find_region(res.params.get("region"))
    follow_up = codes.scans.get(res.params.get("scan", "")[:64])
    if follow_up is not None and follow_up.code == code and now - follow_up.at <= REGION_GRACE:
        added = given is not None and codes.scans.add_region(follow_up.id, code, given.code, now)
        return codes.scans.get(follow_up.id), added
    batch = auth.batch.batch.id if auth.batch else None
    region = given.code if given else None
    return codes.scans.record(code, batch, auth.genuine, now, region), False


def _title(batches: list[RecordedBatch], link: DigitalLink, t: Translator) -> str:
    for recorded in batches:
        if recorded.batch.names:
            return t.text(recorded.batch.names)
    return f"GTIN {link.gtin}"


def _document(
    res: Resolution,
    link: DigitalLink,
    status: str,
    issuer: Party | None,
    batch: RecordedBatch | None,
    batches: list[RecordedBatch],
    journey: Journey | None,
    verdict: Verdict | None,
    links: dict[str, list[dict[str, Any]]],
) -> dict[str, Any]:
    names = next((b.batch.names for b in batches if b.batch.names), {})
    host = res.codes.settings.resolver_host
    doc: dict[str, Any] = {
        "@context": CONTEXT,
        "@id": link.uri(host, attributes=False),
        "@type": "gs1:Product",
        "gs1:gtin": link.gtin,
        "schema:name": [{"@value": v, "@language": k} for k, v in names.items()],
        "level": link.level,
        "dataAttributes": dict(link.attributes),
        "authenticity": {"status": status},
    }
    if link.lot is not None:
        doc["gs1:hasBatchLotNumber"] = link.lot
    if link.serial is not None:
        doc["gs1:hasSerialNumber"] = link.serial
    if batch is not None and issuer is not None:
        doc["authenticity"].update(
            {
                "batch": batch.batch.id,
                "issuedBy": issuer.to_json(),
                "transaction": batch.tx_id,
                "height": batch.height,
            }
        )
    if verdict is not None:
        doc["scans"] = verdict.to_json()
        doc["scans"]["warningText"] = [warning_text(w, res.t) for w in verdict.warnings]
    if journey is not None:
        doc["journey"] = journey.to_json()
    if link.level == "product":
        doc["lots"] = [
            {"lot": b.batch.link.lot, "count": b.batch.count, "transaction": b.tx_id}
            for b in batches
        ]
    doc["ledger"] = {"chainId": res.svc.genesis.chain_id, "height": res.svc.node.store.height()}
    doc["links"] = links
    return doc


def _certificates(journey: Journey | None) -> list[str]:
    urls: list[str] = []
    for step in journey.steps if journey else ():
        urls += [c["url"] for c in step.certificates if c.get("url") and c["url"] not in urls]
    return urls


def _resolve(res: Resolution, link: DigitalLink) -> Response:
    svc, codes, t = res.svc, res.codes, res.t
    store, membership = svc.node.store, svc.node.membership
    link_type = normalize_type(res.params.get("linkType"))
    auth = codes.authenticate(store, membership, link) if link.level == "item" else None
    logs = link_type in (None, DEFAULT_TYPE, "gs1:verificationService") and (
        res.request.method == "GET"
    )
    if auth is not None and auth.status == "unknown":
        if logs:
            codes.scans.record(link.instance_id or "", None, False, codes.now(), None)
        scanned = link.uri(codes.settings.resolver_host)
        message = f"{scanned} is not a genuine code: no batch issued on this ledger contains it"
        if res.media == "text/html" and link_type != "all":
            return res.not_genuine(scanned, None, 404)
        raise ApiError("not_found", message)
    if link.level == "product":
        batches = codes.batches(store, membership, link)
        journey = None
    else:
        batches = codes.batches(store, membership, link)
        ids = [i for i in (link.instance_id, link.lot_id) if i]
        journey = build_journey(svc.index, store, membership, ids, batches)
    if journey is None and not batches:
        scanned = link.uri(codes.settings.resolver_host)
        if res.media == "text/html" and link_type != "all":
            return res.not_genuine(scanned, None, 404)
        raise ApiError(
            "not_found", f"{scanned}: the ledger records nothing about this {link.level}"
        )
    links = targets(link, res.base, _certificates(journey))
    page = res.base + link.path()
    headers = {"Link": link_header(page), "Vary": "Accept, Accept-Language"}
    if link_type == "all":
        return JSONResponse(
            linkset(link.uri(codes.settings.resolver_host, attributes=False), links),
            media_type="application/linkset+json",
            headers=headers,
        )
    if link_type in links and link_type not in (DEFAULT_TYPE, "gs1:verificationService"):
        return RedirectResponse(links[link_type][0]["href"], status_code=307, headers=headers)
    batch = auth.batch if auth is not None else None
    issuer = party_of(membership, batch.signer) if batch else None
    verdict, current, region_added = None, None, False
    if auth is not None and logs:
        current, region_added = _scan(res, link, auth)
        regions = journey.regions if journey else []
        history = codes.scans.history(link.instance_id or "")
        verdict = judge(history, current, regions, codes.settings.rules)
    status = auth.status if auth is not None else link.level
    recall = recall_for(svc, link.instance_id, link.lot_id) if link.level != "product" else None
    if res.media != "text/html" or link_type == "gs1:verificationService":
        doc = _document(res, link, status, issuer, batch, batches, journey, verdict, links)
        doc["recall"] = recall.to_json() if recall else None
        media = "application/ld+json" if res.media == "application/ld+json" else "application/json"
        return JSONResponse(doc, media_type=media, headers=headers)
    other = "en" if t.lang == "zh" else "zh"
    scan_id = current.id if current is not None else None
    title = _title(batches, link, t)
    shown = verdict_of(status, recall, verdict)
    owner = issuer or (party_of(membership, batches[0].signer) if batches else None)
    html = render(
        "product.html",
        t,
        title=title,
        status=status,
        shown=shown,
        owner=owner,
        link=link,
        attributes=attribute_rows(link.attributes, t),
        issuer=issuer,
        batch_height=batch.height if batch else None,
        verdict=verdict,
        region_added=region_added,
        journey=journey,
        origin=origin_of(journey),
        trust=trust_view(svc, journey),
        key_steps=key_steps(journey),
        proofs=proof_rows(journey),
        recall=recall_view(recall, link.lot),
        lots=[
            {
                "lot": b.batch.link.lot,
                "count": f"{b.batch.count:,}",
                "href": b.batch.link.path(),
            }
            for b in batches
        ]
        if link.level == "product"
        else [],
        scan_id=scan_id,
        form_action=res.raw_path,
        form_hidden=[(k, v) for k, v in res.params.items() if k not in _OWN_PARAMS]
        + [("lang", t.lang)],
        other_lang_url=res.own_url(lang=other, scan=scan_id, region=None),
        json_url=res.own_url(linkType="gs1:verificationService", scan=None, region=None),
        linkset_url=res.own_url(linkType="all", scan=None, region=None, lang=None),
        page_url=res.base + link.path(),
        share_description=t(f"share.{shown}", product=title),
        share_image=res.base + "/static/share.png",
        report_url=REPORT_URL,
        verify_messages=verify_messages(t),
        chain_id=svc.genesis.chain_id,
        head_height=store.height(),
        warning_text=warning_text,
    )
    return HTMLResponse(html, headers=headers)


@router.get(
    "/01/{code:path}",
    summary="Resolve a GS1 Digital Link: the product's verified journey",
    response_class=HTMLResponse,
    responses=_resolver_responses(),
)
def resolve(
    request: Request,
    svc: Svc,
    codes: Codes,
    code: str = Path(
        description="the rest of the Digital Link after /01/: {GTIN}[/10/{lot}][/21/{serial}]"
    ),
    linkType: str | None = Query(
        None, max_length=200, description="GS1 link type (gs1:pip, gs1:traceability, …, all)"
    ),
    lang: str | None = Query(None, max_length=8, description="zh or en (else Accept-Language)"),
    region: str | None = Query(
        None, max_length=8, description="where the scan happens, if the client offers it"
    ),
    scan: str | None = Query(None, max_length=64, description="the scan a follow-up belongs to"),
) -> Response:
    """Data attributes (harvest date 7007, country of origin 422, …) go in the query
    string. `Accept: application/json` or `application/ld+json` gets the data of the page;
    `?linkType=all` the RFC 9264 linkset."""
    res = Resolution(request, svc, codes)
    try:
        link = parse_path(res.raw_path, res.raw_query)
    except CodeError as exc:
        if res.media == "text/html":
            return res.not_genuine(res.raw_path, problem_text(exc, res.t), 400)
        raise
    return _resolve(res, link)


@router.get("/static/{name}", include_in_schema=False)
def static(name: str) -> FileResponse:
    if not _STATIC_NAME.fullmatch(name) or not (STATIC / name).is_file():
        raise ApiError("not_found", f"no static file {name!r}")
    return FileResponse(
        STATIC / name,
        media_type=_STATIC_TYPES[name.rsplit(".", 1)[1]],
        headers={"Cache-Control": "public, max-age=3600"},
    )
