"""The producer console: its page, its assets, challenge sign-in and the member's view.

Every event the console records is an ordinary `epcis.event` transaction, built and
signed in the browser with the member's own key and submitted to `/v1/transactions`;
labels and codes are fetched with RFC 9421 requests the browser signs. These routes only
serve the page, open a session bound to the certificate that answered a challenge
(api.console.sessions) and answer what that member may see: its organisation, roles,
GS1 prefixes, registered plots, and its lots' events with their blocks.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import BaseModel, Field

from ledger.codec import b64decode
from ledger.errors import EncodingError
from ledger.membership import Member

from ..codes.i18n import negotiate
from ..codes.pages import STATIC, TEMPLATES, environment
from ..codes.service import CodesService, codes_service
from ..console.bulk import read_sheet
from ..console.lots import lot_view
from ..console.sessions import PREFIX, Session, Sessions, SignInError
from ..errors import ApiError
from ..services import Services, Svc
from . import parse_body, read_body

router = APIRouter(tags=["Console"])
Codes = Annotated[CodesService, Depends(codes_service)]
COOKIE = "pt_console"
_NAME = re.compile(r"^[a-z0-9_-]+\.(js|css|json|svg|png)$")
_TYPES = {
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "json": "application/json",
    "svg": "image/svg+xml",
    "png": "image/png",
}
#: The console's own messages, one catalogue per language, served inside the page.
MESSAGES = TEMPLATES.parent / "translations"


def sessions(request: Request) -> Sessions:
    state = request.app.state
    if not hasattr(state, "console_sessions"):
        state.console_sessions = Sessions()
    return state.console_sessions


@cache
def messages(app: str, lang: str) -> dict[str, str]:
    """The texts of web app `app` ("console", "regulator") in `lang`."""
    return json.loads((MESSAGES / f"{app}-{lang}.json").read_text(encoding="utf-8"))


def app_page(app: str, request: Request, svc: Services, lang: str | None) -> HTMLResponse:
    """The single page of web app `app`, in the language asked for or negotiated."""
    chosen = negotiate(request.headers.get("accept-language"), lang)
    texts = messages(app, chosen)
    html = (
        environment()
        .get_template(f"{app}/index.html")
        .render(
            lang=chosen,
            messages=json.dumps(texts, ensure_ascii=False).replace("<", "\\u003c"),
            chain_id=svc.genesis.chain_id,
            m=texts,
        )
    )
    return HTMLResponse(
        html,
        headers={
            "Cache-Control": "no-store",
            # Scripts only from this node: the page that holds the key runs nothing else.
            "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; "
            "object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
            "Referrer-Policy": "no-referrer",
        },
    )


def app_asset(app: str, name: str) -> FileResponse:
    """A script or stylesheet of web app `app`, from its folder under web/static."""
    folder = STATIC / app
    if not _NAME.fullmatch(name) or not (folder / name).is_file():
        raise ApiError("not_found", f"no {app} file {name!r}")
    return FileResponse(
        folder / name,
        media_type=_TYPES[name.rsplit(".", 1)[1]],
        headers={"Cache-Control": "no-cache"},
    )


@router.get("/console", include_in_schema=False)
@router.get("/console/", include_in_schema=False)
def page(
    request: Request, svc: Svc, lang: str | None = Query(None, pattern="^(zh|en)$")
) -> HTMLResponse:
    return app_page("console", request, svc, lang)


@router.get("/console/static/{name}", include_in_schema=False)
def asset(name: str) -> FileResponse:
    return app_asset("console", name)


class ChallengeOut(BaseModel):
    challenge: str
    chain_id: str
    authority: str = Field(description="the node the answer is bound to (its Host)")
    prefix: str = Field(description="what the signed bytes start with")


@router.post("/console/api/challenge", response_model=ChallengeOut, summary="A sign-in challenge")
def challenge(request: Request, svc: Svc) -> dict[str, Any]:
    authority = request.headers.get("host", "")
    own = svc.settings.authorities
    if own is not None and authority not in own:
        raise ApiError("bad_request", f"{authority!r} is not an address of this node")
    value = sessions(request).challenge(authority)
    return {
        "challenge": value,
        "chain_id": svc.genesis.chain_id,
        "authority": authority,
        "prefix": PREFIX,
    }


def _me(svc: Services, fingerprint: str) -> dict[str, Any]:
    membership = svc.node.membership
    member = membership.member(fingerprint)
    if member is None or member.revoked_height is not None:
        raise ApiError("unauthenticated", "this certificate is no longer a member; sign in again")
    org = membership.organizations.get(member.org)
    height = svc.node.height
    prefixes = sorted(
        g.prefix for g in membership.prefix_grants if g.org == member.org and g.held_at(height)
    ) or list(org.gs1_prefixes if org else ())
    plots = [
        {"id": p.id, "gln": p.gln, "crop": p.crop, "giZone": p.gi_zone, "areaHa": str(p.area_ha)}
        for p in svc.node.rules.trust.plots.values()
        if p.org == member.org
    ]
    return {
        "fingerprint": fingerprint,
        "commonName": member.credential.common_name,
        "org": member.org,
        "orgName": org.name if org else member.org,
        "orgNameZh": org.name_zh if org else member.org,
        "roles": list(member.roles),
        "chainId": svc.genesis.chain_id,
        "prefixes": prefixes,
        "plots": sorted(plots, key=lambda p: p["id"]),
        "delegated": member.org in svc.settings.capture_signers,
    }


def _caller(request: Request, svc: Services) -> str:
    session = sessions(request).get(request.cookies.get(COOKIE))
    if session is None:
        raise ApiError("unauthenticated", "sign in with your key file first")
    return session.fingerprint


async def answer(request: Request, svc: Services) -> tuple[Session, Member]:
    """The session opened by the challenge answer in the request body: the one sign-in
    both consoles use (the regulator's adds its role check, api.routes.regulator)."""
    raw = await read_body(request, 4096)
    data = await parse_body(raw, "request", max_containers=4)
    if not isinstance(data, dict) or not isinstance(data.get("challenge"), str):
        raise ApiError("bad_request", 'expected {"challenge": …, "signature": <base64>}')
    try:
        signature = b64decode(data.get("signature"), field="signature", size=64)
    except EncodingError as exc:
        raise ApiError("bad_request", exc.message) from None
    try:
        return sessions(request).sign_in(
            svc.node.membership, data["challenge"], signature, svc.genesis.chain_id
        )
    except SignInError as exc:
        raise ApiError("unauthenticated", str(exc)) from None


@router.post("/console/api/session", summary="Sign in: answer a challenge")
async def sign_in(request: Request, response: Response, svc: Svc) -> dict[str, Any]:
    session, member = await answer(request, svc)
    response.set_cookie(
        COOKIE,
        session.token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/console/",
    )
    return _me(svc, member.fingerprint)


@router.get("/console/api/me", summary="Who is signed in")
def me(request: Request, svc: Svc) -> dict[str, Any]:
    return _me(svc, _caller(request, svc))


@router.delete("/console/api/session", summary="Sign out", status_code=204)
def sign_out(request: Request) -> Response:
    sessions(request).end(request.cookies.get(COOKIE))
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/console/")
    return response


@router.get("/console/api/lot", summary="A lot's events on the ledger, with blocks and receipts")
def lot(
    request: Request,
    svc: Svc,
    codes: Codes,
    id: str = Query(max_length=512, description="lot URI"),
) -> dict[str, Any]:
    _caller(request, svc)
    return lot_view(svc, codes, id)


@router.post("/console/api/bulk", summary="Read a bulk sheet (CSV) into events to sign")
async def bulk(request: Request, svc: Svc) -> dict[str, Any]:
    """The events of the sheet's valid rows, for the browser to sign and submit, and a
    refusal for every other row (line, field, why)."""
    _caller(request, svc)
    raw = await read_body(
        request, svc.settings.limits.max_body_bytes, media_types=("text/csv", "text/plain")
    )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(
            "bad_request", "the sheet is not UTF-8 text (save it as CSV UTF-8)"
        ) from None
    try:
        return await anyio.to_thread.run_sync(read_sheet, text)
    except ValueError as exc:
        raise ApiError("bad_request", f"the sheet cannot be read: {exc}") from None
