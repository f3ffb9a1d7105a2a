"""The rest of the EPCIS 2.0 REST binding beside capture and `/events` (api/routes/epcis.py):
discovery (`OPTIONS` on every resource, `GET /`), the top-level resources (`/eventTypes`,
`/epcs`, `/bizSteps`, `/bizLocations`, `/readPoints`, `/dispositions`, each with
`/{value}` and `/{value}/events`), named queries and their subscriptions (webhooks and
WebSockets, api/epcis/subscriptions.py), and `DELETE /nextPageToken/{token}`.

Everything that reads events is answered to authenticated members only, each seeing what
the read rule lets it (api/epcis/access.py); discovery of the server itself (`OPTIONS`,
`GET /`) is open.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from importlib.metadata import version
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Path, Query, Request, Response, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse

from traceability.epcis import vocabulary
from traceability.epcis.document import MAX_DOCUMENT_EVENTS
from traceability.epcis.epcformat import FORMATS
from traceability.epcis.query import (
    DEFAULT_PER_PAGE,
    LEDGER_NAMESPACE,
    QUERY_CONTEXT,
    EventQuery,
    decode_token,
)

from ..epcis.access import Reading, authenticate
from ..epcis.negotiation import EPCIS_HEADERS, negotiate, query_response
from ..epcis.subscriptions import SubscriptionError
from ..errors import ApiError, error_responses
from ..services import Svc
from . import parse_body, read_body

router = APIRouter(tags=["EPCIS"])
TOP_LEVEL = ["events", "eventTypes", "epcs", "bizSteps", "bizLocations", "readPoints"]
TOP_LEVEL += ["dispositions", "capture", "queries"]

#: Every path of the binding and the methods it answers here (beside OPTIONS).
BINDING_PATHS: dict[str, tuple[str, ...]] = {
    "/": ("GET",),
    "/capture": ("GET", "POST"),
    "/capture/{captureID}": ("GET",),
    "/events": ("GET", "POST"),
    "/events/{eventID}": ("GET",),
    **{f"/{r}": ("GET",) for r in vocabulary.RESOURCES},
    **{f"/{r}/{{value}}": ("GET",) for r in vocabulary.RESOURCES},
    **{f"/{r}/{{value}}/events": ("GET",) for r in vocabulary.RESOURCES},
    "/queries": ("GET", "POST"),
    "/queries/{queryName}": ("GET", "DELETE"),
    "/queries/{queryName}/subscriptions": ("GET", "POST"),
    "/queries/{queryName}/subscriptions/{subscriptionID}": ("GET", "DELETE"),
    "/queries/{queryName}/events": ("GET",),
}
PerPage = Annotated[int, Query(ge=1, le=1000, description="items per page")]
Token = Annotated[str | None, Query(max_length=4096, description="from a Link: rel=next")]


def _collection(members: list[str], context: Any = None) -> dict[str, Any]:
    return {"@context": context or QUERY_CONTEXT, "type": "Collection", "member": members}


def _paged(request: Request, body: Any, token: str | None, per_page: int) -> JSONResponse:
    headers = dict(EPCIS_HEADERS)
    if token:
        headers["Link"] = (
            f'<{request.url.path}?nextPageToken={token}&perPage={per_page}>; rel="next"'
        )
    return JSONResponse(body, headers=headers)


# -- discovery ---------------------------------------------------------------------------


def _options_headers(svc: Any, path: str) -> dict[str, str]:
    headers = {
        **EPCIS_HEADERS,
        "Allow": ", ".join(("OPTIONS", *BINDING_PATHS[path])),
        "GS1-EPCIS-Min": "2.0.0",
        "GS1-EPCIS-Max": "2.0.0",
        "GS1-CBV-Min": "2.0.0",
        "GS1-CBV-Max": "2.0.0",
        "GS1-Extensions": f"parktrace={LEDGER_NAMESPACE}",
        "GS1-EPC-Format": ", ".join(FORMATS),
        "GS1-Vendor-Version": "ParkTrace " + version("parktrace"),
    }
    if path in ("/capture", "/events"):
        headers["GS1-EPCIS-Capture-Limit"] = str(MAX_DOCUMENT_EVENTS if path == "/capture" else 1)
        headers["GS1-EPCIS-Capture-File-Size-Limit"] = str(svc.settings.limits.max_document_bytes)
        headers["GS1-Capture-Error-Behaviour"] = "rollback, proceed"
    return headers


def _add_options(path: str) -> None:
    async def options(svc: Svc, request: Request) -> Response:
        negotiate(request)
        return Response(status_code=204, headers=_options_headers(svc, path))

    router.add_api_route(
        path.replace("{eventID}", "{eventID:path}"),
        options,
        methods=["OPTIONS"],
        summary=f"What {path} supports (EPCIS and CBV versions, extensions, limits)",
        status_code=204,
        responses=error_responses(406, problem_json=True),
        name=f"options {path}",
    )


for _path in BINDING_PATHS:
    _add_options(_path)


@router.get(
    "/",
    summary="The top-level resources of this EPCIS repository",
    responses=error_responses(406, problem_json=True),
)
async def top_level(request: Request) -> JSONResponse:
    negotiate(request)
    return JSONResponse(_collection(TOP_LEVEL), headers=EPCIS_HEADERS)


def _add_resource(name: str) -> None:
    resource = vocabulary.RESOURCES[name]

    async def listing(
        svc: Svc,
        who: Reading,
        request: Request,
        perPage: PerPage = DEFAULT_PER_PAGE,
        nextPageToken: Token = None,
    ) -> JSONResponse:
        negotiate(request)
        found, token = await anyio.to_thread.run_sync(
            vocabulary.values, svc.index, name, who.scope, perPage, nextPageToken
        )
        return _paged(request, _collection(found), token, perPage)

    async def one(
        svc: Svc, who: Reading, request: Request, value: str = Path(max_length=1024)
    ) -> JSONResponse:
        negotiate(request)
        held = await anyio.to_thread.run_sync(vocabulary.holds, svc.index, name, who.scope, value)
        if not held:
            raise ApiError("not_found", f"no event you may read holds {name} {value!r}")
        return JSONResponse(_collection(["events"]), headers=EPCIS_HEADERS)

    async def its_events(
        svc: Svc,
        who: Reading,
        request: Request,
        value: str = Path(max_length=1024),
    ) -> Response:
        params = dict(request.query_params)
        if "nextPageToken" not in params:
            params[resource.event_filter] = value.replace("|", "%7C")
        query = EventQuery.from_params(params)
        return await query_response(svc, request, query, who.scope)

    label = name[:-1] if name != "epcs" else "EPC"
    router.add_api_route(
        f"/{name}",
        listing,
        methods=["GET"],
        summary=f"Every {label} the events you may read hold",
        responses=error_responses(400, 401, 406, problem_json=True),
    )
    router.add_api_route(
        f"/{name}/{{value:path}}/events",
        its_events,
        methods=["GET"],
        summary=f"Events of one {label} (EPCIS query parameters apply)",
        responses=error_responses(400, 401, 406, problem_json=True),
    )
    router.add_api_route(
        f"/{name}/{{value:path}}",
        one,
        methods=["GET"],
        summary=f"Sub-resources of one {label}",
        responses=error_responses(401, 404, 406, problem_json=True),
    )


for _name in vocabulary.RESOURCES:
    _add_resource(_name)


@router.delete(
    "/nextPageToken/{token}",
    summary="Release a page token (tokens hold no state on the node: nothing to release)",
    status_code=204,
    responses=error_responses(400, problem_json=True),
)
async def release_token(token: str = Path(max_length=4096)) -> Response:
    """A token is the query and a position, kept by the client alone, so releasing it
    frees nothing; a token that is not one of this ledger's is refused."""
    decode_token(token)
    return Response(status_code=204)


