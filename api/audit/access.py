"""Only regulators: every audit endpoint requires an RFC 9421 request signature made with
the key of a registered, valid certificate that holds the regulator role.

Why not a separate login: the regulator already holds a member certificate, and the API
already verifies request signatures for `/capture` (api.auth); reusing that gives audit
requests the same replay protection and binding to this node's authority. Anyone else —
a consumer without a certificate, a producer, a retailer — is refused with 403 and a
message that says what is required.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from sdk.signing import ACCEPT_SIGNATURE

from ..auth import Caller
from ..errors import ApiError
from ..services import Svc

REGULATOR_ROLE = "regulator"


async def regulator(request: Request, svc: Svc) -> Caller:
    """The authenticated regulator making this request (FastAPI dependency)."""
    if "signature" not in request.headers or "signature-input" not in request.headers:
        raise ApiError(
            "not_permitted",
            "the audit API answers regulators only: sign the request (HTTP Message "
            "Signatures, RFC 9421) with the key of a certificate that holds the regulator role",
            headers={"Accept-Signature": ACCEPT_SIGNATURE},
        )
    body = await request.body()
    caller = await svc.verifier.verify_async(
        request.method, _signed_url(request), request.headers, body
    )
    if REGULATOR_ROLE not in caller.roles:
        raise ApiError(
            "not_permitted",
            f"{caller.common_name}@{caller.org} (roles {', '.join(caller.roles) or 'none'}) "
            "is not a regulator: the audit API answers regulators only",
        )
    return caller


def _signed_url(request: Request) -> str:
    """The URL as the client sent it: with its path still percent-encoded (an evidence
    key's '/' travels as %2F), which is what the client's signature covers."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    query = request.scope.get("query_string") or b""
    url = f"{request.url.scheme}://{request.url.netloc}{raw.decode('latin-1')}"
    return url + (f"?{query.decode('latin-1')}" if query else "")


#: What an audit route declares: `who: Regulator`.
Regulator = Annotated[Caller, Depends(regulator)]
