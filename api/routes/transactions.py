"""Signed transactions in, statuses and receipts out.

Clients sign locally (the SDK and CLI do); the node checks a transaction against the
same rules a block applies and answers at once: 202 when it is admitted, 4xx with the
reason when it could never commit, 409 for a duplicate or replay.
"""

from __future__ import annotations

from typing import Any, Literal

import anyio
from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from ledger.errors import LedgerError
from ledger.tx import Transaction
from nodes.service import TxStatus
from traceability.receipts import build_receipt, receipt_bytes

from ..epcis.admission import Prepared, prepare_json, prepare_one
from ..errors import ApiError, body_of, error_responses, status_of
from ..services import Services, Svc
from . import parse_body, read_body

router = APIRouter(tags=["Transactions"])

TX_ID = r"^[0-9a-f]{64}$"
MAX_TX_BODY = 256 * 1024
#: JSON objects and arrays one transaction may hold (an EPCIS event has about a dozen).
MAX_TX_CONTAINERS = 256
STATUS_BODY = 128 * 1024

ENVELOPE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A transaction signed by its author (see ledger/tx.py)",
    "required": ["body", "signature"],
    "additionalProperties": False,
    "properties": {
        "body": {
            "type": "object",
            "required": ["chain_id", "type", "payload", "signer", "timestamp", "nonce"],
            "additionalProperties": False,
            "properties": {
                "chain_id": {"type": "string", "example": "parktrace-park-1"},
                "type": {"type": "string", "example": "epcis.event"},
                "payload": {"type": "object", "description": '{"event": <EPCIS 2.0 event>}'},
                "signer": {"type": "string", "description": "certificate fingerprint (hex)"},
                "timestamp": {"type": "string", "example": "2026-11-22T08:30:00.000Z"},
                "nonce": {"type": "string", "description": "16 random bytes, base64"},
            },
        },
        "signature": {
            "type": "object",
            "required": ["scheme", "value"],
            "additionalProperties": False,
            "properties": {
                "scheme": {"type": "string", "example": "ed25519"},
                "value": {"type": "string", "description": "base64 signature of the body"},
            },
        },
    },
}
BATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["transactions"],
    "additionalProperties": False,
    "properties": {
        "transactions": {"type": "array", "items": ENVELOPE_SCHEMA, "maxItems": 1000},
        "atomic": {
            "type": "boolean",
            "default": False,
            "description": "all or nothing: refuse the whole batch if any item would be refused",
        },
    },
}


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


class Accepted(BaseModel):
    id: str = Field(description="transaction id (hex SHA-256 of the signed body)")
    state: Literal["pending"] = "pending"
    status_url: str = Field(description="where to follow it (add ?wait=SECONDS to block)")


class TxStatusOut(BaseModel):
    id: str
    state: Literal["pending", "committed", "rejected"]
    height: int | None = Field(None, description="block height, once committed")
    reason: str | None = Field(None, description="why it was rejected")
    error: str | None = Field(None, description="error code of the rejection")
    receipt: dict[str, Any] | None = Field(
        None, description="proof of inclusion, verifiable offline with the genesis file"
    )


class BatchItem(BaseModel):
    index: int
    id: str | None = None
    state: Literal["pending", "refused"]
    error: str | None = None
    message: str | None = None
    field: str | None = None
    status: int | None = Field(None, description="the HTTP status this item alone would get")


class BatchOut(BaseModel):
    accepted: int
    refused: int
    results: list[BatchItem]


class StatusQuery(BaseModel):
    ids: list[str] = Field(max_length=1000, description="transaction ids (hex)")


class StatusEntry(BaseModel):
    id: str
    state: Literal["pending", "committed", "rejected", "unknown"]
    height: int | None = None
    reason: str | None = None
    error: str | None = None


class StatusList(BaseModel):
    statuses: list[StatusEntry]


def _status_out(status: TxStatus) -> dict[str, Any]:
    return {
        "id": status.id,
        "state": status.state,
        "height": status.height,
        "reason": status.reason,
        "error": status.error,
    }


