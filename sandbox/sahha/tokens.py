"""Account and profile tokens: JWT-shaped random strings that expire by the injected clock."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final

from sandbox.sahha.wire import JsonObject

_SCOPE_CLAIM: Final = "https://api.sahha.ai/claims/sahhaApiScope"


def b64url(raw: bytes) -> str:
    """Unpadded base64url, as JWT segments are written."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class TokenStore:
    """Issues tokens and remembers when each one expires."""

    def __init__(
        self, clock: Callable[[], datetime], ttl_s: int, account_id: str
    ) -> None:
        self._clock = clock
        self._ttl_s = ttl_s
        self._account_id = account_id
        self._account: dict[str, datetime] = {}
        self._profile: dict[str, datetime] = {}

    def issue_account_token(self) -> JsonObject:
        """A new account token response (`POST oauth/account/token`)."""
        token = self._new_jwt({"accountId": self._account_id, _SCOPE_CLAIM: "sandbox"})
        self._account[token] = self._expiry()
        return {"accountToken": token, "expiresIn": self._ttl_s, "tokenType": "Account"}

    def issue_profile_token(self, profile_id: str) -> JsonObject:
        """A new profile token response (`POST oauth/profile/register`)."""
        token = self._new_jwt({"profileId": profile_id, "accountId": self._account_id})
        self._profile[token] = self._expiry()
        return {
            "profileToken": token,
            "refreshToken": b64url(secrets.token_bytes(32)),
            "expiresIn": self._ttl_s,
            "tokenType": "Profile",
        }

    def account_token_valid(self, token: str) -> bool:
        """Whether `token` is an account token that has not expired."""
        expires_at = self._account.get(token)
        return expires_at is not None and self._clock() < expires_at

    def expire_all(self) -> None:
        """Forget every token issued so far."""
        self._account.clear()
        self._profile.clear()

    def _expiry(self) -> datetime:
        return self._clock() + timedelta(seconds=self._ttl_s)

    def _new_jwt(self, claims: JsonObject) -> str:
        # JWT-shaped so clients that peek at `exp` work; the signature is random, never checked.
        header = b64url(b'{"alg":"HS256","typ":"JWT"}')
        exp = int(self._expiry().timestamp())
        body = {**claims, "exp": exp, "jti": secrets.token_hex(8)}
        payload = b64url(json.dumps(body, separators=(",", ":")).encode())
        return f"{header}.{payload}.{b64url(secrets.token_bytes(32))}"
