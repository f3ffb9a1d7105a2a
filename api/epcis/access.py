"""Who may query: every EPCIS read (events, discovery, named queries, subscriptions) is
answered to an authenticated member only, with the same RFC 9421 request signature as
`/capture` (docs/api.md), and each member sees what the consortium's read rule lets it
see (`traceability.epcis.visibility`). A request without a signature is answered 401
with `Accept-Signature`, saying how to sign."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from traceability.epcis.visibility import Reader, reader, scope

from ..audit.access import _signed_url
from ..auth import AuthenticationError, Caller
from ..services import Services, Svc


@dataclass(frozen=True)
class Member:
    """An authenticated member and what it may read."""

    caller: Caller
    reader: Reader

    @property
    def scope(self) -> Any:
        """SQL condition on the event index: what this member may read (None: all)."""
        return scope(self.reader)


def member_of(svc: Services, caller: Caller) -> Member:
    return Member(caller, reader(svc.node.membership, caller.org, caller.roles))


async def authenticate(
    svc: Services, connection: HTTPConnection, method: str = "GET", body: bytes = b""
) -> Member:
    """Verify the request signature of an HTTP request or a WebSocket handshake (whose
    URL is signed as the http one it upgrades)."""
    if "signature" not in connection.headers or "signature-input" not in connection.headers:
        raise AuthenticationError(
            "EPCIS queries are answered to consortium members only: sign the request with "
            "your member key (HTTP Message Signatures, RFC 9421), as for /capture"
        )
    url = _signed_url(connection)  # type: ignore[arg-type]
    if url.startswith("ws"):
        url = "http" + url[2:]
    caller = await svc.verifier.verify_async(method, url, connection.headers, body)
    return member_of(svc, caller)


async def signed_member(request: Request, svc: Svc) -> Member:
    """The member making this request (FastAPI dependency)."""
    return await authenticate(svc, request, request.method, await request.body())


#: What a query route declares: `who: Reading`.
Reading = Annotated[Member, Depends(signed_member)]
