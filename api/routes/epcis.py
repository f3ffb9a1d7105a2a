"""EPCIS 2.0 REST binding: capture (`/capture`), queries (`/events`), and one product's
full history (`/v1/products/{identifier}/history`).

`/capture` takes an EPCISDocument (or EPCISQueryDocument) from an EPCIS client that
signs its HTTP request (RFC 9421, see api/auth.py). Each accepted event becomes a
transaction of the capturing organisation, signed by the capture certificate that
organisation delegated to this node. Producers who sign their own transactions (the
SDK, `parktrace capture`) use /v1/transactions/batch instead and keep their key.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, Literal
from urllib.parse import quote

import anyio
from fastapi import APIRouter, Header, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from ledger import timefmt
from ledger.errors import LedgerError, NotPermittedError
from ledger.policy import EPCIS_TX_TYPE
from sdk.signing import Identity
from traceability.epcis.context import DEFAULT_CONTEXT
from traceability.epcis.document import (
    MAX_DOCUMENT_BYTES,
    CheckedDocument,
    check_document,
    parse_json,
)
from traceability.epcis.history import product_history
from traceability.epcis.problems import EpcisValidationError, Problem, relabel
from traceability.epcis.query import EventQuery, query_document, run_query
from traceability.epcis.records import payload_for

from ..epcis.access import Reading
from ..epcis.admission import Prepared, prepare_one
from ..epcis.capture import MAX_JOBS, CaptureJob
from ..epcis.negotiation import EPCIS_HEADERS, negotiate, query_response, spelled
from ..errors import ApiError, error_responses
from ..services import Services, Svc
from . import read_body

router = APIRouter(tags=["EPCIS"])
_DOCUMENT_SCHEMA = {
    "type": "object",
    "description": "An EPCISDocument or EPCISQueryDocument (GS1 EPCIS 2.0 JSON / JSON-LD)",
    "required": ["@context", "type", "epcisBody"],
    "properties": {
        "@context": {},
        "type": {"type": "string", "enum": ["EPCISDocument", "EPCISQueryDocument"]},
        "schemaVersion": {"type": "string", "example": "2.0"},
        "creationDate": {"type": "string", "example": "2026-11-22T08:30:00.000+08:00"},
        "epcisBody": {"type": "object"},
    },
}


class CaptureJobOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    captureID: str
    createdAt: str
    finishedAt: str | None
    running: bool
    success: bool
    captureErrorBehaviour: Literal["rollback", "proceed"]
    errors: list[dict[str, Any]]
    transactions: list[dict[str, Any]] = Field(description="each event's ledger transaction")


# -- capture ---------------------------------------------------------------------------


def _signed_events(
    checked: CheckedDocument, signer: Identity, chain_id: str
) -> list[tuple[Prepared, str]]:
    """Sign each valid event as a transaction of the capture certificate; check it."""
    out = []
    for event in checked.events:
        try:
            tx = signer.sign_tx(chain_id, EPCIS_TX_TYPE, payload_for(event.event))
        except LedgerError as exc:  # e.g. an event too large for one transaction
            out.append((Prepared(event.index, None, None, relabel(exc, event.path)), event.path))
            continue
        out.append((prepare_one(event.index, tx, event.path), event.path))
    return out


@router.post(
    "/capture",
    summary="Capture an EPCIS document (asynchronous; returns a capture job)",
    status_code=202,
    response_model=CaptureJobOut,
    responses=error_responses(400, 401, 403, 409, 413, 415, 503, problem_json=True),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": _DOCUMENT_SCHEMA},
                "application/ld+json": {"schema": _DOCUMENT_SCHEMA},
            },
        }
    },
)
async def capture(
    svc: Svc,
    request: Request,
    response: Response,
    behaviour: Annotated[
        Literal["rollback", "proceed"],
        Header(
            alias="GS1-Capture-Error-Behaviour",
            description="rollback: all events or none (default); proceed: the valid ones",
        ),
    ] = "rollback",
    signature_input: Annotated[
        str | None,
        Header(
            alias="Signature-Input",
            description="RFC 9421 (with Signature and Content-Digest), see docs/api.md",
        ),
    ] = None,  # documented here; verified from the raw headers with the body
):
    """Validate the document against the official EPCIS 2.0 JSON schema and the CBV 2.0
    rules the schema cannot express, give events without an eventID their GS1 event
    hash ID, and record each event as a transaction of the capturing organisation.

    The request must carry an HTTP Message Signature (RFC 9421) by a member certificate
    of the capturing organisation, covering @method, @authority, @path and
    Content-Digest."""
    raw = await read_body(request, MAX_DOCUMENT_BYTES)
    job = await _capture(svc, request, raw, behaviour)
    url = f"/capture/{job.id}"
    response.headers["Location"] = url
    response.headers.update(EPCIS_HEADERS)
    return job.view(svc.node)


async def _capture(
    svc: Services,
    request: Request,
    raw: bytes,
    behaviour: Literal["rollback", "proceed"],
    document: Callable[[Any], Any] = lambda doc: doc,
) -> CaptureJob:
    """Authenticate the signed request, check what `document` makes of its body, sign each
    valid event with the caller organisation's delegated certificate and admit it."""
    caller = await svc.verifier.verify_async(request.method, str(request.url), request.headers, raw)
    signer = svc.settings.capture_signers.get(caller.org)
    if signer is None:
        raise NotPermittedError(
            f"organisation {caller.org!r} has delegated no capture certificate to this node; "
            "sign events yourself with the ParkTrace SDK or `parktrace capture`"
        )
    checked: CheckedDocument = await anyio.to_thread.run_sync(
        lambda: check_document(document(parse_json(raw)))
    )
    svc.admission.gate(len(checked.events))
    if behaviour == "rollback" and checked.rejected:
        problems: list[Problem] = []
        for _, error in checked.rejected:
            problems += error.problems
        raise EpcisValidationError(problems)
    signed = await anyio.to_thread.run_sync(
        _signed_events, checked, signer, svc.node.genesis.chain_id
    )
    prepared = [p for p, _ in signed]
    recorded = await svc.admission.recorded(prepared)
    if behaviour == "rollback":
        try:
            svc.admission.precheck(prepared, recorded)
        except LedgerError as exc:
            raise _event_error(exc, signed) from None
    job = svc.jobs.create(behaviour, caller.org, checked.total)
    for index, error in checked.rejected:
        job.errors.append(_job_error(index, None, error))
    batch: set[str] = set()
    committed = svc.admission.committed_among(prepared)
    for item, path in signed:
        try:
            svc.admission.admit(item, recorded, batch, committed)
            assert item.tx is not None
            job.accepted.append((item.index, item.event_id, item.tx.id))
        except LedgerError as exc:
            job.errors.append(_job_error(item.index, item.event_id, relabel(exc, path)))
    return job


