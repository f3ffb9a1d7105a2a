"""Request body limits, enforced while the body streams in, before anything parses it.

A declared Content-Length above the limit is answered 413 before one byte of the body is
read; a body without one is counted as it arrives and cut off at the limit. Bodies
larger than `max_body_bytes` (batches, EPCIS documents) also need one of a few slots, so
a crowd of clients cannot make the node hold many of them at once.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nodes.config import ApiLimits

#: Paths whose bodies may exceed `max_body_bytes`, and the setting that bounds them.
LARGE_BODY_PATHS = {
    "/v1/transactions/batch": "max_batch_bytes",
    "/capture": "max_document_bytes",
    # a report's photo as a phone takes it (the node shrinks it before it is recorded)
    "/v1/reports": "max_batch_bytes",
}


class BodyRefused(Exception):
    """Raised into the app when its body is cut off (the answer has already been sent)."""


def error_message(status: int, code: str, message: str, headers: dict[str, str]) -> list[Message]:
    """The ASGI messages of an API error body (the format of api/errors.py)."""
    body = json.dumps({"error": code, "message": message, "status": status}).encode()
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *((k.lower().encode(), v.encode()) for k, v in headers.items()),
    ]
    return [
        {"type": "http.response.start", "status": status, "headers": raw_headers},
        {"type": "http.response.body", "body": body},
    ]


def limit_for(path: str, limits: ApiLimits) -> int:
    setting = LARGE_BODY_PATHS.get(path.rstrip("/") or "/")
    return getattr(limits, setting) if setting else limits.max_body_bytes


class BodyLimit:
    """ASGI middleware: refuse a body over its path's limit, early and cheaply."""

    def __init__(self, app: ASGIApp, limits: ApiLimits) -> None:
        self.app = app
        self.limits = limits
        #: Large bodies being read or handled now (one event loop: a plain counter).
        self.large_in_use = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = limit_for(scope["path"], self.limits)
        large = self.limits.max_body_bytes
        declared = _content_length(scope)
        state: dict[str, Any] = {"received": 0, "slot": False, "started": False, "done": False}

        async def refuse(status: int, code: str, message: str) -> None:
            if state["started"] or state["done"]:
                return
            state["done"] = True
            headers = {"Retry-After": "1"} if status == 503 else {}
            for message_out in error_message(status, code, message, headers):
                await send(message_out)

        def take_slot() -> bool:
            if state["slot"]:
                return True
            if self.large_in_use >= max(1, self.limits.large_bodies):
                return False
            self.large_in_use += 1
            state["slot"] = True
            return True

        async def counted_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > limit:
                    await refuse(413, "too_large", f"request body exceeds {limit} bytes")
                    raise BodyRefused
                if state["received"] > large and not take_slot():
                    await refuse(503, "busy", "too many large requests at once")
                    raise BodyRefused
            return message

        async def guarded_send(message: Message) -> None:
            if state["done"]:
                return  # the client already has its answer
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            if declared is not None and declared > limit:
                await refuse(
                    413, "too_large", f"request body is {declared} bytes; the limit is {limit}"
                )
                return
            if declared is not None and declared > large and not take_slot():
                await refuse(503, "busy", "too many large requests at once")
                return
            await self.app(scope, counted_receive, guarded_send)
        except BodyRefused:
            pass
        except Exception:
            if not state["done"]:
                raise
        finally:
            if state["slot"]:
                self.large_in_use -= 1


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None
