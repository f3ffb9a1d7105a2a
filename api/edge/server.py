"""The uvicorn server of a node's API, with the edge limits of `nodes.config.ApiLimits`."""

from __future__ import annotations

import logging
import socket

import uvicorn
from fastapi import FastAPI

from nodes.config import ApiLimits

from .connections import (
    ConnectionGate,
    connection_cap,
    guarded_protocol,
    limit_flooding_logs,
    raise_descriptor_limit,
)

log = logging.getLogger("parktrace.api")

#: Largest request head (request line and headers) h11 buffers before answering 431.
MAX_HEAD_BYTES = 32 * 1024


class EdgeServer(uvicorn.Server):
    """uvicorn serving from a listener that keeps to the connection cap."""

    def __init__(self, config: uvicorn.Config, gate: ConnectionGate) -> None:
        super().__init__(config)
        self.gate = gate

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        if sockets is None:
            sockets = [self.gate.listener(self.config.bind_socket())]
        await super().serve(sockets=sockets)


def edge_server(
    app: FastAPI,
    host: str,
    port: int,
    limits: ApiLimits,
    *,
    kind: type[EdgeServer] = EdgeServer,
    **options: object,
) -> EdgeServer:
    """A uvicorn server over `app` that holds clients to `limits`. Raises the descriptor
    limit as far as the system allows first: the connection cap depends on it."""
    descriptors = raise_descriptor_limit()
    cap = connection_cap(limits, descriptors)
    if cap < limits.max_connections:
        log.warning(
            "at most %d client connections (%d file descriptors, %d kept in reserve)",
            cap,
            descriptors,
            limits.descriptor_reserve,
        )
    limit_flooding_logs()
    gate = ConnectionGate(cap)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=guarded_protocol(limits, gate),
        timeout_keep_alive=max(1, round(limits.keep_alive)),
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        **options,  # type: ignore[arg-type]
    )
    return kind(config, gate)