@router.post(
    "/v1/transactions",
    summary="Submit a signed transaction",
    status_code=202,
    response_model=Accepted,
    responses=error_responses(400, 403, 409, 413, 415, 503),
    openapi_extra=_json_body(ENVELOPE_SCHEMA),
)
async def submit(svc: Svc, request: Request, response: Response):
    """Admit one transaction signed by its author. The node checks the signature, the
    signer's certificate and the write policy now, and for an `epcis.event` the EPCIS 2.0
    rules and that its eventID is not already recorded: a transaction that could never
    commit is refused with the reason. Duplicates and replays answer 409."""
    svc.admission.gate(1)
    raw = await read_body(request, MAX_TX_BODY)
    data = await parse_body(raw, "transaction", max_containers=MAX_TX_CONTAINERS)
    tx = Transaction.from_json(data)
    item = await anyio.to_thread.run_sync(prepare_one, 0, tx)
    recorded = await svc.admission.recorded([item])
    svc.admission.admit(item, recorded, set())
    url = f"/v1/transactions/{tx.id}"
    response.headers["Location"] = url
    return Accepted(id=tx.id, status_url=url)


@router.post(
    "/v1/transactions/batch",
    summary="Submit many signed transactions (bulk loads)",
    response_model=BatchOut,
    responses=error_responses(400, 403, 409, 413, 415, 503),
    openapi_extra=_json_body(BATCH_SCHEMA),
)
async def submit_batch(svc: Svc, request: Request) -> BatchOut:
    """Admit up to `max_batch` transactions in one request. Each item is judged on its
    own and gets its result (`pending`, or `refused` with the error); with `atomic`, one
    refusal refuses the whole batch (answered with that item's status) and nothing is
    admitted."""
    limit = svc.settings.max_batch
    svc.admission.gate(1)  # a node with no room at all need not read the body
    raw = await read_body(request, svc.settings.limits.max_batch_bytes)
    data = await parse_body(raw, "batch", max_containers=(limit + 1) * MAX_TX_CONTAINERS)
    if not isinstance(data, dict) or not isinstance(data.get("transactions"), list):
        raise ApiError("schema_error", 'batch: expected {"transactions": [<envelope>, ...]}')
    extra = sorted(set(data) - {"transactions", "atomic"})
    if extra:
        raise ApiError("schema_error", f"batch: unknown field(s) {', '.join(extra)}")
    atomic = data.get("atomic", False)
    if not isinstance(atomic, bool):
        raise ApiError("schema_error", "batch.atomic: expected true or false")
    items = data["transactions"]
    if len(items) > limit:
        raise ApiError("too_large", f"batch of {len(items)}; at most {limit}")
    svc.admission.gate(len(items))
    prepared: list[Prepared] = await anyio.to_thread.run_sync(prepare_json, items)
    recorded = await svc.admission.recorded(prepared)
    if atomic:
        svc.admission.precheck(prepared, recorded)
    results, batch = [], set()
    committed = svc.admission.committed_among(prepared)
    for item in prepared:
        try:
            svc.admission.admit(item, recorded, batch, committed)
            results.append(BatchItem(index=item.index, id=item.tx.id, state="pending"))
        except LedgerError as exc:
            body = body_of(exc)
            results.append(
                BatchItem(
                    index=item.index,
                    id=item.tx.id if item.tx else None,
                    state="refused",
                    error=exc.code,
                    message=exc.message,
                    field=body.get("field"),
                    status=status_of(exc),
                )
            )
    accepted = sum(r.state == "pending" for r in results)
    return BatchOut(accepted=accepted, refused=len(results) - accepted, results=results)


@router.post(
    "/v1/transactions/status",
    summary="States of many transactions",
    response_model=StatusList,
    responses=error_responses(400, 413, 415, 422),
    openapi_extra=_json_body(StatusQuery.model_json_schema()),
)
async def statuses(svc: Svc, request: Request) -> dict[str, Any]:
    """pending, committed, rejected (with the reason) or unknown, for each id given."""
    raw = await read_body(request, STATUS_BODY)
    data = await parse_body(raw, "status query", max_containers=16)
    try:
        query = StatusQuery.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from exc
    node = svc.node
    known = await anyio.to_thread.run_sync(
        node.store.known_tx_ids, [i for i in query.ids if _is_id(i) and i not in node.mempool]
    )
    out = []
    for tx_id in query.ids:
        if tx_id in known:
            out.append({"id": tx_id, "state": "committed"})
        elif _is_id(tx_id):
            out.append(_status_out(node.status(tx_id)))
        else:
            out.append({"id": tx_id, "state": "unknown"})
    return {"statuses": out}


