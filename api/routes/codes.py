"""Serialised product codes: issue a batch (one `codes.issue` transaction, whatever the
count), follow it, fetch its codes as URIs, QR images (ZIP) or a PDF label sheet, and
render the QR code of any Digital Link.

Issuing takes either a `codes.issue` transaction the producer signed itself (the SDK and
`parktrace codes issue` do: the batch key is drawn on the producer's machine) or, from a
member that signs its HTTP request (RFC 9421), just GTIN, lot and count; the node then
draws the key and signs with the certificate the organisation delegated to it (the same
delegation as `/capture`). Listing or rendering a batch's codes needs a signed request
of the issuing organisation: whoever has the list can print the codes.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import anyio
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field

from api.codes import render
from ledger.errors import NotPermittedError
from ledger.tx import Transaction
from traceability.codes import CodeError
from traceability.codes.batch import TX_TYPE, Batch, new_batch, parse_payload
from traceability.codes.digital_link import DigitalLink, build, parse_uri
from traceability.codes.gtin import park_gtin
from traceability.codes.serials import MAX_COUNT, SERIAL_SCHEME

from ..codes.service import CodesService, codes_service
from ..codes.sheets import label_pdf, qr_zip
from ..errors import ApiError, error_responses
from ..services import Services, Svc
from . import parse_body, read_body
from .transactions import MAX_TX_CONTAINERS

router = APIRouter(tags=["Codes"])
Codes = Annotated[CodesService, Depends(codes_service)]
TX_ID = r"^[0-9a-f]{64}$"
MAX_REQUEST = 128 * 1024
_REQUEST_FIELDS = {"gtin", "parkItem", "lot", "count", "attributes", "names"}

_ISSUE_SCHEMA: dict[str, Any] = {
    "oneOf": [
        {
            "type": "object",
            "title": "A codes.issue transaction you signed",
            "required": ["transaction"],
            "properties": {"transaction": {"type": "object"}},
        },
        {
            "type": "object",
            "title": "GTIN, lot and count (RFC 9421-signed request; the node signs)",
            "required": ["lot", "count"],
            "properties": {
                "gtin": {"type": "string", "example": "6901234000124"},
                "parkItem": {
                    "type": "string",
                    "description": "item reference under the park's GS1 prefix (no GTIN)",
                },
                "lot": {"type": "string", "example": "GN26-1105-A"},
                "count": {"type": "integer", "minimum": 1, "maximum": MAX_COUNT},
                "attributes": {"type": "object", "example": {"7007": "261103", "422": "156"}},
                "names": {"type": "object", "example": {"en": "Navel oranges", "zh": "脐橙"}},
            },
        },
    ]
}


class CodesSettingsOut(BaseModel):
    resolverHost: str = Field(description="host the codes' URIs point at")
    resolverKeys: list[dict[str, str]] = Field(
        description="X25519 public keys to seal batch keys to (id, base64)"
    )
    parkPrefix: str | None = Field(description="the park's GS1 Company Prefix, if any")
    serials: str
    maxCount: int
    maxCodesPerRequest: int


class IssuedOut(BaseModel):
    batch: str
    transaction: str
    state: str
    gtin: str
    lot: str
    count: int
    lotUri: str
    status_url: str


@router.get(
    "/v1/codes/settings",
    summary="What an issuer needs: resolver host and keys, the park's prefix, limits",
    response_model=CodesSettingsOut,
)
def settings(codes: Codes) -> dict[str, Any]:
    s = codes.settings
    return {
        "resolverHost": s.resolver_host,
        "resolverKeys": [k.to_json() for k in s.public_keys],
        "parkPrefix": s.park_prefix,
        "serials": SERIAL_SCHEME,
        "maxCount": MAX_COUNT,
        "maxCodesPerRequest": s.max_codes_per_request,
    }


# -- issuing -------------------------------------------------------------------------------


def _link_of(data: dict[str, Any], codes: CodesService) -> DigitalLink:
    unknown = sorted(set(data) - _REQUEST_FIELDS)
    if unknown:
        raise CodeError(unknown[0], "schema", "unknown field")
    gtin, item = data.get("gtin"), data.get("parkItem")
    if (gtin is None) == (item is None):
        raise CodeError("gtin", "schema", "give either gtin or parkItem (a park-issued item)")
    if item is not None:
        prefix = codes.settings.park_prefix
        if prefix is None:
            raise CodeError("parkItem", "no-park-prefix", "this park issues no GTINs of its own")
        if not isinstance(item, str):
            raise CodeError("parkItem", "schema", "expected a string of digits")
        gtin = park_gtin(prefix, item)
    if not isinstance(gtin, str):
        raise CodeError("gtin", "schema", "expected a string of digits")
    lot = data.get("lot")
    if not isinstance(lot, str):
        raise CodeError("lot", "schema", "expected the lot number as a string")
    attributes = data.get("attributes")
    return build(gtin, lot, attributes=attributes if attributes is not None else None)


def _check_batch(codes: CodesService, tx: Transaction) -> Batch:
    """A signed codes.issue transaction this node can stand behind: valid payload and a
    batch key it can open. That key is this node's alone, so it is checked here; who may
    issue for the GTIN and a new batch id are block rules (traceability.codes.issuance),
    judged when the node admits the transaction."""
    if tx.type != TX_TYPE:
        raise CodeError("transaction.body.type", "schema", f"expected {TX_TYPE!r}")
    batch = parse_payload(tx.payload)
    if not codes.settings.resolver_keys:
        raise NotPermittedError(
            "this node holds no resolver key, so it could never check these codes; "
            "issue them through a node that does"
        )
    if codes.serial_key(batch) is None:
        ours = ", ".join(k.id for k in codes.settings.public_keys)
        raise CodeError(
            "payload.sealedKeys",
            "sealed-key",
            f"the batch key is not sealed to this node's resolver key ({ours}), or does not "
            "match keyCommitment",
        )
    return batch


def _issued(tx: Transaction, batch: Batch) -> dict[str, Any]:
    return {
        "batch": batch.id,
        "transaction": tx.id,
        "state": "pending",
        "gtin": batch.link.gtin,
        "lot": batch.link.lot or "",
        "count": batch.count,
        "lotUri": batch.link.uri(batch.resolver),
        "status_url": f"/v1/codes/batches/{tx.id}",
    }


@router.post(
    "/v1/codes",
    summary="Issue a batch of serialised codes for a lot (one transaction per batch)",
    status_code=202,
    response_model=IssuedOut,
    responses=error_responses(400, 401, 403, 409, 413, 415, 503),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _ISSUE_SCHEMA}},
        }
    },
)
async def issue(svc: Svc, codes: Codes, request: Request, response: Response) -> dict[str, Any]:
    """Record a batch: `{"transaction": …}` signed by the producer (the batch key never
    leaves it except sealed to the resolver key), or `{"gtin" | "parkItem", "lot",
    "count", "attributes", "names"}` in a request the producer signs (RFC 9421), which
    this node turns into a transaction with the organisation's delegated certificate.
    The answer comes once the node admits the transaction; follow `status_url`."""
    raw = await read_body(request, MAX_REQUEST)
    data = await parse_body(raw, "request", max_containers=MAX_TX_CONTAINERS)
    if not isinstance(data, dict):
        raise CodeError("request", "schema", "expected a JSON object")
    if "transaction" in data:
        if set(data) != {"transaction"}:
            raise CodeError("request", "schema", 'a signed batch comes alone: {"transaction": …}')
        tx = Transaction.from_json(data["transaction"])
    else:
        caller = await svc.verifier.verify_async(
            request.method, str(request.url), request.headers, raw
        )
        signer = svc.settings.capture_signers.get(caller.org)
        if signer is None:
            raise NotPermittedError(
                f"organisation {caller.org!r} has delegated no certificate to this node; sign "
                "the batch yourself (`parktrace codes issue` or the SDK)"
            )
        link = _link_of(data, codes)
        if not codes.settings.public_keys:
            raise NotPermittedError("this node holds no resolver key; it cannot issue codes")
        batch, _ = new_batch(
            link,
            data.get("count"),  # type: ignore[arg-type]  # checked by new_batch
            codes.settings.public_keys,
            codes.settings.resolver_host,
            names=data.get("names"),
        )
        tx = signer.sign_tx(svc.genesis.chain_id, TX_TYPE, batch.payload())
    batch = await anyio.to_thread.run_sync(_check_batch, codes, tx)
    svc.node.submit(tx)
    response.headers["Location"] = f"/v1/codes/batches/{tx.id}"
    return _issued(tx, batch)


# -- a batch and its codes ------------------------------------------------------------------


def _batch(svc: Services, tx_id: str) -> tuple[Batch, str, int]:
    """(batch, issuing organisation, height) of a committed batch transaction."""
    stored = svc.node.store.tx(tx_id)
    if stored is None:
        state = svc.node.status(tx_id).state
        raise ApiError("not_found", f"batch transaction {tx_id} is {state}, not committed")
    if stored.tx.type != TX_TYPE:
        raise ApiError("not_found", f"transaction {tx_id} is not a {TX_TYPE} batch")
    try:
        batch = parse_payload(stored.tx.payload)
    except CodeError as exc:
        raise ApiError("not_found", f"transaction {tx_id} holds no valid batch: {exc}") from None
    member = svc.node.membership.member(stored.tx.signer)
    return batch, member.org if member else "?", stored.height


@router.get(
    "/v1/codes/batches/{tx_id}",
    summary="A batch: pending, or committed with its product, lot, count and block",
    responses=error_responses(404),
)
def batch_info(
    svc: Svc, tx_id: str = Path(pattern=TX_ID, description="the batch's transaction id")
) -> dict[str, Any]:
    status = svc.node.status(tx_id)
    if status.state != "committed":
        if status.state == "unknown":
            raise ApiError("not_found", f"no batch transaction {tx_id} on this node")
        return {"transaction": tx_id, "state": status.state, "reason": status.reason}
    batch, org, height = _batch(svc, tx_id)
    return {
        **batch.to_json(),
        "transaction": tx_id,
        "state": "committed",
        "height": height,
        "issuedBy": org,
        "codesUrl": f"/v1/codes/batches/{tx_id}/codes",
        "zipUrl": f"/v1/codes/batches/{tx_id}/qr.zip",
        "pdfUrl": f"/v1/codes/batches/{tx_id}/labels.pdf",
    }


def _codes_of(
    svc: Services, codes: CodesService, request: Request, tx_id: str, offset: int, limit: int
) -> tuple[Batch, list[tuple[int, DigitalLink]]]:
    """The codes a member of the issuing organisation asked for (signed request)."""
    caller = svc.verifier.verify(request.method, str(request.url), request.headers, b"")
    batch, org, _ = _batch(svc, tx_id)
    if caller.org != org:
        raise NotPermittedError(f"only {org!r}, which issued this batch, may list its codes")
    key = codes.serial_key(batch)
    if key is None:
        raise NotPermittedError("this node holds no resolver key that opens this batch")
    cap = codes.settings.max_codes_per_request
    if limit > cap:
        raise CodeError("limit", "too-many", f"at most {cap} codes per request")
    return batch, list(batch.codes(key, offset, offset + limit))


Offset = Annotated[int, Query(ge=0, lt=MAX_COUNT, description="first index")]
Limit = Annotated[int, Query(ge=1, le=MAX_COUNT, description="how many codes")]
Ec = Annotated[Literal["L", "M", "Q", "H"], Query(description="QR error correction")]
Scale = Annotated[int, Query(ge=1, le=40, description="pixels per module")]
_SIGNED = "Sign the request (RFC 9421) with a certificate of the issuing organisation."


@router.get(
    "/v1/codes/batches/{tx_id}/codes",
    summary="The codes of a batch (issuer only)",
    responses=error_responses(401, 403, 404),
    description=_SIGNED,
)
def batch_codes(
    svc: Svc,
    codes: Codes,
    request: Request,
    tx_id: str = Path(pattern=TX_ID),
    offset: Offset = 0,
    limit: Limit = 1000,
) -> dict[str, Any]:
    batch, items = _codes_of(svc, codes, request, tx_id, offset, limit)
    return {
        "batch": batch.id,
        "count": batch.count,
        "offset": offset,
        "codes": [
            {"index": i, "serial": link.serial, "uri": link.uri(batch.resolver)}
            for i, link in items
        ],
    }


@router.get(
    "/v1/codes/batches/{tx_id}/qr.zip",
    summary="QR images of a batch's codes as a ZIP (issuer only)",
    response_class=Response,
    responses={
        200: {"content": {"application/zip": {}}, "description": "png/, svg/ and codes.csv"},
        **error_responses(401, 403, 404),
    },
    description=_SIGNED,
)
def batch_zip(
    svc: Svc,
    codes: Codes,
    request: Request,
    tx_id: str = Path(pattern=TX_ID),
    offset: Offset = 0,
    limit: Limit = 1000,
    format: Annotated[Literal["png", "svg", "both"], Query()] = "png",
    ec: Ec = "M",
    scale: Scale = render.DEFAULT_SCALE,
) -> Response:
    batch, items = _codes_of(svc, codes, request, tx_id, offset, limit)
    formats = ("png", "svg") if format == "both" else (format,)
    data = qr_zip(
        ((f"{i:07d}-{link.serial}", link.uri(batch.resolver)) for i, link in items),
        formats=formats,
        ec=ec,
        scale=scale,
    )
    name = f"codes-{batch.link.gtin}-{batch.id[:8]}-{offset}.zip"
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get(
    "/v1/codes/batches/{tx_id}/labels.pdf",
    summary="A printable PDF label sheet of a batch's codes (issuer only)",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}, **error_responses(401, 403, 404)},
    description=_SIGNED,
)
def batch_pdf(
    svc: Svc,
    codes: Codes,
    request: Request,
    tx_id: str = Path(pattern=TX_ID),
    offset: Offset = 0,
    limit: Limit = 1000,
    ec: Ec = "M",
) -> Response:
    batch, items = _codes_of(svc, codes, request, tx_id, offset, limit)
    title = f"{batch.names.get('en', '')} GTIN {batch.link.gtin} lot {batch.link.lot}".strip()
    data = label_pdf(
        ((link, link.uri(batch.resolver)) for _, link in items),
        title=title,
        ec=ec,
        names=batch.names,
    )
    return Response(
        data,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="labels-{batch.id[:8]}.pdf"'},
    )


# -- one code --------------------------------------------------------------------------------


def _one(uri: str) -> str:
    """The canonical spelling of a Digital Link, on the host it names."""
    return parse_uri(uri).uri(urlsplit(uri.strip()).netloc.lower())


Uri = Annotated[str, Query(max_length=2048, description="a GS1 Digital Link URI")]


@router.get(
    "/v1/codes/qr.png",
    summary="The QR code (PNG) of a Digital Link URI",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, **error_responses(400)},
)
def qr_png(uri: Uri, ec: Ec = "M", scale: Scale = render.DEFAULT_SCALE) -> Response:
    """The URI is checked first (400 naming the problem) and encoded in its canonical
    spelling (GTIN-14, qualifiers in order, Digital Link percent-encoding)."""
    return Response(render.png(_one(uri), ec=ec, scale=scale), media_type="image/png")


@router.get(
    "/v1/codes/qr.svg",
    summary="The QR code (SVG) of a Digital Link URI",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}, **error_responses(400)},
)
def qr_svg(uri: Uri, ec: Ec = "M", scale: Scale = render.DEFAULT_SCALE) -> Response:
    return Response(render.svg(_one(uri), ec=ec, scale=scale), media_type="image/svg+xml")
