"""The GS1 Digital Link resolver: what a phone opens when it scans a ParkTrace code.

`GET /01/{GTIN}/10/{lot}/21/{serial}` (and the shorter lot and product forms) answers a
browser with the product's verified journey as a server-rendered page (Chinese or
English by Accept-Language; readable without JavaScript, which only verifies the ledger
proof in the browser), a program with the same data as JSON or JSON-LD. As a
GS1-Conformant Resolver it also answers HEAD (and OPTIONS, with CORS, in
`api.edge.cors`), the RFC 9264 linkset (`?linkType=linkset` or `Accept:
application/linkset+json`) and `?linkType=<type>` with a 307 to that link, the query
passed on, or a 404 when there is none. Every resolution of a serialised code by a person
is recorded for the consortium's ledger and judged for signs of copying
(api.codes.scans). A malformed code is a 400 and an unknown one a 404, both explained.
SSCC and GLN pages are in `api.routes.places`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from markupsafe import Markup, escape

from traceability.audit.recall_status import recall_for
from traceability.codes import CodeError
from traceability.codes.attributes import Mismatch, mismatches
from traceability.codes.batch import RecordedBatch
from traceability.codes.copies import Sale, Verdict, sales_of
from traceability.codes.digital_link import DigitalLink, parse_path
from traceability.codes.journey import Journey, Party, build_journey, party_of
from traceability.codes.links import (
    CONTEXT,
    JSON_FORMAT,
    Level,
    find,
    gtin_levels,
    link_header,
    linkset,
    normalize_type,
)

from ..codes.i18n import Translator, negotiate
from ..codes.pages import (
    STATIC,
    attribute_rows,
    mismatch_row,
    problem_text,
    render,
    verify_messages,
    warning_text,
)
from ..codes.scans import counts_as_scan, observe
from ..codes.service import CodesService, codes_service
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
_OWN_PARAMS = ("lang", "scan", "region", "linkType", "format")


def _resolver_responses() -> dict[int | str, dict[str, Any]]:
    """Errors come as JSON to programs and as a "not a genuine code" page to browsers."""
    out: dict[int | str, dict[str, Any]] = {
        200: {
            "description": "The consumer page (text/html) or its data (JSON, JSON-LD, linkset)",
            "content": {media: {} for media in _MEDIA},
        },
        301: {"description": "A Digital Link 1.x short name: the canonical URI"},
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
        # (not `.get("raw_path", default)`: that builds the request URL every time)
        raw = request.scope.get("raw_path") or request.url.path.encode()
        self.raw_path = raw.decode("latin-1")
        self.raw_query = request.scope.get("query_string", b"").decode("latin-1")
        self.params = params
        self.base = str(request.base_url).rstrip("/")
        #: The uncompressed URI, when the request was a compressed Digital Link.
        self.same_as: str | None = None
        self.link_type = normalize_type(params.get("linkType"))

    def own_url(self, **changes: str | None) -> str:
        kept = [(k, v) for k, v in self.request.query_params.multi_items() if k not in changes]
        kept += [(k, v) for k, v in changes.items() if v is not None]
        return self.raw_path + (f"?{urlencode(kept)}" if kept else "")

    def passed_on(self, href: str) -> str:
        """`href` with the request's query string (less `linkType`) passed on, as a
        GS1-Conformant Resolver does by default when redirecting."""
        kept = [
            part
            for part in self.raw_query.split("&")
            if part and part.partition("=")[0] != "linkType"
        ]
        if not kept:
            return href
        return href + ("&" if "?" in href else "?") + "&".join(kept)

    def headers(self, path: str, *, context: bool = False) -> dict[str, str]:
        linkset_url = f"{self.base}{path}?linkType=linkset"
        return {
            "Link": link_header(linkset_url, context=context, same_as=self.same_as),
            "Vary": "Accept, Accept-Language",
        }

    def wants_linkset(self) -> bool:
        return self.link_type == "linkset" or (
            self.link_type is None and self.media == "application/linkset+json"
        )

    def links_answer(self, path: str, levels: list[Level]) -> Response | None:
        """The linkset, or a 307 to the requested link type, or a 404 if there is none;
        None when the request asks for neither (the default link: the page itself)."""
        if self.wants_linkset():
            return JSONResponse(
                linkset(levels),
                media_type="application/linkset+json",
                headers=self.headers(path, context=True),
            )
        if self.link_type is None:
            return None
        target = find(levels, self.link_type)
        if target is None:
            raise ApiError(
                "not_found",
                f"{levels[0].anchor} has no link of type {self.link_type} (none up to its "
                "primary key either); ?linkType=linkset lists its links",
            )
        return RedirectResponse(
            self.passed_on(target["href"]), status_code=307, headers=self.headers(path)
        )

    def redirect(self, path: str, status: int = 307) -> Response:
        """To another resolver path of this node (up the tree, or canonical), the whole
        query passed on: a linkType asked of the unknown level is asked of that one."""
        query = f"?{self.raw_query}" if self.raw_query else ""
        return RedirectResponse(self.base + path + query, status_code=status)

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

    def invalid(self, exc: CodeError) -> Response:
        """A syntactically invalid Digital Link: always a 400, a page for browsers."""
        if self.media == "text/html" and not self.wants_linkset():
            return self.not_genuine(self.raw_path, problem_text(exc, self.t), 400)
        raise exc


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
    levels: list[Level],
    altered: list[Mismatch],
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
        "labelMismatches": [
            {"ai": m.ai, "scanned": m.scanned, "recorded": m.recorded} for m in altered
        ],
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
    doc["links"] = {
        kind: items for level in reversed(levels) for kind, items in level.links.items()
    }
    return doc


def _certificates(journey: Journey | None) -> list[str]:
    urls: list[str] = []
    for step in journey.steps if journey else ():
        urls += [c["url"] for c in step.certificates if c.get("url") and c["url"] not in urls]
    return urls


def _recorded_label(batch: RecordedBatch | None) -> dict[str, str]:
    """What the ledger recorded for the label of a batch's codes: its lot and attributes."""
    if batch is None:
        return {}
    return {"10": batch.batch.link.lot or "", **batch.batch.link.attributes}


