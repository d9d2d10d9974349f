"""WHOOP's OAuth 2.0 authorization-code flow: the authorize URL (pure) and the token calls (I/O).

Client credentials go in the form body (WHOOP documents `client_secret_post`). PKCE S256 is sent
too: WHOOP does not document it, it costs nothing, and it protects the code if it ever leaks.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx2

from whoop_service.whoop.budget import RateBudget
from whoop_service.whoop.errors import (
    WhoopBadResponse,
    WhoopInvalidGrant,
    WhoopOAuthError,
    WhoopServerError,
    WhoopTransportError,
)


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """What the token endpoint hands out."""

    access_token: str
    refresh_token: str | None
    expires_in_s: int
    scopes: tuple[str, ...]

    def expires_at(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.expires_in_s)


def make_pkce_pair() -> tuple[str, str]:
    """A PKCE code verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def build_authorize_url(
    oauth_base_url: str,
    *,
    client_id: str,
    redirect_uri: str,
    scopes: Sequence[str],
    state: str,
    code_challenge: str,
) -> str:
    """The URL the member's browser opens to approve this app at WHOOP."""
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(scopes),
            "state": state,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
        }
    )
    return f"{oauth_base_url.rstrip('/')}/auth?{query}"


def parse_grant(body: Any, default_scopes: Sequence[str]) -> TokenGrant:
    """Read a token response; a missing access token or lifetime is a bad response.

    The granted scopes are WHOOP's `scope` field. Without one, they are `default_scopes`, the
    scopes that request asked for: RFC 6749 §5.1 lets a server leave `scope` out only when it
    granted exactly what was requested.
    """
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
        raise WhoopBadResponse("token response without access_token")
    expires_in = body.get("expires_in", 3600)
    if not isinstance(expires_in, int | float) or expires_in <= 0:
        raise WhoopBadResponse("token response with a bad expires_in")
    refresh = body.get("refresh_token")
    scope = body.get("scope")
    scopes = (
        tuple(scope.split())
        if isinstance(scope, str) and scope
        else tuple(default_scopes)
    )
    return TokenGrant(
        access_token=body["access_token"],
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
        expires_in_s=int(expires_in),
        scopes=scopes,
    )


class WhoopOAuth:
    """Calls WHOOP's token endpoint (`{oauth_base}/token`) with this app's credentials."""

    def __init__(
        self,
        http: httpx2.AsyncClient,
        *,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        scopes: Sequence[str],
        timeout_s: float = 10.0,
        budget: RateBudget | None = None,
    ) -> None:
        self._http = http
        self._client_id = client_id
        self._client_secret = client_secret
        self._redirect_uri = redirect_uri
        self._scopes = tuple(scopes)
        self._timeout_s = timeout_s
        # Whether WHOOP counts token calls against the app's limits is UNCONFIRMED. Refreshes
        # (about 3 a member a day, bunched around the sync slots) are counted in the budget like
        # any call, but never wait for a slot (one runs under the connection's row lock): the
        # calls after it wait instead. A code exchange (once per connection) is left to the
        # headroom, so a member connecting never waits behind a backfill.
        self._budget = budget

    async def exchange_code(
        self, code: str, code_verifier: str, *, deadline: float | None = None
    ) -> TokenGrant:
        """Trade an authorization code for tokens, before `deadline` (on `time.monotonic()`)."""
        return await self._token_request(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self._redirect_uri,
                "code_verifier": code_verifier,
            },
            self._scopes,
            deadline,
        )

    async def refresh(self, refresh_token: str, scopes: Sequence[str]) -> TokenGrant:
        """Trade a (single-use) refresh token for a new pair with the grant's scopes.

        WHOOP's tutorials send `scope=offline`; a server that narrows the grant to the requested
        scopes (RFC 6749 §6) would then hand out a token that reads nothing, so the grant's own
        scopes are asked for, `offline` among them.
        """
        wanted = tuple(dict.fromkeys(["offline", *scopes]))
        if self._budget is not None:
            await self._budget.record_sent()
        # No caller's deadline here: a refresh is never cut short (the spent refresh token's
        # successor would be lost). TokenManager lets callers stop waiting for it instead.
        return await self._token_request(
            {
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "scope": " ".join(wanted),
            },
            wanted,
        )

    async def _token_request(
        self,
        form: dict[str, str],
        requested: Sequence[str],
        deadline: float | None = None,
    ) -> TokenGrant:
        data = {
            **form,
            "client_id": self._client_id,
            "client_secret": self._client_secret,
        }
        limit = self._timeout_s
        if deadline is not None:
            limit = min(limit, max(0.0, deadline - time.monotonic()))
        try:
            async with asyncio.timeout(limit):
                resp = await self._http.post("token", data=data)
        except (TimeoutError, httpx2.TransportError) as exc:
            raise WhoopTransportError(type(exc).__name__) from None
        if resp.status_code >= 500:
            raise WhoopServerError(resp.status_code)
        try:
            body = resp.json()
        except ValueError:
            body = None
        if resp.status_code != 200:
            error = body.get("error") if isinstance(body, dict) else None
            error = error if isinstance(error, str) else f"http_{resp.status_code}"
            if error == "invalid_grant":
                raise WhoopInvalidGrant(error, resp.status_code)
            raise WhoopOAuthError(error, resp.status_code)
        return parse_grant(body, requested)
