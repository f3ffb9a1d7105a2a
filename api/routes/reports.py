"""举报: a consumer reports a suspicious product from its page (the code, optionally the
province, a note and a photo). The node keeps the report in its outbox and records it on
the ledger in its next `codes.scans` batch, where the regulator reads it
(`GET /v1/audit/reports`). Nothing about the person is kept but what they chose to give.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response

from traceability.codes.digital_link import parse_uri
from traceability.codes.observations import MAX_NOTE, Photo, Report
from traceability.codes.regions import region as find_region

from ..codes.i18n import Translator, negotiate
from ..codes.pages import render
from ..codes.photos import reduce_photo
from ..codes.service import CodesService, codes_service
from ..errors import ApiError, error_responses
from .resolver import wanted_media

router = APIRouter(tags=["Resolver"])
Codes = Annotated[CodesService, Depends(codes_service)]
#: Most bytes of a photo as sent (a phone's camera); it is shrunk before it is kept.
MAX_UPLOAD = 8 * 1024 * 1024


def _accepted(report: Report) -> dict[str, Any]:
    return {
        "report": report.id,
        "code": report.code,
        "region": report.region,
        "photo": report.photo.sha256 if report.photo else None,
        "state": "pending",
        "message": "recorded by this node; on the ledger with its next batch, within seconds",
    }


async def _photo(upload: UploadFile | None) -> Photo | None:
    if upload is None or not upload.filename:
        return None
    data = await upload.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        raise ApiError("too_large", f"photo: at most {MAX_UPLOAD} bytes")
    if not data:
        return None
    return Photo(await anyio.to_thread.run_sync(reduce_photo, data))


@router.post(
    "/v1/reports",
    summary="Report a suspicious product (举报) to the regulator",
    status_code=202,
    responses={
        202: {"description": "Recorded; on the ledger within seconds"},
        **error_responses(400, 413),
    },
)
async def report(
    request: Request,
    codes: Codes,
    code: Annotated[str, Form(max_length=2048, description="the product's Digital Link")],
    region: Annotated[str, Form(max_length=8, description="province or country code")] = "",
    note: Annotated[str, Form(max_length=MAX_NOTE, description="what is wrong")] = "",
    lang: Annotated[str, Form(max_length=8, description="zh or en, for the answer page")] = "",
    photo: Annotated[UploadFile | None, File(description="a photo (any image)")] = None,
) -> Response:
    """A form post from the consumer page (multipart/form-data). Browsers get a thank-you
    page, programs JSON naming the report."""
    link = parse_uri(code, "code")
    found = find_region(region) if region else None
    if region and found is None:
        raise ApiError("invalid_request", f"region: {region!r} is not a region code")
    entry = Report(
        secrets.token_hex(16),
        link.instance_id or link.lot_id or link.product_id,
        codes.stamp(),
        found.code if found else None,
        note.strip(),
        await _photo(photo),
    )
    await anyio.to_thread.run_sync(codes.outbox.add, entry)
    if wanted_media(request.headers.get("accept")) != "text/html":
        return JSONResponse(_accepted(entry), status_code=202)
    t = Translator(negotiate(request.headers.get("accept-language"), lang or None))
    other = "en" if t.lang == "zh" else "zh"
    html = render(
        "reported.html",
        t,
        report_id=entry.id,
        back_url=link.path(),
        other_lang_url=f"{link.path()}?lang={other}",
    )
    return HTMLResponse(html, status_code=202)