def _event_error(exc: LedgerError, signed: list[tuple[Prepared, str]]) -> LedgerError:
    """Precheck errors say 'transactions[i]'; a capture client thinks in events."""
    for item, path in signed:
        prefix = f"transactions[{item.index}]"
        if exc.message.startswith(prefix):
            exc.message = path + exc.message[len(prefix) :]
            exc.args = (exc.message,)
    return exc


def _job_error(index: int, event_id: str | None, error: LedgerError) -> dict[str, Any]:
    problems = getattr(error, "problems", None)
    entry = {
        "eventIndex": index,
        "eventID": event_id,
        "error": error.code,
        "message": error.message,
    }
    if problems:
        entry["field"] = problems[0].path
        entry["rule"] = problems[0].rule
    return entry


_EVENT_PATH = "epcisBody.eventList[0]"


def _as_document(event: Any) -> dict[str, Any]:
    """The document one event posted to `/events` is captured in: its `@context` moves up
    to the document (EPCIS 2.0 JSON-LD allows it on either), the rest is the event."""
    if not isinstance(event, dict) or event.get("type") in ("EPCISDocument", "EPCISQueryDocument"):
        raise EpcisValidationError(
            [
                Problem(
                    "",
                    "single-event",
                    "POST /events takes one EPCIS event; documents go to /capture",
                )
            ]
        )
    event = dict(event)
    return {
        "@context": event.pop("@context", DEFAULT_CONTEXT),
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": timefmt.now(),
        "epcisBody": {"eventList": [event]},
    }


def _event_problems(exc: EpcisValidationError) -> EpcisValidationError:
    """Problems named as paths in the posted event, not in the document around it."""
    return EpcisValidationError(
        [
            Problem(p.path.removeprefix(_EVENT_PATH).removeprefix("."), p.rule, p.message)
            for p in exc.problems
        ]
    )