def _scanned_label(link: DigitalLink) -> dict[str, str]:
    return {**({"10": link.lot} if link.lot is not None else {}), **link.attributes}


#: Where the per-request parts go in a cached page (autoescaping turns every "<" of the
#: page's own data into "&lt;", so none of these can come from a product's text).
VERDICT_MARK = "<!--pt:verdict-->"
CHECK_MARK = "<!--pt:check-->"
LANG_URL_MARK = "<!--pt:lang-url-->"
SHARE_MARK = "<!--pt:share-->"
SCAN_MARK = "<!--pt:scan-->"


def _json_text(doc: Any) -> str:
    """As JSONResponse serialises."""
    return json.dumps(doc, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))


def _fresh(exc: Exception) -> Exception:
    """A new exception like a cached one (raising one instance again and again would
    chain every request's traceback onto it)."""
    new = type(exc).__new__(type(exc), *exc.args)
    new.__dict__.update(exc.__dict__)
    return new


@dataclass(frozen=True)
class Answer:
    """A complete answer kept for its chain height; every request gets its own Response."""

    status: int
    body: bytes
    raw_headers: list[tuple[bytes, bytes]]

    @classmethod
    def of(cls, response: Response) -> Answer:
        return cls(response.status_code, bytes(response.body), list(response.raw_headers))

    def response(self) -> Response:
        response = Response(self.body, self.status)
        response.raw_headers = list(self.raw_headers)
        return response


