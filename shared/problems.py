"""RFC 9457 problem+json: one set of handlers per app renders every error (CONTRACT.md §4)."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from shared.errors import AppError

PROBLEM_CONTENT_TYPE = "application/problem+json"
_SCHEMAS = "#/components/schemas/"
# What FastAPI documents for a 422 unless told otherwise; our handler answers a problem instead.
_FASTAPI_422 = _SCHEMAS + "HTTPValidationError"
_MALFORMED = {400: "The body is not valid JSON."}

log = structlog.get_logger()


class ProblemFieldError(BaseModel):
    """One bad field of a validation problem."""

    location: str = Field(description="`path`, `query`, `header`, `body` or `request`.")
    field: str
    message: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem document: how every error of both services is answered."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    code: str = Field(description="A stable snake_case word naming the error.")
    errors: list[ProblemFieldError] = Field(
        default_factory=list, description="For validation: one entry per bad field."
    )


def problem_responses(
    *statuses: int, descriptions: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries declaring that `statuses` are answered with a problem."""
    return {
        status: {
            "description": (descriptions or {}).get(status, HTTPStatus(status).phrase),
            "content": {
                PROBLEM_CONTENT_TYPE: {"schema": {"$ref": _SCHEMAS + "Problem"}}
            },
        }
        for status in statuses
    }


def document_problems(openapi: dict[str, Any]) -> None:
    """Make an app's OpenAPI say what the handlers below answer, in place.

    Adds the `Problem` schema; every operation that validates its input answers 422 with a
    problem (not FastAPI's default body), and every one with a JSON body answers 400 too.
    """
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template=_SCHEMAS + "{model}")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    for path_item in openapi.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            if _is_fastapi_422(responses.get("422")):
                responses["422"] = problem_responses(422)[422]
            body = operation.get("requestBody", {}).get("content", {})
            if "application/json" in body:
                responses.setdefault(
                    "400", problem_responses(400, descriptions=_MALFORMED)[400]
                )
            operation["responses"] = dict(sorted(responses.items()))
    # FastAPI adds these for its own 422 body, which no operation answers with any more.
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)


def _is_fastapi_422(response: dict[str, Any] | None) -> bool:
    content = (response or {}).get("content", {}).get("application/json", {})
    return bool(content.get("schema", {}).get("$ref") == _FASTAPI_422)


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


async def _client_gone(_: Request, exc: Exception) -> JSONResponse:
    """The client went away while its body was read: nobody to answer, and not our failure."""
    log.info("http.client_disconnected")
    return problem_response(
        400, "client_disconnected", "The client closed the request early."
    )


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
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(Exception, _unhandled)
