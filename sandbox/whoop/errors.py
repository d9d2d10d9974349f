"""The emulator's one error type and its JSON rendering (RFC 6749 shape, used on every route)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response


class SandboxError(Exception):
    """An error answer: HTTP status, RFC 6749 `error` code and a description."""

    def __init__(
        self,
        status: int,
        error: str,
        description: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {error}: {description}")
        self.status = status
        self.error = error
        self.description = description
        self.headers = headers or {}


def unauthorized(description: str) -> SandboxError:
    """A 401 for the data API, with the RFC 6750 challenge."""
    return SandboxError(
        401,
        "invalid_token",
        description,
        {"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def bad_request(description: str) -> SandboxError:
    """A 400 for a malformed data-API request."""
    return SandboxError(400, "invalid_request", description)


def not_found(description: str) -> SandboxError:
    """A 404 for an unknown, deleted or someone else's record."""
    return SandboxError(404, "not_found", description)


def error_response(exc: SandboxError) -> JSONResponse:
    """The JSON body every emulator error carries."""
    headers = {"Cache-Control": "no-store", **exc.headers}
    body = {"error": exc.error, "error_description": exc.description}
    return JSONResponse(body, status_code=exc.status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Render SandboxError, and turn FastAPI's 422 into WHOOP's 400."""

    async def on_sandbox_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SandboxError)
        return error_response(exc)

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        return error_response(bad_request("malformed request"))

    app.add_exception_handler(SandboxError, on_sandbox_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
