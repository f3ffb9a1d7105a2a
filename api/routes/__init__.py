"""HTTP routers, one module per area of the API, registered by `api.app.create_app`."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import Request

from ledger.errors import TooLargeError
from traceability.epcis.document import parse_json

from ..errors import ApiError

JSON_TYPES = ("application/json", "application/ld+json")
#: RFC 8259 forbids sending a byte order mark and lets a parser ignore one; every
#: endpoint ignores it (clients on Windows tools add it), none requires it.
UTF8_BOM = b"\xef\xbb\xbf"


async def read_body(
    request: Request, limit: int, *, media_types: tuple[str, ...] = JSON_TYPES
) -> bytes:
    """The request body, refusing more than `limit` bytes before reading them all and a
    declared media type other than JSON."""
    declared = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if declared and declared not in media_types and not declared.endswith("+json"):
        raise ApiError(
            "unsupported_media_type",
            f"Content-Type {declared!r} is not accepted here; send {' or '.join(media_types)}",
        )
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise TooLargeError(f"request body is {length} bytes; the limit is {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLargeError(f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def parse_body(raw: bytes, what: str, *, max_containers: int) -> Any:
    """Parse a request body off the event loop (it drives consensus too), refusing one
    that holds more than `max_containers` objects and arrays before parsing it: a small
    body of `[{},{},…]` would otherwise become millions of Python dicts."""
    return await anyio.to_thread.run_sync(parse_bounded, raw, what, max_containers)


def parse_bounded(raw: bytes, what: str, max_containers: int) -> Any:
    # Brackets inside strings count too: an upper bound, found at memchr speed.
    containers = raw.count(b"{") + raw.count(b"[")
    if containers > max_containers:
        raise TooLargeError(
            f"{what} holds {containers} JSON objects and arrays; the limit is {max_containers}"
        )
    return parse_json(raw.removeprefix(UTF8_BOM), what)