def _is_id(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _receipt(svc: Services, tx_id: str) -> dict[str, Any] | None:
    stored = svc.node.store.tx(tx_id)
    if stored is None:
        return None
    changes = svc.index.membership_changes(stored.height)
    return build_receipt(svc.node.store, svc.genesis, tx_id, changes)


#: A fixed receipt's answer never changes (api.receiptcache).
FIXED_CACHE = "public, max-age=31536000, immutable"


def _changing_response(body: bytes) -> Response:
    return Response(body, media_type="application/json", headers={"Cache-Control": "no-cache"})


def _fixed_response(request: Request, tx_id: str, body: bytes) -> Response:
    etag = f'"{tx_id}"'
    headers = {"ETag": etag, "Cache-Control": FIXED_CACHE}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


def _status_answer(svc: Services, current: TxStatus) -> tuple[bytes, bool]:
    """The serialised answer of `status` and whether it is fixed for good: committed in
    a block below the head when it was read."""
    out = _status_out(current)
    fixed = False
    if current.state == "committed":
        head = svc.node.height
        out["receipt"] = _receipt(svc, current.id)
        fixed = current.height is not None and current.height < head
    model = TxStatusOut.model_validate(out)
    return JSONResponse(model.model_dump(mode="json", exclude_none=True)).body, fixed


@router.get(
    "/v1/transactions/{tx_id}",
    summary="State of a transaction, with its receipt once committed",
    response_model=TxStatusOut,
    response_model_exclude_none=True,
    responses=error_responses(404),
)
async def status(
    svc: Svc,
    request: Request,
    tx_id: str = Path(pattern=TX_ID, description="transaction id (64 hex digits)"),
    wait: float = Query(
        0, ge=0, le=600, description="block up to this many seconds until committed or rejected"
    ),
) -> Response:
    """`pending`, `committed` (with a receipt: the transaction, its block header, the commit
    certificate and inclusion proofs in the block and in the whole-ledger log) or
    `rejected` (with the reason). `wait` long-polls, capped by the node's setting. Once a
    later block fixes the certificate the answer is immutable (ETag, Cache-Control)."""
    key = ("status", tx_id)
    body = svc.fixed.get(key)
    if body is None:
        current = await svc.node.wait(tx_id, min(wait, svc.settings.max_wait))
        if current.state == "unknown":
            raise ApiError("not_found", f"transaction {tx_id} is not known to this node")
        body, fixed = await anyio.to_thread.run_sync(_status_answer, svc, current)
        if not fixed:
            return _changing_response(body)
        svc.fixed.put(key, body)
    return _fixed_response(request, tx_id, body)


def _receipt_answer(svc: Services, tx_id: str) -> tuple[bytes | None, bool]:
    head = svc.node.height
    data = _receipt(svc, tx_id)
    if data is None:
        return None, False
    return receipt_bytes(data), data["block"]["header"]["height"] < head


@router.get(
    "/v1/transactions/{tx_id}/receipt",
    summary="The receipt of a committed transaction (canonical JSON, save it as a file)",
    responses={
        200: {
            "content": {"application/json": {"schema": {"type": "object"}}},
            "description": "The receipt",
        },
        **error_responses(404),
    },
)
async def receipt(
    svc: Svc,
    request: Request,
    tx_id: str = Path(pattern=TX_ID, description="transaction id (64 hex digits)"),
) -> Response:
    """Verify it offline with `parktrace receipt verify RECEIPT.json --genesis genesis.json`."""
    key = ("receipt", tx_id)
    body = svc.fixed.get(key)
    if body is None:
        body, fixed = await anyio.to_thread.run_sync(_receipt_answer, svc, tx_id)
        if body is None:
            state = svc.node.status(tx_id).state
            detail = "is not committed yet" if state == "pending" else f"is {state}"
            raise ApiError("not_found", f"transaction {tx_id} {detail}: there is no receipt")
        if not fixed:
            return _changing_response(body)
        svc.fixed.put(key, body)
    return _fixed_response(request, tx_id, body)
