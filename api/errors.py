"""One error format for the whole API, and the exception handlers that produce it.

Every rejection is JSON `{"error": <stable code>, "message": <what is wrong>, "status"}`,
with `field` and `rule` when a single field is at fault and `problems` when several are.
Ledger errors keep their code (`duplicate`, `bad_signature`, …) and map to one status
each. On the EPCIS endpoints the same body also carries the RFC 7807 members the EPCIS
REST binding expects (`type: epcisException:…`, `title`, `detail`), served as
application/problem+json. Nothing ever answers with a traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger.errors import LedgerError

log = logging.getLogger("parktrace.api")

#: Ledger error code -> HTTP status. Codes not listed are client errors (400).
STATUS_BY_CODE = {
    "encoding_error": 400,
    "schema_error": 400,
    "invalid_epcis": 400,
    "invalid_query": 400,
    "bad_receipt": 400,
    "unknown_scheme": 400,
    "wrong_chain": 400,
    "unauthenticated": 401,
    "not_permitted": 403,
    "recalled": 403,
    "rule_violation": 403,
    "bad_identity": 403,
    "bad_signature": 403,
    "wrong_domain": 403,
    "not_found": 404,
    "not_acceptable": 406,
    "duplicate": 409,
    "too_large": 413,
    "unsupported_media_type": 415,
    "busy": 503,
    "store_error": 503,
}

_EPCIS_TYPES = {
    400: "epcisException:ValidationException",
    401: "epcisException:SecurityException",
    403: "epcisException:SecurityException",
    404: "epcisException:NoSuchResourceException",
    406: "epcisException:NotAcceptableException",
    409: "epcisException:ResourceAlreadyExistsException",
    413: "epcisException:CaptureLimitExceededException",
    415: "epcisException:ValidationException",
    422: "epcisException:QueryParameterException",
    500: "epcisException:ImplementationException",
    503: "epcisException:ImplementationException",
}
_TITLES = {
    400: "Bad request",
    401: "Unauthenticated",
    403: "Forbidden",
    404: "Not found",
    406: "Not acceptable",
    409: "Already exists",
    413: "Too large",
    415: "Unsupported media type",
    422: "Invalid request",
    500: "Internal error",
    503: "Unavailable",
}
EPCIS_PREFIXES = ("/capture", "/events", "/queries", "/nextPageToken", "/eventTypes", "/epcs")
EPCIS_PREFIXES += ("/bizSteps", "/bizLocations", "/readPoints", "/dispositions")


class ProblemItem(BaseModel):
    field: str = Field(description="JSON path of the offending field")
    rule: str = Field(description="the rule it breaks")
    message: str


class ErrorBody(BaseModel):
    """What every error response carries."""

    error: str = Field(description="stable machine-readable code, e.g. 'duplicate'")
    message: str = Field(description="what is wrong, naming the field and rule where one is")
    status: int = Field(description="the HTTP status, repeated")
    field: str | None = Field(None, description="the offending field, when there is one")
    rule: str | None = Field(None, description="the rule it breaks")
    problems: list[ProblemItem] | None = Field(None, description="every problem found")
    type: str | None = Field(None, description="RFC 7807 type (EPCIS endpoints)")
    title: str | None = Field(None, description="RFC 7807 title (EPCIS endpoints)")
    detail: str | None = Field(None, description="RFC 7807 detail (EPCIS endpoints)")


_DESCRIPTIONS = {
    400: "Malformed or invalid input: the message names the field and the rule",
    401: "The request is not signed (RFC 9421) or its signature does not verify",
    403: "The signer may not do this (unknown or revoked certificate, policy, signature)",
    404: "No such resource",
    409: "Duplicate: already pending or committed, or a replayed request",
    413: "Too large",
    415: "Unsupported media type",
    422: "Request parameters fail validation",
    503: "The node is busy or its storage is unavailable; retry shortly",
}


def error_responses(*statuses: int, problem_json: bool = False) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the given error statuses (422 is always included).
    `problem_json`: the EPCIS endpoints, which answer errors as application/problem+json."""
    wanted = sorted({*statuses, 422})
    out: dict[int | str, dict[str, Any]] = {}
    for status in wanted:
        entry: dict[str, Any] = {
            "model": ErrorBody,
            "description": _DESCRIPTIONS.get(status, "Error"),
        }
        if problem_json:
            schema = {"$ref": "#/components/schemas/ErrorBody"}
            entry["content"] = {"application/problem+json": {"schema": schema}}
        out[status] = entry
    return out


class ApiError(LedgerError):
    """An API-level rejection with an explicit code (e.g. not_found)."""

    def __init__(self, code: str, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.headers = headers or {}


def status_of(error: LedgerError) -> int:
    return STATUS_BY_CODE.get(error.code, 400)


def body_of(error: LedgerError, status: int | None = None) -> dict[str, Any]:
    """The JSON error body of a ledger error (also used for per-item batch results)."""
    status = status or status_of(error)
    body: dict[str, Any] = {"error": error.code, "message": error.message, "status": status}
    problems = getattr(error, "problems", None)
    if problems:
        body["field"] = problems[0].path
        body["rule"] = problems[0].rule
        body["problems"] = [p.to_json() for p in problems]
    return body


def _respond(request: Request, status: int, body: dict[str, Any], headers: dict | None = None):
    media = "application/json"
    if request.url.path.startswith(EPCIS_PREFIXES):
        body = {
            **body,
            "type": _EPCIS_TYPES.get(status, _EPCIS_TYPES[400]),
            "title": _TITLES.get(status, "Error"),
            "detail": body["message"],
        }
        media = "application/problem+json"
    return JSONResponse(body, status_code=status, headers=headers, media_type=media)


async def _ledger_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LedgerError)
    status = status_of(exc)
    headers = dict(getattr(exc, "headers", {}) or {})
    if status == 503:
        headers.setdefault("Retry-After", "1")
    return _respond(request, status, body_of(exc, status), headers or None)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for item in exc.errors():
        loc = ".".join(str(p) for p in item.get("loc", ()) if p != "body") or "request"
        problems.append(
            {"field": loc, "rule": str(item.get("type", "invalid")), "message": item.get("msg", "")}
        )
    first = problems[0] if problems else {"field": "request", "rule": "invalid", "message": ""}
    body = {
        "error": "invalid_request",
        "message": f"{first['field']}: {first['message']} [rule {first['rule']}]",
        "status": 422,
        "field": first["field"],
        "rule": first["rule"],
        "problems": problems,
    }
    return _respond(request, 422, body)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {
        404: "not_found",
        405: "method_not_allowed",
        413: "too_large",
        415: "unsupported_media_type",
    }
    code = codes.get(exc.status_code, f"http_{exc.status_code}")
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = f"no endpoint {request.method} {request.url.path}; see /docs"
    body = {"error": code, "message": message, "status": exc.status_code}
    return _respond(request, exc.status_code, body, getattr(exc, "headers", None))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    body = {
        "error": "internal_error",
        "message": "the node failed to handle this request; the error is in its log",
        "status": 500,
    }
    return _respond(request, 500, body)


def install(app: FastAPI) -> None:
    app.add_exception_handler(LedgerError, _ledger_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
