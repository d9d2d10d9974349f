"""The account token: fetched once, shared by every call, renewed ahead of its expiry.

Only one token request is ever in flight: callers queue on a lock and then find the new token.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any, Final

import httpx2
import structlog

from gateway.sahha.errors import SahhaError, failure_for_status, failure_for_transport
from shared.time import Clock, utc_now

log = structlog.get_logger()

TOKEN_PATH: Final = "/api/v1/oauth/account/token"
# Renew this long before expiry, or a tenth of the lifetime for short-lived tokens.
MAX_RENEW_MARGIN_S: Final = 300.0
RENEW_MARGIN_SHARE: Final = 0.1


class AccountTokens:
    """Hands out a live account token, fetching a new one when none is left or one was refused."""

    def __init__(
        self,
        http: httpx2.AsyncClient,
        *,
        client_id: str,
        client_secret: str,
        clock: Clock = utc_now,
    ) -> None:
        self._http = http
        self._credentials = {"clientId": client_id, "clientSecret": client_secret}
        self._clock = clock
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._renew_at: datetime | None = None

    async def get(self, *, rejected: str | None = None) -> str:
        """A token to use; `rejected` is one Sahha just refused, so it is never handed out again."""
        async with self._lock:
            token, renew_at = self._token, self._renew_at
            if (
                token is not None
                and token != rejected
                and renew_at is not None
                and self._clock() < renew_at
            ):
                return token
            self._token, self._renew_at = await self._fetch()
            return self._token

    async def _fetch(self) -> tuple[str, datetime]:
        try:
            resp = await self._http.post(TOKEN_PATH, json=self._credentials)
        except httpx2.TransportError as exc:
            raise failure_for_transport(exc) from None
        if not resp.is_success:
            # The token route knows no profiles: a 404 (or a 401, bad credentials) is our error.
            raise failure_for_status(resp.status_code, on_404="error")
        token, expires_in_s = _parse_token(resp)
        margin_s = min(MAX_RENEW_MARGIN_S, RENEW_MARGIN_SHARE * expires_in_s)
        log.info("sahha.token.fetched", expires_in_s=expires_in_s)
        return token, self._clock() + timedelta(seconds=expires_in_s - margin_s)


def _parse_token(resp: httpx2.Response) -> tuple[str, float]:
    try:
        body: Any = resp.json()
    except ValueError:
        raise SahhaError("error", "token_body_not_json") from None
    token = body.get("accountToken") if isinstance(body, dict) else None
    expires_in = body.get("expiresIn") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise SahhaError("error", "token_body_invalid")
    if (
        isinstance(expires_in, bool)
        or not isinstance(expires_in, int | float)
        or expires_in <= 0
    ):
        raise SahhaError("error", "token_body_invalid")
    return token, float(expires_in)