@router.post(
    "/events",
    summary="Capture one EPCIS event (synchronous: answers once it is committed)",
    status_code=201,
    responses={
        202: {"description": "admitted, not committed yet: follow Location (a capture job)"},
        **error_responses(400, 401, 403, 409, 413, 415, 503, problem_json=True),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "application/ld+json": {"schema": {"type": "object"}},
            },
        }
    },
)
async def capture_event(svc: Svc, request: Request, response: Response) -> dict[str, Any]:
    """The EPCIS 2.0 binding's single-event capture: the event is checked like one of a
    document sent to `/capture` (same authentication, same rules) and recorded as a
    transaction of the caller's organisation. The answer waits for the commit (at most
    the API's `max_wait`): 201 with Location `/events/{eventID}`, or 202 with the capture
    job's Location if the block has not been decided by then."""
    raw = await read_body(request, MAX_DOCUMENT_BYTES)
    try:
        job = await _capture(svc, request, raw, "rollback", _as_document)
    except EpcisValidationError as exc:
        raise _event_problems(exc) from None
    if job.errors:
        error = job.errors[0]
        raise ApiError(error["error"], error["message"])
    _, event_id, tx_id = job.accepted[0]
    response.headers.update(EPCIS_HEADERS)
    status = await svc.node.wait(tx_id, svc.settings.max_wait)
    if status.state != "committed":
        response.status_code = 202
        response.headers["Location"] = f"/capture/{job.id}"
        return job.view(svc.node)
    response.headers["Location"] = f"/events/{quote(event_id or '', safe='')}"
    return {"eventID": event_id, "transaction": tx_id, "state": status.state}


@router.get(
    "/capture",
    summary="Recent capture jobs of this node",
    response_model=list[CaptureJobOut],
    responses=error_responses(problem_json=True),
)
async def capture_jobs(
    svc: Svc,
    who: Reading,
    perPage: int = Query(30, ge=1, le=1000, description="how many, newest first"),
) -> list[dict[str, Any]]:
    jobs = [
        job
        for job in svc.jobs.recent(MAX_JOBS)
        if who.reader.everything or job.org == who.caller.org
    ]
    return [job.view(svc.node) for job in jobs[:perPage]]


@router.get(
    "/capture/{captureID}",
    summary="State of a capture job",
    response_model=CaptureJobOut,
    responses=error_responses(404, problem_json=True),
)
async def capture_job(
    svc: Svc,
    who: Reading,
    captureID: str = Path(max_length=64, description="as returned in Location"),
) -> dict[str, Any]:
    """running while any event's transaction is pending; success when none was refused or
    rejected; `transactions` lists each event's transaction (for receipts)."""
    job = svc.jobs.get(captureID)
    if job is None or not (who.reader.everything or job.org == who.caller.org):
        raise ApiError("not_found", f"no capture job {captureID!r} on this node")
    return job.view(svc.node)


# -- queries ---------------------------------------------------------------------------


class EventQueryParams(BaseModel):
    """EPCIS 2.0 query parameters this node answers; several values separated by '|'."""

    model_config = ConfigDict(extra="forbid")

    eventType: str | None = Field(None, description="ObjectEvent|AggregationEvent|…")
    GE_eventTime: str | None = Field(None, description="eventTime >= (RFC 3339 with offset)")
    LT_eventTime: str | None = Field(None, description="eventTime <")
    GE_recordTime: str | None = Field(None, description="recordTime (block time) >=")
    LT_recordTime: str | None = Field(None, description="recordTime <")
    EQ_action: str | None = Field(None, description="ADD|OBSERVE|DELETE")
    EQ_bizStep: str | None = Field(None, description="CBV word (shipping) or custom URI")
    EQ_disposition: str | None = Field(None, description="CBV word (in_transit) or custom URI")
    EQ_readPoint: str | None = Field(None, description="read point id")
    EQ_bizLocation: str | None = Field(None, description="business location id")
    EQ_transformationID: str | None = None
    EQ_eventID: str | None = None
    MATCH_epc: str | None = Field(None, description="EPC in epcList or childEPCs")
    MATCH_parentID: str | None = None
    MATCH_inputEPC: str | None = None
    MATCH_outputEPC: str | None = None
    MATCH_anyEPC: str | None = Field(None, description="EPC anywhere (list, parent, in, out)")
    MATCH_epcClass: str | None = Field(None, description="class/lot in a quantity list")
    MATCH_inputEPCClass: str | None = None
    MATCH_outputEPCClass: str | None = None
    MATCH_anyEPCClass: str | None = None
    EXISTS_errorDeclaration: str | None = Field(None, description="only corrected events")
    WD_readPoint: str | None = Field(None, description="read point (no hierarchy: = EQ_)")
    WD_bizLocation: str | None = Field(None, description="location (no hierarchy: = EQ_)")
    EQ_persistentDisposition_set: str | None = None
    EQ_persistentDisposition_unset: str | None = None
    EQ_quantity: str | None = None
    GT_quantity: str | None = None
    GE_quantity: str | None = None
    LT_quantity: str | None = None
    LE_quantity: str | None = None
    GE_errorDeclarationTime: str | None = None
    LT_errorDeclarationTime: str | None = None
    EQ_errorReason: str | None = None
    EQ_correctiveEventID: str | None = None
    eventCountLimit: str | None = Field(None, description="at most this many events in all")
    maxEventCount: str | None = Field(None, description="more matching events: 413")
    GE_startTime: str | None = Field(None, description="sensor startTime >=")
    LT_startTime: str | None = None
    GE_endTime: str | None = None
    LT_endTime: str | None = None
    EQ_type: str | None = Field(None, description="sensor report type, e.g. gs1:Temperature")
    EQ_deviceID: str | None = None
    EQ_dataProcessingMethod: str | None = None
    EQ_microorganism: str | None = None
    EQ_chemicalSubstance: str | None = None
    EQ_bizRules: str | None = None
    EQ_stringValue: str | None = None
    EQ_hexBinaryValue: str | None = None
    EQ_uriValue: str | None = None
    EQ_booleanValue: str | None = None
    orderBy: Literal["eventTime", "recordTime"] | None = None
    orderDirection: Literal["ASC", "DESC"] | None = None
    perPage: int | None = Field(None, ge=1, le=1000, description="events per page (30)")
    nextPageToken: str | None = Field(None, max_length=4096)