# -- named queries ---------------------------------------------------------------------


@router.post(
    "/queries",
    summary="Create a named query",
    status_code=201,
    responses=error_responses(400, 401, 409, 415, problem_json=True),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["name", "query"],
                        "properties": {"name": {"type": "string"}, "query": {"type": "object"}},
                    }
                }
            },
        }
    },
)
async def create_query(svc: Svc, who: Reading, request: Request, response: Response) -> dict:
    raw = await read_body(request, svc.settings.limits.max_body_bytes)
    data = await parse_body(raw, "query", max_containers=256)
    if not isinstance(data, dict) or set(data) - {"name", "query"}:
        raise SubscriptionError('expected {"name": …, "query": {…}}')
    body = await anyio.to_thread.run_sync(
        svc.subscriptions.create_query, data.get("name"), data.get("query"), who.caller.org
    )
    response.headers.update(EPCIS_HEADERS)
    response.headers["Location"] = f"/queries/{body['name']}"
    return {"name": body["name"], "query": body["query"]}


@router.get(
    "/queries",
    summary="Named queries of this node",
    responses=error_responses(401, problem_json=True),
)
async def list_queries(svc: Svc, who: Reading, request: Request) -> JSONResponse:
    found = await anyio.to_thread.run_sync(svc.subscriptions.queries)
    return JSONResponse(
        [{"name": q["name"], "query": q["query"]} for q in found], headers=EPCIS_HEADERS
    )


