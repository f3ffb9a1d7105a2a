"""What makes the node a GS1-Conformant Resolver beyond its key routes: the resolver
description file (`/.well-known/gs1resolver`), Digital Link 1.x short names
(`/gtin/…/lot/…/ser/…`, `/sscc/…`, `/gln/…`) answered with a 301 to the canonical URI,
and compressed Digital Link URIs (one base64 segment), decompressed and answered in
place with the uncompressed URI in `Link: <…>; rel="owl:sameAs"`.

Its router is registered last: the compressed form is a single path segment, which
every other route of the API takes first.
"""

from __future__ import annotations

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse
from starlette.convertors import StringConvertor, register_url_convertor

from traceability.codes import CodeError
from traceability.codes.compression import COMPRESSED, decompress
from traceability.codes.keys import canonical_path, parse_key, uncompressed
from traceability.codes.links import description_file

from ..edge.cors import preflight_headers
from ..errors import ApiError
from ..services import Svc
from .places import resolve_link
from .resolver import Codes, Resolution, _resolver_responses

router = APIRouter(tags=["Resolver"])
NAME = "ParkTrace consortium resolver"


class CompressedConvertor(StringConvertor):
    """A path segment that can be a compressed Digital Link, so that the route matches
    nothing else (`/healthz`, `/metrics` and routes added after it stay theirs)."""

    regex = COMPRESSED.pattern.removeprefix("^").removesuffix("$")


register_url_convertor("gs1compressed", CompressedConvertor())


@router.head("/.well-known/gs1resolver", include_in_schema=False)
@router.get("/.well-known/gs1resolver")
def resolver_description(request: Request, codes: Codes) -> JSONResponse:
    """The resolver description file: supported primary keys and link types."""
    host = codes.settings.resolver_host
    root = host if "://" in host else f"https://{host}"
    return JSONResponse(description_file(root, NAME))


for _short in ("gtin", "sscc", "gln"):

    @router.head(f"/{_short}/{{rest:path}}", include_in_schema=False)
    @router.get(
        f"/{_short}/{{rest:path}}",
        summary=f"Digital Link 1.x short name /{_short}/: 301 to the canonical URI",
        responses={301: {"description": "the canonical (numeric) Digital Link"}},
        include_in_schema=_short == "gtin",
    )
    def short_name(request: Request, svc: Svc, codes: Codes, rest: str = Path()) -> Response:
        res = Resolution(request, svc, codes)
        path = canonical_path(res.raw_path)
        if path is None:  # pragma: no cover - the route only matches short names
            raise ApiError("not_found", f"no such page {res.raw_path!r}")
        try:
            key = parse_key(path, res.raw_query)
        except CodeError as exc:
            return res.invalid(exc)
        return res.redirect(key.path(), 301)


@router.head("/{compressed:gs1compressed}", include_in_schema=False)
@router.get(
    "/{compressed:gs1compressed}",
    summary="Resolve a compressed GS1 Digital Link URI",
    responses=_resolver_responses(),
)
def resolve_compressed(
    request: Request,
    svc: Svc,
    codes: Codes,
    compressed: str = Path(description="the compressed element strings, URI-safe base64"),
) -> Response:
    """Decompressed and answered in place (no redirect to the uncompressed URI on this
    resolver); `Link` names the uncompressed URI as `owl:sameAs`."""
    res = Resolution(request, svc, codes)
    try:
        elements, others = decompress(compressed)
        full = uncompressed(elements, others)
        path, _, query = full.partition("?")
        extra = res.raw_query
        key = parse_key(path, "&".join(q for q in (query, extra) if q))
    except CodeError as exc:
        return res.invalid(exc)
    host = codes.settings.resolver_host
    res.same_as = (host if "://" in host else f"https://{host}") + full
    return resolve_link(res, key)


@router.options("/{compressed:gs1compressed}", include_in_schema=False)
def compressed_options(request: Request, compressed: str) -> Response:
    asked = request.headers.get("access-control-request-headers", "").encode("latin-1")
    headers = {k.decode(): v.decode("latin-1") for k, v in preflight_headers(asked)}
    return Response(status_code=204, headers=headers)