@dataclass
class Prepared:
    """A resolution as far as the chain decides it, computed once per chain height
    (api.codes.pagecache): a complete answer or error, or a page or document waiting for
    its scan verdict."""

    answer: Answer | None = None
    error: Exception | None = None
    link: DigitalLink | None = None
    media: str = "text/html"
    headers: dict[str, str] = field(default_factory=dict)
    #: Whether the code's scans are judged (a serialised item with rightful batches).
    judged: bool = False
    shipped: list[str] = field(default_factory=list)
    sales: list[Sale] = field(default_factory=list)
    #: The JSON document around its verdict, or the HTML page with its marks.
    before: str = ""
    after: str = ""
    page: str = ""
    verdict_context: dict[str, Any] = field(default_factory=dict)
    title: str = ""
    logs: bool = False

    @property
    def size(self) -> int:
        held = len(self.answer.body) if self.answer is not None else 0
        parts = (self.before, self.after, self.page, self.verdict_context.get("check", ""))
        return 2048 + held + sum(len(p) for p in parts)


def _resolve(res: Resolution, link: DigitalLink | None = None) -> Response:
    """Answer a Digital Link: `link` when the caller parsed it (a decompressed URI, a key
    route), else the request's path. What the chain decides is kept per height, keyed by
    what decides the answer: the path and query (the link follows from them), media
    type, language, host and, for a compressed URI, the uncompressed one."""
    key = (res.raw_path, res.raw_query, res.media, res.t.lang, res.base, res.same_as)
    height = res.svc.node.height
    prepared = res.codes.pages.get(key, height, lambda: _prepare(res, link))
    return _answer(res, prepared)


def _prepare(res: Resolution, link: DigitalLink | None) -> Prepared:
    try:
        if link is None:
            try:
                link = parse_path(res.raw_path, res.raw_query)
            except CodeError as exc:
                return Prepared(answer=Answer.of(res.invalid(exc)))
        return _prepare_link(res, link)
    except (ApiError, CodeError) as exc:
        return Prepared(error=exc)


