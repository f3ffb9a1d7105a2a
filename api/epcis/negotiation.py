"""Content negotiation of the EPCIS REST binding: the EPCIS and CBV versions a client
accepts (`GS1-EPCIS-Min/Max`, `GS1-CBV-Min/Max`: this node speaks 2.0.0 of both, and
answers 406 to a range without it), and how EPCs are spelled in answers
(`GS1-EPC-Format`, traceability.epcis.epcformat). Every answer says what it speaks in
`GS1-EPCIS-Version` and `GS1-CBV-Version`."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import Request, Response
from fastapi.responses import JSONResponse

from traceability.epcis.epcformat import DEFAULT_FORMAT, FORMATS, converter, respell
from traceability.epcis.query import EventQuery, query_document, run_query

from ..errors import ApiError
from ..services import Services

VERSION = "2.0.0"
EPCIS_HEADERS = {"GS1-EPCIS-Version": VERSION, "GS1-CBV-Version": VERSION}


def _version(text: str, header: str) -> tuple[int, ...]:
    try:
        parts = tuple(int(p) for p in text.strip().split("."))
        if not 1 <= len(parts) <= 3:
            raise ValueError
    except ValueError:
        raise ApiError("invalid_query", f"{header}: expected a version like 2.0.0") from None
    return parts + (0,) * (3 - len(parts))


def negotiate(request: Request) -> str:
    """Refuse (406) a version range without 2.0.0; the EPC format the client asks for."""
    ours = _version(VERSION, "")
    for kind in ("EPCIS", "CBV"):
        low = request.headers.get(f"GS1-{kind}-Min")
        high = request.headers.get(f"GS1-{kind}-Max")
        if (low and _version(low, f"GS1-{kind}-Min") > ours) or (
            high and _version(high, f"GS1-{kind}-Max") < ours
        ):
            raise ApiError(
                "not_acceptable",
                f"this node speaks {kind} {VERSION} only; widen GS1-{kind}-Min/Max",
            )
    fmt = request.headers.get("GS1-EPC-Format", DEFAULT_FORMAT).strip()
    if fmt not in FORMATS:
        raise ApiError("invalid_query", f"GS1-EPC-Format: one of {', '.join(FORMATS)}")
    return fmt


def spelled(svc: Services, fmt: str, document: dict[str, Any]) -> dict[str, Any]:
    """`document` (an EPCISQueryDocument) with its events' EPCs spelled as `fmt` asks."""
    membership, height = svc.node.membership, svc.node.height + 1

    def prefix_of(digits: str) -> str | None:
        grant = membership.prefix_owner(digits, height)
        return grant.prefix if grant is not None else None

    spell = converter(fmt, prefix_of)
    if spell is None:
        return document
    body = document["epcisBody"]["queryResults"]["resultsBody"]
    body["eventList"] = [respell(e, spell) for e in body["eventList"]]
    return document


async def query_response(
    svc: Services, request: Request, query: EventQuery, scope: Any, *, query_name: str | None = None
) -> Response:
    """One page of `query` within `scope`, as an EPCISQueryDocument in the asked format,
    with `Link: rel="next"` when more follow."""
    fmt = negotiate(request)

    def answer() -> tuple[dict[str, Any], str | None]:
        items, token = run_query(svc.index, query, scope)
        document = query_document(items, query_name or "SimpleEventQuery")
        return spelled(svc, fmt, document), token

    document, token = await anyio.to_thread.run_sync(answer)
    headers = dict(EPCIS_HEADERS)
    headers["GS1-EPC-Format"] = fmt
    if token:
        headers["Link"] = (
            f'<{request.url.path}?nextPageToken={token}&perPage={query.per_page}>; rel="next"'
        )
    return JSONResponse(document, headers=headers)