QueryName = Annotated[str, Path(max_length=128)]


@router.get(
    "/queries/{queryName}",
    summary="One named query",
    responses=error_responses(401, 404, problem_json=True),
)
async def get_query(svc: Svc, who: Reading, queryName: QueryName) -> JSONResponse:
    found = await anyio.to_thread.run_sync(svc.subscriptions.query, queryName)
    return JSONResponse({"name": found["name"], "query": found["query"]}, headers=EPCIS_HEADERS)


@router.delete(
    "/queries/{queryName}",
    summary="Delete a named query and its subscriptions",
    status_code=204,
    responses=error_responses(401, 403, 404, problem_json=True),
)
async def delete_query(svc: Svc, who: Reading, queryName: QueryName) -> Response:
    await anyio.to_thread.run_sync(svc.subscriptions.delete_query, queryName, who.caller.org)
    return Response(status_code=204, headers=EPCIS_HEADERS)


@router.get(
    "/queries/{queryName}/events",
    summary="Results of a named query (WebSocket: subscribe)",
    responses=error_responses(400, 401, 404, problem_json=True),
)
async def named_query_events(
    svc: Svc,
    who: Reading,
    request: Request,
    queryName: QueryName,
    perPage: PerPage = DEFAULT_PER_PAGE,
    nextPageToken: Token = None,
) -> Response:
    if nextPageToken is not None:
        query = EventQuery.from_params({"nextPageToken": nextPageToken, "perPage": str(perPage)})
    else:
        query = await anyio.to_thread.run_sync(
            svc.subscriptions.event_query, queryName, perPage, None
        )
    return await query_response(svc, request, query, who.scope, query_name=queryName)


# -- subscriptions -----------------------------------------------------------------------


@router.post(
    "/queries/{queryName}/subscriptions",
    summary="Subscribe a webhook to a named query",
    status_code=201,
    responses=error_responses(400, 401, 404, 415, problem_json=True),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["dest"],
                        "properties": {
                            "dest": {"type": "string"},
                            "signatureToken": {"type": "string"},
                            "reportIfEmpty": {"type": "boolean"},
                            "stream": {"type": "boolean"},
                            "schedule": {"type": "object"},
                            "initialRecordTime": {"type": "string"},
                        },
                    }
                }
            },
        }
    },
)
async def subscribe(
    svc: Svc, who: Reading, request: Request, response: Response, queryName: QueryName
) -> dict:
    raw = await read_body(request, svc.settings.limits.max_body_bytes)
    data = await parse_body(raw, "subscription", max_containers=64)
    sub = await anyio.to_thread.run_sync(
        svc.subscriptions.subscribe, queryName, data, who.caller.fingerprint
    )
    response.headers.update(EPCIS_HEADERS)
    response.headers["Location"] = f"/queries/{queryName}/subscriptions/{sub.id}"
    return sub.view()


@router.get(
    "/queries/{queryName}/subscriptions",
    summary="Subscriptions to a named query",
    responses=error_responses(401, 404, problem_json=True),
)
async def list_subscriptions(svc: Svc, who: Reading, queryName: QueryName) -> JSONResponse:
    await anyio.to_thread.run_sync(svc.subscriptions.query, queryName)
    subs = await anyio.to_thread.run_sync(svc.subscriptions.subscriptions, queryName)
    return JSONResponse([s.view() for s in subs], headers=EPCIS_HEADERS)