def _prepare_link(res: Resolution, link: DigitalLink) -> Prepared:
    svc, codes, t = res.svc, res.codes, res.t
    store, membership = svc.node.store, svc.node.membership
    link_type = res.link_type
    host = codes.settings.resolver_host
    auth = codes.authenticate(store, membership, link) if link.level == "item" else None
    # A person's scan asks for the page: not the linkset, another link type, or the JSON
    # document that verification and traceability links point at.
    logs = link_type is None and not res.wants_linkset() and res.params.get("format") != "json"
    batches = codes.batches(store, membership, link)
    status = auth.status if auth is not None else link.level
    if auth is not None and auth.status == "unknown":
        ids = [i for i in (link.instance_id, link.lot_id) if i]
        recorded = build_journey(svc.index, store, membership, ids)
        if batches or recorded is None:  # codes were issued and this is none of them
            scanned = link.uri(host)
            message = f"{scanned} is not a genuine code: no batch issued on this ledger contains it"
            if res.media == "text/html" and link_type is None:
                return Prepared(answer=Answer.of(res.not_genuine(scanned, None, 404)))
            raise ApiError("not_found", message)
        auth, status = None, "recorded"  # on the ledger, but no codes were issued for it
    batch = auth.batch if auth is not None else None
    lot_id = batch.batch.link.lot_id if batch is not None else link.lot_id
    if batch is not None and batch.batch.link.lot != link.lot:  # the batch's lot, not the URL's
        batches = codes.batches(store, membership, batch.batch.link)
    if link.level == "product":
        journey = None
    else:
        ids = [i for i in (link.instance_id, lot_id) if i]
        journey = build_journey(svc.index, store, membership, ids, batches)
    if journey is None and not batches:
        if link.level == "lot" and codes.batches(store, membership, DigitalLink(link.gtin)):
            # an unknown lot: walk up
            return Prepared(answer=Answer.of(res.redirect(DigitalLink(link.gtin).path())))
        scanned = link.uri(host)
        if res.media == "text/html" and link_type is None and not res.wants_linkset():
            return Prepared(answer=Answer.of(res.not_genuine(scanned, None, 404)))
        raise ApiError(
            "not_found", f"{scanned}: the ledger records nothing about this {link.level}"
        )
    names = next((b.batch.names for b in batches if b.batch.names), {})
    description = names.get("en") or names.get("zh")
    levels = gtin_levels(link, res.base, host, _certificates(journey), description)
    answer = res.links_answer(link.path(), levels)
    if answer is not None:
        return Prepared(answer=Answer.of(answer))
    headers = res.headers(link.path())
    label = batch or (batches[0] if batches and link.level == "lot" else None)
    altered = mismatches(_scanned_label(link), _recorded_label(label))
    issuer = party_of(membership, batch.signer) if batch else None
    recall = recall_for(svc, link.instance_id, lot_id) if link.level != "product" else None
    prepared = Prepared(
        link=link,
        headers=headers,
        judged=auth is not None,
        shipped=list(journey.regions) if journey else [],
        sales=sales_of(journey),
        logs=logs,
    )
    if res.media != "text/html" or res.params.get("format") == "json":
        doc = _document(res, link, status, issuer, batch, batches, journey, None, levels, altered)
        doc["recall"] = recall.to_json() if recall else None
        if prepared.judged:  # the verdict goes where _document puts it: before the journey
            items = list(doc.items())
            at = next(i for i, (k, _) in enumerate(items) if k in ("journey", "lots", "ledger"))
            prepared.before = _json_text(dict(items[:at]))[:-1] + ',"scans":'
            prepared.after = "," + _json_text(dict(items[at:]))[1:]
        else:
            prepared.before = _json_text(doc)
        prepared.media = (
            "application/ld+json" if res.media == "application/ld+json" else "application/json"
        )
        return prepared
    prepared.title = title = _title(batches, link, t)
    owner = issuer or (party_of(membership, batches[0].signer) if batches else None)
    recorded_label = _recorded_label(label)
    shown_recall = recall_view(recall, link.lot)
    altered_rows = [mismatch_row(m, t) for m in altered]
    prepared.verdict_context = {
        "status": status,
        "recall": shown_recall,
        "recalled": recall is not None,
        "altered": altered_rows,
        "issuer": issuer,
        "batch_height": batch.height if batch else None,
        "boxes": {},  # the verdict box by verdict, rendered once each
    }
    form_hidden = [(k, v) for k, v in res.params.items() if k not in _OWN_PARAMS]
    check = render(
        "_check.html",
        t,
        form_action=res.raw_path,
        form_hidden=[*form_hidden, ("lang", t.lang)],
        scan_id=Markup(SCAN_MARK),
    )
    prepared.page = render(
        "product.html",
        t,
        title=title,
        status=status,
        owner=owner,
        link=link,
        shown_lot=recorded_label.get("10") or link.lot,
        attributes=attribute_rows({k: v for k, v in recorded_label.items() if k != "10"}, t),
        unchecked=attribute_rows(
            {k: v for k, v in link.attributes.items() if k not in recorded_label}, t
        ),
        verdict_box=Markup(VERDICT_MARK),
        check_form=Markup(CHECK_MARK),
        journey=journey,
        origin=origin_of(journey),
        trust=trust_view(svc, journey),
        key_steps=key_steps(journey),
        proofs=proof_rows(journey),
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
        other_lang_url=Markup(LANG_URL_MARK),
        json_url=f"{link.path()}?{JSON_FORMAT}",
        linkset_url=res.own_url(linkType="linkset", scan=None, region=None, lang=None),
        page_url=res.base + link.path(),
        share_description=Markup(SHARE_MARK),
        share_image=res.base + "/static/share.png",
        report_url=REPORT_URL,
        verify_messages=verify_messages(t),
        chain_id=svc.genesis.chain_id,
        head_height=store.height(),
    )
    prepared.verdict_context["check"] = check
    other = "en" if t.lang == "zh" else "zh"
    prepared.verdict_context["lang_url"] = str(
        escape(res.own_url(lang=other, scan=None, region=None))
    )
    return prepared


