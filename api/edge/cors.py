"""CORS for the resolver's paths: any web page may read what a scan resolves to (a
GS1-Conformant Resolver must support CORS), with GET, HEAD and OPTIONS only.

No credentials are allowed and the rest of the API is left alone: writes are signed
requests (RFC 9421), and no browser on another origin gets a preflight for them. OPTIONS
on a resolver key path is answered here, for preflights and plain requests alike; on a
compressed Digital Link (one path segment, which other routes of the API may also be)
by its route, with `preflight_headers`, so that those routes keep their own OPTIONS.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from traceability.codes.compression import COMPRESSED

#: Paths the resolver answers: its keys, their short names and the description file.
RESOLVER_PATH = re.compile(r"^/(01|00|414|gtin|sscc|gln)/|^/\.well-known/gs1resolver$")
METHODS = "GET, HEAD, OPTIONS"
_COMMON = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-expose-headers", b"Link, Location, Content-Type, Vary"),
]


def resolver_path(path: str) -> bool:
    return bool(RESOLVER_PATH.match(path)) or bool(COMPRESSED.fullmatch(path.lstrip("/")))


def preflight_headers(asked: bytes = b"") -> list[tuple[bytes, bytes]]:
    """The answer to OPTIONS on a resolver path: what it allows, to any origin."""
    return [
        *_COMMON,
        (b"allow", METHODS.encode()),
        (b"access-control-allow-methods", METHODS.encode()),
        (b"access-control-allow-headers", asked or b"Accept, Accept-Language"),
        (b"access-control-max-age", b"86400"),
    ]


class ResolverCors:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not resolver_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and RESOLVER_PATH.match(scope["path"]):
            asked = dict(scope["headers"]).get(b"access-control-request-headers", b"")
            headers = [*preflight_headers(asked), (b"content-length", b"0")]
            await send({"type": "http.response.start", "status": 204, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(k == b"access-control-allow-origin" for k, _ in headers):
                    headers += _COMMON
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_cors)