SubscriptionID = Annotated[str, Path(max_length=64)]


@router.get(
    "/queries/{queryName}/subscriptions/{subscriptionID}",
    summary="One subscription",
    responses=error_responses(401, 404, problem_json=True),
)
async def get_subscription(
    svc: Svc, who: Reading, queryName: QueryName, subscriptionID: SubscriptionID
) -> JSONResponse:
    sub = await anyio.to_thread.run_sync(svc.subscriptions.subscription, queryName, subscriptionID)
    return JSONResponse(sub.view(), headers=EPCIS_HEADERS)


@router.delete(
    "/queries/{queryName}/subscriptions/{subscriptionID}",
    summary="Unsubscribe",
    status_code=204,
    responses=error_responses(401, 403, 404, problem_json=True),
)
async def unsubscribe(
    svc: Svc, who: Reading, queryName: QueryName, subscriptionID: SubscriptionID
) -> Response:
    await anyio.to_thread.run_sync(
        svc.subscriptions.unsubscribe, queryName, subscriptionID, who.caller.org
    )
    return Response(status_code=204, headers=EPCIS_HEADERS)


@router.websocket("/queries/{queryName}/events")
async def stream_subscription(websocket: WebSocket, queryName: str) -> None:
    """`?stream=true` or schedule fields (`second`…`dayOfWeek`), with `reportIfEmpty` and
    `initialRecordTime`; `subscriptionID` resumes a subscription made earlier. The first
    message names the subscription; each EPCISQueryDocument then carries
    `parktrace:position`, which the client acknowledges with `{"ack": position}` before the
    next one is sent."""
    svc = websocket.app.state.services
    try:
        who = await authenticate(svc, websocket)
        params = dict(websocket.query_params)
        resume = params.pop("subscriptionID", None)
        if resume is not None:
            sub = await anyio.to_thread.run_sync(svc.subscriptions.subscription, queryName, resume)
            if sub.record.owner != who.caller.fingerprint:
                raise ApiError("not_permitted", "that subscription is another member's")
        else:
            request = _ws_request(params)
            sub = await anyio.to_thread.run_sync(
                lambda: svc.subscriptions.subscribe(
                    queryName, request, who.caller.fingerprint, websocket=True
                )
            )
    except Exception as exc:  # a refused handshake: 403 to the client, reason logged
        await websocket.close(code=1008, reason=str(getattr(exc, "message", exc))[:120])
        return
    await websocket.accept()
    await websocket.send_json({"subscriptionID": sub.id, "queryName": queryName})
    closed = asyncio.Event()
    acks: asyncio.Queue[int] = asyncio.Queue()

    async def receive() -> None:
        try:
            while True:
                message = await websocket.receive_text()
                with contextlib.suppress(ValueError, TypeError, KeyError):
                    acks.put_nowait(int(json.loads(message)["ack"]))
        except (WebSocketDisconnect, RuntimeError):
            closed.set()

    async def acked() -> int:
        waiting = asyncio.create_task(acks.get())
        closing = asyncio.create_task(closed.wait())
        await asyncio.wait({waiting, closing}, return_when=asyncio.FIRST_COMPLETED)
        closing.cancel()
        if not waiting.done():
            waiting.cancel()
            raise WebSocketDisconnect(1001)
        return waiting.result()

    reader = asyncio.create_task(receive())
    try:
        await svc.subscriptions.stream(sub, websocket.send_json, acked, closed)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        reader.cancel()


def _ws_request(params: dict[str, str]) -> dict[str, Any]:
    request: dict[str, Any] = {}
    schedule = {
        k: params.pop(k)
        for k in list(params)
        if k in ("second", "minute", "hour", "dayOfMonth", "month", "dayOfWeek")
    }
    if schedule:
        request["schedule"] = schedule
    for key in ("stream", "reportIfEmpty"):
        if key in params:
            value = params.pop(key)
            if value not in ("true", "false"):
                raise SubscriptionError(f"{key}: true or false")
            request[key] = value == "true"
    if "initialRecordTime" in params:
        request["initialRecordTime"] = params.pop("initialRecordTime")
    if params:
        raise SubscriptionError(f"{sorted(params)[0]}: not a subscription parameter")
    return request
