"""The regulator's audit API under /v1/audit: verification, cross-node comparison,
proofs, misbehaviour evidence, search and CSV export, backward and forward trace, recalls,
consumers' reports (举报) and the signed report's draft. Every endpoint requires a request
signed (RFC 9421) with a regulator certificate (api.audit.access); anyone else gets 403.
See docs/audit.md.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Response
from pydantic import BaseModel, Field

from api.audit import jobs, recalls, report
from sdk.audit import AuditClient
from traceability.audit import compare as comparing
from traceability.audit import evidence as evidence_module
from traceability.audit import proofs, search, trace
from traceability.audit.recall_status import recall_for
from traceability.codes import scanbook
from traceability.codes.digital_link import parse_uri
from traceability.receipts import receipt_bytes
from traceability.trust.origin import flags, trust_report

from ..audit.access import Regulator
from ..audit.settings import AuditSettings, audit_settings
from ..audit.verification import node_id, verification_report
from ..codes.service import CodesService, codes_service
from ..errors import ApiError, error_responses
from ..services import Services, Svc

router = APIRouter(prefix="/v1/audit", tags=["Audit (regulator)"])
Settings = Annotated[AuditSettings, Depends(audit_settings)]
Codes = Annotated[CodesService, Depends(codes_service)]
TX_ID = r"^[0-9a-f]{64}$"


def _identifier(what: str = "EPC, class, lot or container URI") -> Any:
    return Query(min_length=1, max_length=1024, description=what)


_JSON_FILE = {
    200: {"content": {"application/json": {"schema": {"type": "object"}}}, "description": "OK"}
}


def _run(fn: Any, *args: Any) -> Any:
    return anyio.to_thread.run_sync(fn, *args)


@router.get(
    "/verify",
    summary="Full-chain verification report of this node's store",
    responses=error_responses(403, 503),
)
async def verify(svc: Svc, who: Regulator) -> dict[str, Any]:
    """Every block, transaction and signature re-checked from the stored bytes: counts,
    time taken, and the first problem (height and what) if there is one."""
    return await _run(verification_report, svc.node)


@router.get(
    "/blocks",
    summary="Digests of this node's stored blocks (what the cross-node comparison compares)",
    responses=error_responses(400, 403),
)
async def blocks(
    svc: Svc,
    who: Regulator,
    start: int = Query(1, ge=1, description="first height"),
    end: int = Query(..., ge=1, description="last height (at most start + 999)"),
) -> dict[str, Any]:
    if end < start or end - start >= comparing.PAGE:
        raise ApiError("invalid_request", f"end must be from start to start + {comparing.PAGE - 1}")
    rows = await _run(comparing.block_digests, svc.node.store, start, end)
    return {"node": node_id(svc.node), "blocks": rows}


def _compare(svc: Services, settings: AuditSettings) -> dict[str, Any]:
    own = settings.self_id or node_id(svc.node)
    others = {k: v for k, v in settings.nodes.items() if k != own}
    if not others or settings.identity is None:
        raise ApiError(
            "not_configured",
            "this node has no other nodes to compare with, or no regulator identity to ask "
            "them as (PARKTRACE_AUDIT_NODES, PARKTRACE_AUDIT_KEY/CERT); or run "
            "`parktrace audit compare` from the regulator's machine",
        )
    clients = {k: AuditClient(url, identity=settings.identity) for k, url in others.items()}
    try:
        sources: dict[str, comparing.DigestSource] = {
            k: comparing.HttpSource(c) for k, c in clients.items()
        }
        sources[own or "this-node"] = comparing.LocalSource(svc.node.store)
        return comparing.compare(sources).to_json()
    finally:
        for client in clients.values():
            client.close()


@router.get(
    "/compare",
    summary="Compare this node's blocks with every other validator's",
    responses=error_responses(400, 403),
)
async def compare(svc: Svc, who: Regulator, settings: Settings) -> dict[str, Any]:
    """Heights where any node's stored block differs, and which node differs."""
    return await _run(_compare, svc, settings)


@router.get(
    "/proofs/receipt/{tx_id}",
    summary="Receipt of any transaction (verify offline: parktrace audit proof verify)",
    responses={**_JSON_FILE, **error_responses(403, 404)},
)
async def receipt(
    svc: Svc, who: Regulator, tx_id: str = Path(pattern=TX_ID, description="transaction id")
) -> Response:
    data = await _run(proofs.receipt, svc.node.store, svc.genesis, svc.index, tx_id)
    return Response(receipt_bytes(data), media_type="application/json")


@router.get(
    "/proofs/consistency",
    summary="Consistency proof between two blocks: the ledger only grew",
    responses={**_JSON_FILE, **error_responses(400, 403, 404)},
)
async def consistency(
    svc: Svc,
    who: Regulator,
    first: int = Query(..., ge=1, description="the earlier block height"),
    second: int = Query(..., ge=1, description="the later block height"),
) -> Response:
    data = await _run(
        proofs.consistency_proof, svc.node.store, svc.genesis, svc.index, first, second
    )
    return Response(receipt_bytes(data), media_type="application/json")


