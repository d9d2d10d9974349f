"""WhoopClient: calls WHOOP's data API with a member's access token and speaks in WhoopErrors."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, TypeVar

import httpx2
from pydantic import ValidationError

from whoop_service.whoop.errors import (
    WhoopAuthError,
    WhoopBadResponse,
    WhoopError,
    WhoopForbidden,
    WhoopNotFound,
    WhoopRateLimited,
    WhoopServerError,
    WhoopTransportError,
)
from whoop_service.whoop.schemas import WhoopModel, WhoopProfile

M = TypeVar("M", bound=WhoopModel)


def parse_reset_s(headers: Mapping[str, str]) -> float | None:
    """Seconds until WHOOP's closest rate window resets (`X-RateLimit-Reset` is seconds)."""
    for name in ("X-RateLimit-Reset", "Retry-After"):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value.split(",")[0].strip())
        except ValueError:
            continue
        if seconds >= 0:
            return seconds
    return None


def raise_for_status(resp: httpx2.Response) -> None:
    """Map a non-2xx data-API answer to its WhoopError."""
    status = resp.status_code
    if status < 300:
        return
    if status == 401:
        raise WhoopAuthError("access token refused")
    if status == 403:
        raise WhoopForbidden("member refused")
    if status == 404:
        raise WhoopNotFound(resp.request.url.path)
    if status == 429:
        raise WhoopRateLimited(parse_reset_s(resp.headers))
    if status >= 500:
        raise WhoopServerError(status)
    raise WhoopError(f"WHOOP answered {status}")


class WhoopClient:
    """The data API at `WHOOP_API_BASE_URL` (`/v2/...` below it)."""

    def __init__(self, http: httpx2.AsyncClient, *, timeout_s: float = 10.0) -> None:
        self._http = http
        self._timeout_s = timeout_s

    async def fetch_profile(self, access_token: str) -> WhoopProfile:
        """The member's basic profile (their WHOOP user id above all)."""
        resp = await self._request("GET", "/v2/user/profile/basic", access_token)
        return self._parse(resp, WhoopProfile)

    async def revoke_access(self, access_token: str) -> None:
        """Revoke this app's access for the member (`DELETE /v2/user/access`, 204)."""
        await self._request("DELETE", "/v2/user/access", access_token)

    async def _request(
        self,
        method: str,
        path: str,
        access_token: str,
        params: Mapping[str, str] | None = None,
    ) -> httpx2.Response:
        try:
            async with asyncio.timeout(self._timeout_s):
                resp = await self._http.request(
                    method,
                    path,
                    params=params,
                    headers={"Authorization": f"Bearer {access_token}"},
                )
        except (TimeoutError, httpx2.TransportError) as exc:
            raise WhoopTransportError(type(exc).__name__) from None
        raise_for_status(resp)
        return resp

    @staticmethod
    def _parse(resp: httpx2.Response, model: type[M]) -> M:
        try:
            body: Any = resp.json()
            return model.model_validate(body)
        except (ValueError, ValidationError) as exc:
            raise WhoopBadResponse(f"unexpected {model.__name__} body") from exc