@router.get(
    "/events",
    summary="Query EPCIS events (a subset of SimpleEventQuery)",
    responses={
        200: {"description": "An EPCISQueryDocument", "content": {"application/json": {}}},
        **error_responses(400, problem_json=True),
    },
)
async def query_events(
    svc: Svc,
    who: Reading,
    request: Request,
    params: Annotated[EventQueryParams, Query()],
) -> Response:
    """Events matching every filter given, as an EPCISQueryDocument, in ledger order
    unless `orderBy` says otherwise. Each event carries its recordTime (its block's
    time) and `parktrace:ledger` (transaction id, height, log index) for receipts.
    More pages: follow the `Link: rel="next"` header (a token works on every node).
    Members only (signed like /capture), each seeing what the read rule allows."""
    values = {
        k: v if isinstance(v, str) else str(v)
        for k, v in params.model_dump(exclude_none=True).items()
    }
    query = EventQuery.from_params(values)
    return await query_response(svc, request, query, who.scope)


@router.get(
    "/events/{eventID:path}",
    summary="One EPCIS event by its eventID (URL-encode it)",
    responses={
        200: {"description": "An EPCISQueryDocument", "content": {"application/json": {}}},
        **error_responses(404, problem_json=True),
    },
)
async def event_by_id(
    svc: Svc,
    who: Reading,
    request: Request,
    eventID: str = Path(max_length=1024),
) -> Response:
    """The event, and an error declaration of it if one is recorded (which repeats its
    eventID and names the corrective events)."""
    fmt = negotiate(request)
    query = EventQuery({"EQ_eventID": [eventID]}, per_page=100)
    items, _ = await anyio.to_thread.run_sync(run_query, svc.index, query, who.scope)
    if not items:
        raise ApiError("not_found", f"no event {eventID!r} you may read is recorded")
    document = spelled(svc, fmt, query_document(items))
    return Response(
        content=json.dumps(document, ensure_ascii=False),
        media_type="application/json",
        headers={**EPCIS_HEADERS, "GS1-EPC-Format": fmt},
    )


# -- product history -------------------------------------------------------------------


class HistoryOut(BaseModel):
    identifier: str
    canonicalIdentifier: str = Field(description="GS1 Digital Link form, when it has one")
    containers: list[dict[str, Any]] = Field(description="what it travelled in, and when")
    inputs: list[dict[str, Any]] = Field(description="what it was made from")
    truncated: bool = Field(description="the history was cut at the size or depth limit")
    events: list[dict[str, Any]] = Field(description="every event, in event-time order")


@router.get(
    "/v1/products/{identifier:path}/history",
    summary="One product's full history (following aggregations and transformations)",
    response_model=HistoryOut,
    responses=error_responses(404),
    tags=["Products"],
)
async def history(
    svc: Svc,
    identifier: str = Path(max_length=1024, description="EPC, class or lot URI (URL-encoded)"),
) -> dict[str, Any]:
    """Its own events; those of the box and carton it travelled in while it was inside
    them; and, through transformations, the history of the lots it was made from.
    Each event names its relation (self, container, input) and ledger transaction."""
    result = await anyio.to_thread.run_sync(product_history, svc.index, identifier)
    if result is None:
        raise ApiError("not_found", f"no recorded event names {identifier!r}")
    return result
