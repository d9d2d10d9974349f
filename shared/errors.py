"""One error hierarchy, rendered as RFC 9457 problem+json by one set of handlers per app.

    AppError (500 internal_error)
    ├── BadRequest (400 malformed_request)
    ├── Unauthorized (401 unauthorized)
    ├── Forbidden (403 forbidden)
    ├── NotFound (404 not_found)
    ├── Conflict (409 conflict)
    ├── TooManyRequests (429 rate_limited, with `Retry-After`)
    ├── ValidationFailed (422 validation_error, with `errors`)
    ├── UpstreamError (502 upstream_error)
    ├── UpstreamTimeout (504 upstream_timeout)
    └── ServiceUnavailable (503 service_unavailable)

Services subclass these with their own `code`. Vendor clients raise their own errors; the API layer
maps them here. No web framework here: `shared.problems` renders these as problem+json. A problem
never carries an upstream body, a token or a stack trace.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, ClassVar


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
        status: int | None = None,
    ) -> None:
        # `status` overrides the class's, for problems relayed from another service.
        self.status = status or self.status_code
        self.detail = detail or HTTPStatus(self.status).phrase
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


class TooManyRequests(AppError):
    status_code = 429
    code = "rate_limited"


class ValidationFailed(AppError):
    status_code = 422
    code = "validation_error"

    def __init__(self, detail: str, errors: Sequence[Mapping[str, Any]]) -> None:
        super().__init__(detail, extra={"errors": [dict(e) for e in errors]})

    @classmethod
    def for_field(
        cls,
        field: str,
        message: str,
        *,
        location: str = "query",
        detail: str | None = None,
    ) -> ValidationFailed:
        """One bad field, in the same `errors` shape as FastAPI's own validation answers."""
        return cls(
            detail or "The request has invalid fields.",
            [
                {
                    "location": location,
                    "field": field,
                    "message": message,
                    "type": "value_error",
                }
            ],
        )


class UpstreamError(AppError):
    status_code = 502
    code = "upstream_error"


class UpstreamTimeout(AppError):
    status_code = 504
    code = "upstream_timeout"


class ServiceUnavailable(AppError):
    status_code = 503
    code = "service_unavailable"
