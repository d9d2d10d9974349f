"""Sahha's error body and the handlers that render every failure with it.

Shape (sahha-api.md §4): `{"title", "statusCode", "location", "errors": [{"origin", "errors"}]}`.
"""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus
from typing import Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sandbox.sahha.wire import JsonObject

# The one real 500 seen in the wild carried this title and location (sahha-api.md §4).
INTERNAL_TITLE: Final = "An internal exception has occurred."
INTERNAL_LOCATION: Final = "domain"


class SahhaError(Exception):
    """A failure the emulator answers with Sahha's error body."""

    def __init__(
        self, status: int, location: str, origin: str | None = None, *messages: str
    ) -> None:
        super().__init__(f"{status} {location} {origin}: {'; '.join(messages)}")
        self.status = status
        self.location = location
        self.errors: list[tuple[str, list[str]]] = (
            [(origin, list(messages))] if origin is not None else []
        )


def title_of(status: int) -> str:
    """The `title` Sahha gives a status."""
    if status >= 500:
        return INTERNAL_TITLE
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def error_body(
    status: int, location: str, errors: Sequence[tuple[str, Sequence[str]]] = ()
) -> JsonObject:
    """Sahha's error body."""
    return {
        "title": title_of(status),
        "statusCode": status,
        "location": location,
        "errors": [{"origin": origin, "errors": list(msgs)} for origin, msgs in errors],
    }


def error_response(
    status: int, location: str, errors: Sequence[tuple[str, Sequence[str]]] = ()
) -> JSONResponse:
    """A response carrying Sahha's error body."""
    return JSONResponse(error_body(status, location, errors), status_code=status)


async def _sahha_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SahhaError)
    return error_response(exc.status, exc.location, exc.errors)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return error_response(
        exc.status_code, "route", [(request.url.path, [str(exc.detail)])]
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        (
            ".".join(str(part) for part in err["loc"][1:]) or str(err["loc"][0]),
            [err["msg"]],
        )
        for err in exc.errors()
    ]
    location = str(exc.errors()[0]["loc"][0]) if exc.errors() else "request"
    return error_response(400, location, errors)


def install_error_handlers(app: FastAPI) -> None:
    """Render every error, including FastAPI's own 404/405/422, with Sahha's body."""
    app.add_exception_handler(SahhaError, _sahha_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
