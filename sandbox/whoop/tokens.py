"""Authorization codes, access and refresh tokens: issue, exchange, rotate, revoke.

Rules follow WHOOP's docs where they exist and ORY Hydra/fosite (whose error wording WHOOP's
token endpoint uses) where they do not: codes and refresh tokens are single-use, a refresh kills
the user's older access tokens, and reusing a spent code or refresh token revokes its family.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sandbox.whoop.errors import SandboxError

OFFLINE = "offline"
SCOPES = frozenset(
    {
        OFFLINE,
        "read:recovery",
        "read:cycles",
        "read:workout",
        "read:sleep",
        "read:profile",
        "read:body_measurement",
    }
)
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


def invalid_grant(description: str) -> SandboxError:
    """The token endpoint's answer to a bad, spent, expired or revoked code or refresh token."""
    return SandboxError(400, "invalid_grant", description)


def format_scopes(scopes: Iterable[str]) -> str:
    """Scopes as one space-separated string, in a stable order."""
    return " ".join(sorted(scopes))


def s256(verifier: str) -> str:
    """The PKCE S256 challenge of a verifier (RFC 7636)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass
class AuthCode:
    """A code handed out by /auth, waiting for its single exchange."""

    code: str
    client_id: str
    redirect_uri: str
    scopes: frozenset[str]
    user_id: int
    challenge: str | None
    expires_at: datetime
    used: bool = False
    family: str | None = None


@dataclass
class Grant:
    """An access or refresh token and what it may do."""

    token: str
    kind: str
    user_id: int
    client_id: str
    scopes: frozenset[str]
    expires_at: datetime | None
    family: str
    revoked: bool = False

    def live(self, now: datetime) -> bool:
        """Neither revoked nor expired at `now`."""
        return not self.revoked and (self.expires_at is None or now < self.expires_at)


class TokenStore:
    """Every code and token the emulated authorization server knows."""

    def __init__(
        self,
        *,
        access_ttl: timedelta,
        refresh_ttl: timedelta | None,
        code_ttl: timedelta,
        reuse_revokes_family: bool,
    ) -> None:
        self._access_ttl = access_ttl
        self._refresh_ttl = refresh_ttl
        self._code_ttl = code_ttl
        self._reuse_revokes_family = reuse_revokes_family
        self.codes: dict[str, AuthCode] = {}
        self.grants: dict[str, Grant] = {}

    def new_code(
        self,
        *,
        client_id: str,
        redirect_uri: str,
        scopes: frozenset[str],
        user_id: int,
        challenge: str | None,
        now: datetime,
    ) -> str:
        """A fresh single-use authorization code."""
        code = secrets.token_urlsafe(32)
        self.codes[code] = AuthCode(
            code,
            client_id,
            redirect_uri,
            scopes,
            user_id,
            challenge,
            now + self._code_ttl,
        )
        return code

    def issue(
        self,
        user_id: int,
        client_id: str,
        scopes: frozenset[str],
        now: datetime,
        family: str | None = None,
    ) -> dict[str, object]:
        """New tokens and the token endpoint's JSON body; a refresh token only with `offline`."""
        family = family or secrets.token_hex(8)
        access = Grant(
            secrets.token_urlsafe(32), "access", user_id, client_id, scopes,
            now + self._access_ttl, family,
        )  # fmt: skip
        self.grants[access.token] = access
        body: dict[str, object] = {
            "access_token": access.token,
            "expires_in": int(self._access_ttl.total_seconds()),
        }
        if OFFLINE in scopes:
            expires = None if self._refresh_ttl is None else now + self._refresh_ttl
            refresh = Grant(
                secrets.token_urlsafe(32),
                "refresh",
                user_id,
                client_id,
                scopes,
                expires,
                family,
            )
            self.grants[refresh.token] = refresh
            body["refresh_token"] = refresh.token
        body["scope"] = format_scopes(scopes)
        body["token_type"] = "bearer"
        return body

    def exchange_code(
        self,
        code: str,
        *,
        client_id: str,
        redirect_uri: str,
        verifier: str | None,
        now: datetime,
    ) -> tuple[AuthCode, dict[str, object]]:
        """Trade a code for tokens, once."""
        found = self.codes.get(code)
        if found is None or found.client_id != client_id:
            raise invalid_grant("The authorization code is invalid.")
        if found.used:
            # RFC 6749 §4.1.2: tokens already issued from a replayed code should be revoked.
            if found.family is not None:
                self._revoke_family(found.family)
            raise invalid_grant("The authorization code has already been used.")
        if now >= found.expires_at:
            raise invalid_grant("The authorization code has expired.")
        if found.redirect_uri != redirect_uri:
            raise invalid_grant(
                "The 'redirect_uri' from this request does not match the one "
                "from the authorize request."
            )
        self._check_pkce(found.challenge, verifier)
        found.used = True
        body = self.issue(found.user_id, client_id, found.scopes, now)
        found.family = self.grants[str(body["access_token"])].family
        return found, body

    @staticmethod
    def _check_pkce(challenge: str | None, verifier: str | None) -> None:
        if challenge is None:
            if verifier is not None:
                raise invalid_grant(
                    "code_verifier sent but no code_challenge was given."
                )
            return
        if verifier is None or not _VERIFIER.match(verifier):
            raise invalid_grant("The PKCE code verifier is missing or malformed.")
        if not hmac.compare_digest(s256(verifier), challenge):
            raise invalid_grant(
                "The PKCE code challenge did not match the code verifier."
            )

    def refresh(
        self, token: str, *, client_id: str, scope: str | None, now: datetime
    ) -> tuple[Grant, dict[str, object]]:
        """Rotate a refresh token: the old one and the user's access tokens die at once."""
        old = self.grants.get(token)
        if old is None or old.kind != "refresh" or old.client_id != client_id:
            raise invalid_grant("The refresh token is invalid.")
        if old.revoked:
            if self._reuse_revokes_family:
                self._revoke_family(old.family)
            raise invalid_grant("The refresh token has been used or revoked.")
        if not old.live(now):
            raise invalid_grant("The refresh token has expired.")
        scopes = old.scopes
        if scope is not None:
            requested = frozenset(scope.split())
            if not requested or not requested <= old.scopes:
                raise SandboxError(
                    400, "invalid_scope", "The requested scope exceeds the grant."
                )
            scopes = requested
        old.revoked = True
        for grant in self.grants.values():
            if grant.kind == "access" and (grant.user_id, grant.client_id) == (
                old.user_id,
                client_id,
            ):
                grant.revoked = True
        return old, self.issue(old.user_id, client_id, scopes, now, family=old.family)

    def access(self, token: str, now: datetime) -> Grant | None:
        """The live access token `token`, or None."""
        grant = self.grants.get(token)
        if grant is None or grant.kind != "access" or not grant.live(now):
            return None
        return grant

    def revoke_user(self, user_id: int, client_id: str) -> None:
        """Revoke every token the user granted this client."""
        for grant in self.grants.values():
            if grant.user_id == user_id and grant.client_id == client_id:
                grant.revoked = True

    def expire_access(self, user_id: int, now: datetime) -> None:
        """Make the user's access tokens expired (not revoked), as if their hour had passed."""
        for grant in self.grants.values():
            if grant.kind == "access" and grant.user_id == user_id and grant.live(now):
                grant.expires_at = now

    def _revoke_family(self, family: str) -> None:
        for grant in self.grants.values():
            if grant.family == family:
                grant.revoked = True
