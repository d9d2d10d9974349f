"""One error hierarchy, rendered as RFC 9457 problem+json by one set of handlers per app.

    AppError (500 internal_error)
    ├── BadRequest (400 malformed_request)
    ├── Unauthorized (401 unauthorized)
    ├── Forbidden (403 forbidden)
    ├── NotFound (404 not_found)
    ├── Conflict (409 conflict)
    ├── ValidationFailed (422 validation_error, with `errors`)
    ├── UpstreamError (502 upstream_error)
    ├── UpstreamTimeout (504 upstream_timeout)
    └── ServiceUnavailable (503 service_unavailable)

Services subclass these with their own `code`. Vendor clients raise their own errors; the API layer
maps them here. A problem never carries an upstream body, a token or a stack trace.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, ClassVar

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_CONTENT_TYPE = "application/problem+json"

log = structlog.get_logger()


class AppError(Exception):
    """An error with an HTTP status and a stable snake_case code."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.detail = detail or HTTPStatus(self.status_code).phrase
        self.instance_code = code or self.code
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})
        super().__init__(self.detail)


class BadRequest(AppError):
    status_code = 400
    code = "malformed_request"


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class ValidationFailed(AppError):
    status_code = 422
    code = "validation_error"

    def __init__(self, detail: str, errors: Sequence[Mapping[str, Any]]) -> None:
        super().__init__(detail, extra={"errors": [dict(e) for e in errors]})


class UpstreamError(AppError):
    status_code = 502
    code = "upstream_error"


class UpstreamTimeout(AppError):
    status_code = 504
    code = "upstream_timeout"


class ServiceUnavailable(AppError):
    status_code = 503
    code = "service_unavailable"


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
    if exc.status_code >= 500:
        log.warning("http.app_error", code=exc.instance_code, status=exc.status_code)
    return problem_response(
        exc.status_code,
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