@router.get(
    "/evidence",
    summary="Committed evidence of misbehaving validators",
    responses=error_responses(403),
)
async def evidence(svc: Svc, who: Regulator) -> dict[str, Any]:
    return await _run(
        evidence_module.list_evidence, svc.node.store, svc.node.membership, svc.genesis
    )


@router.get(
    "/evidence/{key:path}",
    summary="One evidence record with both conflicting votes",
    responses=error_responses(403, 404),
)
async def evidence_detail(
    svc: Svc, who: Regulator, key: str = Path(max_length=300, description="evidence key")
) -> dict[str, Any]:
    return await _run(
        evidence_module.evidence_detail, svc.node.store, svc.node.membership, svc.genesis, key
    )


def _filters(
    organization: str | None = Query(None, max_length=100, description="organisation id"),
    identifier: str | None = Query(None, max_length=1024, description="any EPC or class"),
    lot: str | None = Query(None, max_length=1024, description="a lot (class) identifier"),
    biz_step: str | None = Query(None, alias="bizStep", max_length=300, description="CBV step"),
    since: str | None = Query(None, max_length=40, description="eventTime >= (RFC 3339)"),
    until: str | None = Query(None, max_length=40, description="eventTime < (RFC 3339)"),
    limit: int = Query(1000, ge=1, le=search.MAX_ROWS),
) -> search.Filters:
    return search.Filters(organization, identifier, lot, biz_step, since, until, limit)


Filters = Annotated[search.Filters, Depends(_filters)]


@router.get(
    "/events",
    summary="Search events by organisation, identifier, lot, bizStep and time",
    responses=error_responses(400, 403),
)
async def events(svc: Svc, who: Regulator, filters: Filters) -> dict[str, Any]:
    rows = await _run(search.search, svc.index, svc.node.membership, filters)
    return {"filters": filters.to_json(), "count": len(rows), "events": rows}


@router.get(
    "/events.csv",
    summary="The same search as CSV",
    responses={
        200: {"content": {"text/csv": {}}, "description": "CSV with a header row"},
        **error_responses(400, 403),
    },
)
async def events_csv(svc: Svc, who: Regulator, filters: Filters) -> Response:
    rows = await _run(search.search, svc.index, svc.node.membership, filters)
    return Response(
        search.to_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="parktrace-events.csv"'},
    )


@router.get(
    "/trace/backward",
    summary="What went into a lot: plots, harvests, input lots, containers",
    responses=error_responses(403, 404),
)
async def trace_backward(svc: Svc, who: Regulator, identifier: str = _identifier()) -> dict:
    found = await _run(trace.backward, svc.index, svc.node.membership, identifier)
    if found is None:
        raise ApiError("not_found", f"no committed event names {identifier}")
    return found


@router.get(
    "/trace/forward",
    summary="Where a lot went: units, boxes, cartons, outputs, shipments, locations",
    responses=error_responses(403, 404),
)
async def trace_forward(
    svc: Svc, who: Regulator, codes: Codes, identifier: str = _identifier()
) -> dict[str, Any]:
    units = recalls.serial_units(codes, svc.node.store)
    found = await _run(trace.forward, svc.index, svc.node.membership, identifier, units)
    if found is None:
        raise ApiError("not_found", f"no committed event names {identifier} or its units")
    return found


@router.get(
    "/recalls",
    summary="Committed recalls and how much each reaches",
    responses=error_responses(403),
)
async def recall_list(svc: Svc, who: Regulator) -> dict[str, Any]:
    node = svc.node
    return await _run(recalls.list_recalls, node.rules.recalls, node.store, node.membership)


@router.get(
    "/recalls/plan",
    summary="What a recall of this lot must name (sign it yourself: a `recall` transaction)",
    responses=error_responses(403),
)
async def recall_plan(
    svc: Svc,
    who: Regulator,
    codes: Codes,
    lot: str = _identifier("the lot (or any identifier) to recall"),
) -> dict[str, Any]:
    units = recalls.serial_units(codes, svc.node.store)
    return await _run(recalls.plan, svc.index, svc.node.membership, lot, units)


@router.get(
    "/recalls/status",
    summary="Is this identifier recalled, and by which recall",
    responses=error_responses(403),
)
async def recall_status(svc: Svc, who: Regulator, identifier: str = _identifier()) -> dict:
    info = await _run(recall_for, svc, identifier)
    return info.to_json() if info else {"recalled": False, "identifier": identifier}


@router.get(
    "/trust",
    summary="Trust rules: the rule set in force, registered plots, alerts counted",
    responses=error_responses(403),
)
async def trust(svc: Svc, who: Regulator) -> dict[str, Any]:
    node = svc.node
    return await _run(trust_report, node.rules.trust, node.store, node.height + 1)


