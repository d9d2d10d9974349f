"""RFC 9457 problem+json: one set of handlers per app renders every error (CONTRACT.md §4)."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.errors import AppError

PROBLEM_CONTENT_TYPE = "application/problem+json"

log = structlog.get_logger()


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    title: str | None = None,
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """Render one problem document."""
    body: dict[str, Any] = {
        "type": f"urn:problem:{code}",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    for key, value in (extra or {}).items():
        body.setdefault(key, value)
    return JSONResponse(
        body,
        status_code=status,
        media_type=PROBLEM_CONTENT_TYPE,
        headers=dict(headers or {}),
    )


def validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """One entry per bad field; the submitted value is never echoed (it may be a secret)."""
    out = []
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ())]
        out.append(
            {
                "location": loc[0] if loc else "request",
                "field": ".".join(loc[1:]) or (loc[0] if loc else ""),
                "message": str(err.get("msg", "invalid")),
                "type": str(err.get("type", "value_error")),
            }
        )
    return out


async def _app_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    if exc.status >= 500:
        log.warning("http.app_error", code=exc.instance_code, status=exc.status)
    return problem_response(
        exc.status,
        exc.instance_code,
        exc.detail,
        extra=exc.extra,
        headers=exc.headers,
    )


async def _request_validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = validation_errors(exc)
    if any(e["type"] == "json_invalid" for e in errors):
        return problem_response(
            400, "malformed_body", "The request body is not valid JSON."
        )
    return problem_response(
        422,
        "validation_error",
        "The request has invalid fields.",
        extra={"errors": errors},
    )


async def _http_exception(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    code = {
        404: "not_found",
        405: "method_not_allowed",
        400: "malformed_request",
        401: "unauthorized",
        403: "forbidden",
    }.get(status, HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_"))
    detail = {
        404: "No such resource.",
        405: "This method is not allowed here.",
    }.get(
        status,
        str(exc.detail) if isinstance(exc.detail, str) else HTTPStatus(status).phrase,
    )
    return problem_response(status, code, detail, headers=getattr(exc, "headers", None))


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    log.error("http.unhandled_error", exc_info=exc)
    # This handler runs outside the request middleware, so it sets the request id itself.
    request_id = getattr(request.state, "request_id", None)
    headers = {"X-Request-ID": request_id} if request_id else None
    return problem_response(
        500, "internal_error", "An unexpected error occurred.", headers=headers
    )


def install_error_handlers(app: FastAPI) -> None:
    """Make every error of `app` a problem+json answer."""
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(Exception, _unhandled)