def _answer(res: Resolution, prepared: Prepared) -> Response:
    """The cached resolution with this request's part: its scan (recorded if it is a
    person's) and the verdict on the code's scans."""
    if prepared.error is not None:
        raise _fresh(prepared.error)
    if prepared.answer is not None:
        return prepared.answer.response()
    link = prepared.link
    assert link is not None
    verdict, current, region_added = None, None, False
    if prepared.judged:
        counts = (
            prepared.logs
            and res.request.method == "GET"
            and counts_as_scan(res.request, res.media, res.link_type)
        )
        current, region_added, verdict = observe(
            res.request,
            res.svc.index,
            res.codes,
            link,
            prepared.shipped,
            prepared.sales,
            counts=counts,
        )
    if prepared.media != "text/html":
        body = prepared.before
        if verdict is not None:
            scans = verdict.to_json()
            scans["warningText"] = [warning_text(w, res.t) for w in verdict.warnings]
            body += _json_text(scans) + prepared.after
        return Response(body.encode("utf-8"), media_type=prepared.media, headers=prepared.headers)
    t, context = res.t, prepared.verdict_context
    recall = context["recall"] if context["recalled"] else None
    shown = verdict_of(context["status"], recall, verdict, altered=bool(context["altered"]))
    boxes: dict[str, str] = context["boxes"]
    box = boxes.get(shown)  # the same for every scan, but a copied code's warnings
    if box is None:
        box = render(
            "_verdict.html",
            t,
            shown=shown,
            verdict=verdict,
            recall=context["recall"],
            altered=context["altered"],
            issuer=context["issuer"],
            batch_height=context["batch_height"],
            warning_text=warning_text,
        )
        if shown != "copied":
            boxes[shown] = box
    if verdict is not None:
        box += render("_scans.html", t, verdict=verdict, region_added=region_added)
    scan_id = current.id if current is not None else None
    # own_url(lang=other, scan=scan_id, region=None), escaped: the scan id is hex
    lang_url = context["lang_url"] + (f"&amp;scan={scan_id}" if scan_id else "")
    page = (
        prepared.page.replace(VERDICT_MARK, box)
        .replace(CHECK_MARK, context["check"].replace(SCAN_MARK, scan_id) if scan_id else "")
        .replace(LANG_URL_MARK, lang_url)
        .replace(SHARE_MARK, escape(t(f"share.{shown}", product=prepared.title)))
    )
    return HTMLResponse(page, headers={**prepared.headers, "Cache-Control": "no-store"})


@router.head("/01/{code:path}", include_in_schema=False)
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
        None,
        max_length=200,
        description="GS1 link type (gs1:pip, gs1:traceability, …; linkset for all links)",
    ),
    lang: str | None = Query(None, max_length=8, description="zh or en (else Accept-Language)"),
    region: str | None = Query(
        None, max_length=8, description="where the scan happens, if the client offers it"
    ),
    scan: str | None = Query(None, max_length=64, description="the scan a follow-up belongs to"),
) -> Response:
    """Data attributes (harvest date 7007, country of origin 422, …) go in the query
    string. `Accept: application/json` or `application/ld+json` (or `?format=json`) gets
    the data of the page; `?linkType=linkset` or `Accept: application/linkset+json` the
    RFC 9264 linkset."""
    return _resolve(Resolution(request, svc, codes))


@router.get("/static/{name}", include_in_schema=False)
def static(name: str) -> FileResponse:
    if not _STATIC_NAME.fullmatch(name) or not (STATIC / name).is_file():
        raise ApiError("not_found", f"no static file {name!r}")
    return FileResponse(
        STATIC / name,
        media_type=_STATIC_TYPES[name.rsplit(".", 1)[1]],
        headers={"Cache-Control": "public, max-age=3600"},
    )
