"""Operations endpoints of a node: liveness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Is this node up, and where is its chain?")
def healthz(request: Request) -> dict[str, Any]:
    """Height, head hash, last block time, mempool size and connected peers."""
    return {"status": "ok", **request.app.state.node.info()}


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
def metrics(request: Request) -> PlainTextResponse:
    """Height, mempool size, block interval, committed transactions, peers, rounds."""
    node = request.app.state.node
    registry = getattr(node, "metrics", None)
    body = generate_latest(registry.registry) if registry is not None else b""
    return PlainTextResponse(body, media_type=CONTENT_TYPE_LATEST)