@router.get(
    "/trust/status",
    summary="Trust flags of one identifier: cold-chain readings out of range, back-dated events",
    responses=error_responses(403),
)
async def trust_status(svc: Svc, who: Regulator, identifier: str = _identifier()) -> dict:
    return await _run(flags, svc.node.store, identifier)


def _draft(
    svc: Services, settings: AuditSettings, verification: dict[str, Any] | None = None
) -> dict[str, Any]:
    if verification is None:
        verification = verification_report(svc.node)
    try:
        comparison = _compare(svc, settings)
    except ApiError:  # no other nodes configured: the report covers this node alone
        comparison = None
    height = verification["head_height"]
    header = svc.node.store.header(height) if height else None
    head = (
        {
            "height": header.height,
            "hash": header.hash,
            "time": header.time,
            "log_size": header.log_size,
            "log_root": header.log_root,
        }
        if header
        else {"height": 0, "hash": svc.genesis.hash, "time": None, "log_size": 0}
    )
    return report.draft(verification, head, comparison)


@router.get(
    "/report",
    summary="Draft of an audit report of this node (sign it yourself: parktrace audit report)",
    responses=error_responses(403),
)
async def report_draft(svc: Svc, who: Regulator, settings: Settings) -> dict[str, Any]:
    return await _run(_draft, svc, settings)


class JobStart(BaseModel):
    kind: Literal["verify", "report"] = Field(
        "verify", description="verify: the full-chain verification; report: a report's draft"
    )


@router.post(
    "/jobs",
    status_code=202,
    summary="Start a full verification (or a report's draft) as a job; answers at once",
    responses=error_responses(400, 403),
)
async def job_start(
    svc: Svc, who: Regulator, settings: Settings, start: JobStart | None = None
) -> dict[str, Any]:
    """The job runs in the node whether or not anyone waits for it: ask for it by id
    (`GET /v1/audit/jobs/{id}`) for its progress and, when done, its result. While a
    job of the same kind runs, this gives that job."""
    kind = start.kind if start is not None else "verify"
    node = svc.node
    job = jobs.jobs_of(node, node_id(node)).start(
        kind, lambda verification: _draft(svc, settings, verification)
    )
    return job.to_json()


@router.get(
    "/jobs",
    summary="This node's audit jobs, newest first",
    responses=error_responses(403),
)
async def job_list(svc: Svc, who: Regulator) -> dict[str, Any]:
    node = svc.node
    return {"jobs": [job.to_json() for job in jobs.jobs_of(node, node_id(node)).all()]}


@router.get(
    "/jobs/{job_id}",
    summary="One audit job: state, events checked of the total, rate, time left, result",
    responses=error_responses(403, 404),
)
async def job_status(
    svc: Svc, who: Regulator, job_id: str = Path(pattern=r"^[0-9a-f]{32}$")
) -> dict[str, Any]:
    node = svc.node
    job = jobs.jobs_of(node, node_id(node)).get(job_id)
    if job is None:
        raise ApiError("not_found", f"no audit job {job_id} on this node (it may have restarted)")
    return job.to_json()


@router.get(
    "/reports",
    summary="Consumers' reports of suspicious products (举报), newest first",
    responses=error_responses(400, 403),
)
async def consumer_reports(
    svc: Svc,
    who: Regulator,
    code: str | None = Query(None, max_length=2048, description="a product's Digital Link"),
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    """Every report committed on the ledger (the code, when and where, the note, the
    photo's address and digest, the node that recorded it and its block)."""
    key = None
    if code is not None:
        link = parse_uri(code, "code")
        key = link.instance_id or link.lot_id or link.product_id
    rows = await _run(svc.index.run, scanbook.reports_query(key, None, limit))
    return {"reports": [scanbook.report_json(r) for r in rows]}


def _photo(svc: Services, sha256: str) -> bytes:
    rows = svc.index.run(scanbook.photo_query(sha256))
    stored = svc.node.store.tx(rows[0].tx_id) if rows else None
    data = scanbook.photo_of(stored.tx.payload, sha256) if stored else None
    if data is None:
        raise ApiError("not_found", f"no report on the ledger has the photo {sha256}")
    return data


@router.get(
    "/reports/photos/{sha256}",
    summary="A report's photo (JPEG), by its SHA-256",
    responses={200: {"content": {"image/jpeg": {}}}, **error_responses(403, 404)},
)
async def report_photo(
    svc: Svc, who: Regulator, sha256: str = Path(pattern=r"^[0-9a-f]{64}$")
) -> Response:
    data = await _run(_photo, svc, sha256)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private"})


def mount(app: FastAPI) -> None:
    """Add this router to `app` unless it has it already (once api/app.py lists it)."""
    for route in app.routes:
        if getattr(route, "original_router", None) is router or str(
            getattr(route, "path", "")
        ).startswith(router.prefix):
            return
    app.include_router(router)
