"""TokenManager: always hands out a working WHOOP access token.

WHOOP refresh tokens are single-use and a refresh kills the previous access token, so two refreshes
at once lose the grant. Refresh is therefore single-flight per user: an in-process lock (so 50
concurrent requests make one database round of waiting, not 50), then a row lock shared by every
process; after taking it the row is read again, and if another process already refreshed, its token
is used. Both new tokens are stored before the lock is released.
"""

from __future__ import annotations

import asyncio
import weakref
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import async_sessionmaker

from shared.time import Clock, utc_now
from whoop_service.auth.crypto import TokenCipher
from whoop_service.db.connections import ConnectionRepository
from whoop_service.domain import Connection, ConnectionStatus
from whoop_service.errors import WhoopNeedsReauth, WhoopNotConnected, WhoopUnavailable
from whoop_service.whoop.errors import (
    WhoopInvalidGrant,
    WhoopOAuthError,
    WhoopServerError,
    WhoopTransportError,
)
from whoop_service.whoop.oauth import TokenGrant, WhoopOAuth

log = structlog.get_logger()

# Refresh this long before WHOOP's expiry, so a token handed out survives the call it is used for.
REFRESH_MARGIN = timedelta(minutes=5)


class TokenManager:
    """Valid access tokens per user, refreshed single-flight across processes."""

    def __init__(
        self,
        sessions: async_sessionmaker[Any],
        cipher: TokenCipher,
        oauth: WhoopOAuth | None,
        *,
        clock: Clock = utc_now,
    ) -> None:
        self._sessions = sessions
        self._cipher = cipher
        self._oauth = oauth
        self._clock = clock
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self.refresh_count = (
            0  # refreshes this process performed at WHOOP (metrics, tests)
        )

    def encrypt_grant(self, user_id: str, grant: TokenGrant) -> dict[str, Any]:
        """The encrypted token columns of a fresh grant."""
        return {
            "access_token_enc": self._cipher.encrypt(
                user_id, "access", grant.access_token
            ),
            "refresh_token_enc": (
                self._cipher.encrypt(user_id, "refresh", grant.refresh_token)
                if grant.refresh_token
                else None
            ),
            "access_expires_at": grant.expires_at(self._clock()),
        }

    async def get_access_token(
        self, user_id: str, *, rejected: str | None = None
    ) -> str:
        """A valid access token; `rejected` is one WHOOP just refused, forcing a refresh."""
        async with self._sessions() as session:
            conn = await ConnectionRepository(session).get_connection(user_id)
        token = self._usable(user_id, conn, rejected)
        if token is not None:
            return token
        lock = self._locks.get(user_id)
        if lock is None:
            lock = self._locks[user_id] = asyncio.Lock()
        async with lock:
            return await self._refresh_locked(user_id, rejected)

    def _usable(
        self, user_id: str, conn: Connection | None, rejected: str | None
    ) -> str | None:
        if conn is None:
            raise WhoopNotConnected("This user has not connected WHOOP.")
        if conn.status is ConnectionStatus.NEEDS_REAUTH:
            raise WhoopNeedsReauth("WHOOP access must be granted again.")
        if conn.access_expires_at - REFRESH_MARGIN <= self._clock():
            return None
        token = self._cipher.decrypt(user_id, "access", conn.access_token_enc)
        return None if token == rejected else token

    async def _refresh_locked(self, user_id: str, rejected: str | None) -> str:
        # Leaving the session without commit rolls back and releases the row lock.
        async with self._sessions() as session:
            repo = ConnectionRepository(session)
            conn = await repo.get_connection_for_update(user_id)
            token = self._usable(user_id, conn, rejected)
            if token is not None:
                return token  # another task or process refreshed while we waited
            assert conn is not None
            outcome = await self._refresh_at_whoop(repo, conn)
            if isinstance(outcome, TokenGrant):
                await repo.update_tokens(
                    user_id,
                    **self.encrypt_grant(user_id, outcome),
                    scopes=outcome.scopes,
                    now=self._clock(),
                )
            await session.commit()
        if outcome is None:
            raise WhoopNeedsReauth("WHOOP access must be granted again.")
        if isinstance(outcome, str):
            return outcome
        log.info("whoop.token.refreshed", user_id=user_id)
        return outcome.access_token

    async def _refresh_at_whoop(
        self, repo: ConnectionRepository, conn: Connection
    ) -> TokenGrant | str | None:
        """A new grant; or a token another process stored; or None once marked `needs_reauth`."""
        if self._oauth is None:
            raise WhoopUnavailable("WHOOP credentials are not configured.")
        if conn.refresh_token_enc is None:
            await repo.mark_needs_reauth(
                conn.user_id, "no_refresh_token", self._clock()
            )
            return None
        refresh_token = self._cipher.decrypt(
            conn.user_id, "refresh", conn.refresh_token_enc
        )
        for attempt in (1, 2):
            try:
                self.refresh_count += 1
                return await self._oauth.refresh(refresh_token, conn.scopes)
            except (WhoopTransportError, WhoopServerError) as exc:
                # Whether WHOOP rotated the token is unknown; one retry tells (invalid_grant).
                log.warning(
                    "whoop.token.refresh_failed",
                    attempt=attempt,
                    error=type(exc).__name__,
                )
                if attempt == 2:
                    raise WhoopUnavailable(
                        "WHOOP did not answer the token refresh."
                    ) from None
            except WhoopInvalidGrant:
                return await self._after_invalid_grant(repo, conn)
            except WhoopOAuthError as exc:
                log.error("whoop.token.refresh_refused", error=exc.error)
                raise WhoopUnavailable("WHOOP refused the token refresh.") from None
        raise AssertionError("unreachable")

    async def _after_invalid_grant(
        self, repo: ConnectionRepository, conn: Connection
    ) -> str | None:
        # Re-read once: a process outside our lock (an older release) may have just rotated it.
        latest = await repo.get_connection(conn.user_id)
        if latest is not None and latest.token_version != conn.token_version:
            log.info("whoop.token.rotated_elsewhere", user_id=conn.user_id)
            return self._cipher.decrypt(conn.user_id, "access", latest.access_token_enc)
        await repo.mark_needs_reauth(conn.user_id, "invalid_grant", self._clock())
        log.warning(
            "whoop.token.needs_reauth", user_id=conn.user_id, reason="invalid_grant"
        )
        return None
