"""Connections a client may hold: how many, how long without a request, and what is
left of the process's file descriptors.

uvicorn closes a connection idle after a response (`timeout_keep_alive`), but not one that
never sends a request, nor one that sends its head a byte at a time (slowloris), and it
accepts every connection the kernel hands it, until accept() fails for want of file
descriptors and the store or the sign state fails next. Here, `GatedListener` answers a
connection above `max_connections` with 503 and closes it as it accepts it, so clients
never hold the descriptors the node itself needs; `GuardedH11Protocol` makes a connection
complete a request head within `header_timeout` of opening or of its last response, and a
body within `body_timeout`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import socket
import time
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from nodes.config import ApiLimits

log = logging.getLogger("parktrace.api")

_BUSY_BODY = json.dumps(
    {"error": "busy", "message": "the node has too many open connections", "status": 503}
).encode()
BUSY_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
    b"retry-after: 1\r\nconnection: close\r\ncontent-length: "
    + str(len(_BUSY_BODY)).encode()
    + b"\r\n\r\n"
    + _BUSY_BODY
)


def raise_descriptor_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit; the soft limit after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the descriptor limit from %d to %d: %s", soft, hard, exc)
    return soft


def connection_cap(limits: ApiLimits, descriptors: int) -> int:
    """Client connections allowed: the setting, within the descriptors left after the
    reserve for the store, the sign state and peer links."""
    return max(1, min(limits.max_connections, descriptors - limits.descriptor_reserve))


class ConnectionGate:
    """Counts the client connections open: the listener admits, the protocol releases."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.open = 0
        self.turned_away = 0
        self._warned = float("-inf")

    def admit(self) -> bool:
        if self.open >= self.cap:
            self.turned_away += 1
            now = time.monotonic()
            if now - self._warned >= 10:
                self._warned = now
                log.warning(
                    "%d client connections open, the most allowed: turning new ones away "
                    "(%d so far)",
                    self.open,
                    self.turned_away,
                )
            return False
        self.open += 1
        return True

    def release(self) -> None:
        self.open = max(0, self.open - 1)

    def listener(self, sock: socket.socket) -> GatedListener:
        """`sock` (bound, not yet listening) as a listener that keeps to this gate."""
        gated = GatedListener(sock.family, sock.type, sock.proto, fileno=sock.detach())
        gated.gate = self
        return gated


class GatedListener(socket.socket):
    """A listening socket whose accept() turns away connections above the gate's cap:
    answered 503 and closed on the spot, holding a descriptor for microseconds."""

    gate: ConnectionGate

    def accept(self) -> tuple[socket.socket, Any]:
        while True:
            conn, address = super().accept()  # BlockingIOError once none is waiting
            if self.gate.admit():
                return conn, address
            try:
                conn.setblocking(False)
                conn.send(BUSY_RESPONSE)
            except OSError:
                pass
            finally:
                conn.close()


def guarded_protocol(limits: ApiLimits, gate: ConnectionGate) -> type[H11Protocol]:
    """An H11Protocol class bound to these limits (uvicorn takes a class as `http`)."""
    return type(
        "GuardedH11Protocol",
        (GuardedH11Protocol,),
        {
            "gate": gate,
            "header_timeout": limits.header_timeout,
            "body_timeout": limits.body_timeout,
        },
    )


class GuardedH11Protocol(H11Protocol):
    gate: ConnectionGate | None = None
    header_timeout = 10.0
    body_timeout = 60.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watched: Any = None
        self._body_since: float | None = None
        self._arm()

    def _arm(self) -> None:
        self._watch = self.loop.call_later(self.header_timeout, self._check)

    def _check(self) -> None:
        """Every `header_timeout`: close the connection unless a request started since
        the last look or one is being answered, and if its body is overdue."""
        cycle = self.cycle
        if self.transport.is_closing():
            return
        answering = cycle is not None and not cycle.response_complete
        if cycle is self._watched and not answering:
            self._close("sent no complete request head")
            return
        receiving = answering and cycle.more_body
        if not receiving:
            self._body_since = None
        elif cycle is not self._watched or self._body_since is None:
            self._body_since = time.monotonic()
        elif time.monotonic() - self._body_since >= self.body_timeout:
            self._close(f"sent no complete body within {self.body_timeout:g} s")
            return
        self._watched = cycle
        self._arm()

    def _close(self, why: str) -> None:
        log.debug("closing a connection from %s: %s", self.client, why)
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._watch.cancel()
        if self.gate is not None:
            self.gate.release()
        super().connection_lost(exc)


#: Messages any client can make the node log at will: an accept() failing for want of
#: descriptors (asyncio logs it once per pending connection, megabytes a second) and a
#: malformed request (uvicorn warns once per request).
FLOODING = ("socket.accept()", "Invalid HTTP request received")


class RateLimitedLog(logging.Filter):
    """Let through one record per `every` seconds of each kind (its first line) and say
    how many were dropped."""

    def __init__(self, every: float = 10.0, prefixes: tuple[str, ...] = FLOODING):
        super().__init__()
        self.every = every
        self.prefixes = prefixes
        self._last: dict[str, tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        text = str(record.msg)
        if not text.startswith(self.prefixes):
            return True
        key = text.split("\n", 1)[0]
        now = time.monotonic()
        last, dropped = self._last.get(key, (float("-inf"), 0))
        if now - last < self.every:
            self._last[key] = (last, dropped + 1)
            return False
        self._last[key] = (now, 0)
        if dropped:
            record.msg = f"{text}\n({dropped} more like it in the last {now - last:.0f} s)"
        record.exc_info = None  # the same traceback every time
        return True


_FLOOD_FILTER = RateLimitedLog()


def limit_flooding_logs() -> None:
    """Install the filter on the loggers those messages go to (once)."""
    for name in ("asyncio", "uvicorn.error"):
        logger = logging.getLogger(name)
        if _FLOOD_FILTER not in logger.filters:
            logger.addFilter(_FLOOD_FILTER)
