"""CORS for the resolver's paths: any web page may read what a scan resolves to (a
GS1-Conformant Resolver must support CORS), with GET, HEAD and OPTIONS only.

No credentials are allowed and the rest of the API is left alone: writes are signed
requests (RFC 9421), and no browser on another origin gets a preflight for them. OPTIONS
on a resolver path is answered here, for preflights and plain requests alike.
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


class ResolverCors:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not resolver_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            asked = dict(scope["headers"]).get(b"access-control-request-headers", b"")
            headers = [
                *_COMMON,
                (b"allow", METHODS.encode()),
                (b"access-control-allow-methods", METHODS.encode()),
                (b"access-control-allow-headers", asked or b"Accept, Accept-Language"),
                (b"access-control-max-age", b"86400"),
                (b"content-length", b"0"),
            ]
            await send({"type": "http.response.start", "status": 204, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_COMMON]
            await send(message)

        await self.app(scope, receive, with_cors)
