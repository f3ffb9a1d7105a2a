"""The API documentation pages (`/docs`, `/redoc`) load nothing from outside the node.

Their scripts and stylesheet are files of the installed `fastapi-offline` package, served
by `create_app`. ReDoc still draws one decorative image from its vendor's CDN (the
"API docs by Redocly" logo, hidden when it fails to load); a Content-Security-Policy on
the two pages stops the browser from asking for it, so opening the docs in a closed
network neither waits on nor tells anyone outside.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Own files only. Both UIs start from an inline script and inline styles; ReDoc runs
#: its search in a worker built from a blob: URL, and draws icons as data: images.
DOCS_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
    ]
)


class DocsPolicy:
    """ASGI middleware adding `DOCS_POLICY` to the answers for `pages`; every other
    request passes straight through (no buffering, long polls untouched)."""

    def __init__(self, app: ASGIApp, pages: tuple[str, ...]) -> None:
        self.app = app
        self.pages = frozenset(pages)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.pages:
            await self.app(scope, receive, send)
            return

        async def send_with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["Content-Security-Policy"] = DOCS_POLICY
            await send(message)

        await self.app(scope, receive, send_with_policy)


def install(app: FastAPI, pages: tuple[str, ...]) -> None:
    """Send `DOCS_POLICY` with each of `pages` (paths of the documentation pages)."""
    app.add_middleware(DocsPolicy, pages=pages)
