"""The regulator's console at /regulator/: its page and assets, sign-in, and the live
health of every consortium node.

Sign-in is the producer console's (api.routes.console.answer, the same challenge, the
same sessions, keys.js in the browser), with one more rule: the certificate must hold
the regulator role, as the audit API requires (api.audit.access). Everything else the
page shows comes from the audit API itself, over RFC 9421 requests the browser signs
with the regulator's key (trace, recall plan, recall status, comparison); recalls are
ordinary `recall` transactions signed in the browser.

Node health: the browser may reach only this node (the page's CSP, and other nodes send
no CORS headers), so this node asks every node's public `/healthz` itself, all at once,
each with a short timeout. The nodes are the ones the cross-node comparison uses
(PARKTRACE_AUDIT_NODES, api.audit.settings): one list of the consortium's API addresses.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse

from ..audit.access import REGULATOR_ROLE
from ..audit.settings import audit_settings
from ..audit.verification import node_id
from ..errors import ApiError
from ..services import Services, Svc
from . import console

router = APIRouter(tags=["Regulator console"])
COOKIE = "pt_regulator"
#: A node that has not answered /healthz within this many seconds is shown down.
HEALTH_TIMEOUT = 2.5


@router.get("/regulator", include_in_schema=False)
@router.get("/regulator/", include_in_schema=False)
def page(
    request: Request, svc: Svc, lang: str | None = Query(None, pattern="^(zh|en)$")
) -> HTMLResponse:
    return console.app_page("regulator", request, svc, lang)


@router.get("/regulator/static/{name}", include_in_schema=False)
def asset(name: str) -> FileResponse:
    return console.app_asset("regulator", name)


router.post("/regulator/api/challenge", summary="A sign-in challenge (as the console's)")(
    console.challenge
)


def _me(svc: Services, fingerprint: str) -> dict[str, Any]:
    me = console._me(svc, fingerprint)
    if REGULATOR_ROLE not in me["roles"]:
        raise ApiError(
            "not_permitted",
            f"{me['commonName']}@{me['org']} (roles {', '.join(me['roles']) or 'none'}) is "
            "not a regulator: the regulator console, like the audit API, answers regulators only",
        )
    return {**me, "node": node_id(svc.node)}


def _caller(request: Request, svc: Services) -> dict[str, Any]:
    session = console.sessions(request).get(request.cookies.get(COOKIE))
    if session is None:
        raise ApiError("unauthenticated", "sign in with the regulator's key file first")
    return _me(svc, session.fingerprint)


@router.post("/regulator/api/session", summary="Sign in as the regulator: answer a challenge")
async def sign_in(request: Request, response: Response, svc: Svc) -> dict[str, Any]:
    session, member = await console.answer(request, svc)
    try:
        me = _me(svc, member.fingerprint)
    except ApiError:
        console.sessions(request).end(session.token)
        raise
    response.set_cookie(
        COOKIE,
        session.token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/regulator/",
    )
    return me


@router.get("/regulator/api/me", summary="The regulator signed in")
def me(request: Request, svc: Svc) -> dict[str, Any]:
    return _caller(request, svc)


@router.delete("/regulator/api/session", summary="Sign out", status_code=204)
def sign_out(request: Request) -> Response:
    console.sessions(request).end(request.cookies.get(COOKIE))
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/regulator/")
    return response


async def _health(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    started = time.monotonic()
    try:
        # The whole exchange within the timeout, not each phase of it.
        answer = await asyncio.wait_for(client.get(f"{url}/healthz"), HEALTH_TIMEOUT)
        answer.raise_for_status()
        info = answer.json()
    except (httpx.HTTPError, ValueError, TimeoutError) as exc:
        return {"url": url, "up": False, "error": type(exc).__name__}
    return {"url": url, "up": True, "ms": round(1000 * (time.monotonic() - started)), **info}


def _own_info(request: Request, svc: Services) -> dict[str, Any]:
    """What this node's own /healthz answers (api.routes.ops), without the round trip; a
    single-process dev node has no consensus, so only its height and head."""
    runtime = getattr(request.app.state, "node", None)
    if runtime is not None and hasattr(runtime, "info"):
        return runtime.info()
    height = svc.node.height
    header = svc.node.store.header(height) if height else None
    return {
        "height": height,
        "head": header.hash if header else None,
        "last_block_time": header.time if header else None,
        "peers": [],
        "round": 0,
        "mempool": None,
        "signing": True,
    }


@router.get("/regulator/api/nodes", summary="Every consortium node's health, asked now")
async def nodes(request: Request, svc: Svc) -> dict[str, Any]:
    """Height, last block time, peers, round, mempool of every node, or that it did not
    answer within HEALTH_TIMEOUT seconds."""
    _caller(request, svc)
    settings = audit_settings(request)
    own = settings.self_id or node_id(svc.node) or "this-node"
    others = {k: v for k, v in settings.nodes.items() if k != own}
    async with httpx.AsyncClient(timeout=HEALTH_TIMEOUT) as client:
        answers = await asyncio.gather(*(_health(client, url) for url in others.values()))
    rows = {own: {"url": str(request.base_url).rstrip("/"), "up": True, "ms": 0}}
    rows[own].update({"status": "ok", **_own_info(request, svc)})
    rows.update(dict(zip(others, answers, strict=True)))
    return {
        "self": own,
        "configured": bool(others),
        "nodes": [{"id": k, **rows[k]} for k in sorted(rows)],
    }
