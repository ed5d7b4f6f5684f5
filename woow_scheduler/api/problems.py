"""RFC 9457 problem details (``application/problem+json``) for every error the API returns.

Each error family of ``errors.py`` has one HTTP status and one problem ``type``; the ``detail`` is
the same one-line message the CLI prints, and ``field`` names the offending input (a dotted path,
``steps.0.type``) when there is one.  Request validation errors list every problem in ``errors``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import Conflict, Forbidden, InvalidInput, NotFound, StoreUnavailable, WoowError

log = logging.getLogger("woow.api")

PROBLEM_JSON = "application/problem+json"
_TYPE_BASE = "urn:woow:problem:"


class FieldProblem(BaseModel):
    field: str
    reason: str
    location: str | None = Field(default=None, description="body, query, path or header")


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="URI naming the kind of problem (urn:woow:problem:<kind>)")
    title: str
    status: int
    detail: str
    instance: str | None = Field(default=None, description="The request path")
    field: str | None = Field(default=None, description="Dotted path of the offending input, if any")
    errors: list[FieldProblem] | None = None


# status, kind, title of each error family (the first match wins: subclasses first)
_FAMILIES: Sequence[tuple[type[WoowError], int, str, str]] = (
    (NotFound, 404, "not-found", "Not found"),
    (Forbidden, 403, "forbidden", "Forbidden"),
    (Conflict, 409, "conflict", "Conflict"),
    (InvalidInput, 422, "invalid-input", "Invalid input"),
    (StoreUnavailable, 503, "store-unavailable", "A store is unavailable"),
)

_HTTP_KINDS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    409: ("conflict", "Conflict"),
    413: ("too-large", "Request too large"),
    429: ("too-many-requests", "Too many requests"),
    422: ("invalid-input", "Invalid input"),
    503: ("unavailable", "Service unavailable"),
}


def problem_response(
    status: int,
    kind: str,
    title: str,
    detail: str,
    *,
    request: Request | None = None,
    field: str | None = None,
    errors: list[FieldProblem] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = Problem(
        type=_TYPE_BASE + kind,
        title=title,
        status=status,
        detail=detail,
        instance=request.url.path if request is not None else None,
        field=field,
        errors=errors,
        **extra,
    )
    return JSONResponse(
        body.model_dump(mode="json", exclude_none=True), status_code=status, media_type=PROBLEM_JSON, headers=headers
    )


def _field_of(message: str, given: str | None) -> str | None:
    """``field`` of an error: the one it carries, else the message's ``what:`` prefix."""
    if given:
        return given
    what, sep, _ = message.partition(": ")
    return what if sep and " " not in what and what else None


def woow_error_response(request: Request, exc: WoowError) -> JSONResponse:
    detail = " ".join(str(exc).split()) or type(exc).__name__
    for family, status, kind, title in _FAMILIES:
        if isinstance(exc, family):
            field = None
            if isinstance(exc, InvalidInput | Forbidden):
                field = _field_of(detail, exc.field)
            return problem_response(status, kind, title, detail, request=request, field=field)
    log.error("api: unexpected %s on %s: %s", type(exc).__name__, request.url.path, detail)
    return problem_response(
        500, "internal", "Internal error", "the request failed; see the server log", request=request
    )


def _loc_to_field(loc: Sequence[Any]) -> tuple[str | None, str]:
    parts = list(loc)
    where = str(parts.pop(0)) if parts and parts[0] in ("body", "query", "path", "header", "cookie") else None
    return where, ".".join(str(p) for p in parts) or (where or "input")


def _reason(err: dict[str, Any]) -> str:
    if err.get("type") == "extra_forbidden":
        return "unknown field"
    if err.get("type") == "missing":
        return "is required"
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    value = err.get("input")
    if isinstance(value, (str, int, float)) and not isinstance(value, bool) and str(value) not in msg:
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        msg = f"{msg} (got {shown})"
    return msg


def validation_problems(errors: Sequence[Any]) -> list[FieldProblem]:
    out = []
    for err in errors:
        where, field = _loc_to_field(err.get("loc", ()))
        out.append(FieldProblem(field=field, reason=_reason(err), location=where))
    return out


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem+json."""

    @app.exception_handler(WoowError)
    async def _woow(request: Request, exc: WoowError) -> JSONResponse:
        return woow_error_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = validation_problems(exc.errors())
        first = problems[0] if problems else FieldProblem(field="input", reason="invalid")
        return problem_response(
            422,
            "invalid-input",
            "Invalid input",
            f"{first.field}: {first.reason}",
            request=request,
            field=first.field,
            errors=problems,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind, title = _HTTP_KINDS.get(exc.status_code, ("http-error", "HTTP error"))
        headers = dict(exc.headers) if exc.headers else None
        return problem_response(exc.status_code, kind, title, str(exc.detail), request=request, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("api: unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            500, "internal", "Internal error", "the request failed; see the server log", request=request
        )
