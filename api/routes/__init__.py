"""HTTP routers, one module per area of the API, registered by `api.app.create_app`."""

from __future__ import annotations

from fastapi import Request

from ledger.errors import TooLargeError

from ..errors import ApiError

JSON_TYPES = ("application/json", "application/ld+json")


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
