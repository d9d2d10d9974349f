"""The `X-API-Key` check of the internal API: several keys (rotation), compared in constant time."""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from fastapi import Request, Security
from fastapi.security import APIKeyHeader

from shared.errors import Unauthorized
from shared.problems import problem_responses

# For routers behind the check: a dependency cannot add a response to the OpenAPI document.
API_KEY_RESPONSES = problem_responses(
    401, descriptions={401: "No valid X-API-Key (`invalid_api_key`)."}
)

_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="Internal API key"
)


class ApiKeyCheck:
    """Accepts any of `keys`; as a FastAPI dependency, 401 problem otherwise."""

    def __init__(self, keys: Sequence[str]) -> None:
        self._keys = [k.encode() for k in keys if k]
        if not self._keys:
            raise ValueError("at least one API key is required")

    def matches(self, presented: str | None) -> bool:
        if not presented:
            return False
        candidate = presented.encode()
        # Compare against every key so timing does not reveal which one (or whether any) matched.
        found = False
        for key in self._keys:
            found |= hmac.compare_digest(candidate, key)
        return found

    def verify(self, presented: str | None) -> None:
        if not self.matches(presented):
            raise Unauthorized(
                "A valid X-API-Key header is required.", code="invalid_api_key"
            )

    async def __call__(self, api_key: str | None = Security(_header)) -> None:
        """FastAPI dependency form (documents the header in OpenAPI)."""
        self.verify(api_key)


async def require_app_api_key(
    request: Request, api_key: str | None = Security(_header)
) -> None:
    """Dependency checking against the `ApiKeyCheck` the app keeps in `app.state.api_key`."""
    check: ApiKeyCheck = request.app.state.api_key
    check.verify(api_key)
