"""TokenManager: always hands out a working WHOOP access token, or says why it cannot.

WHOOP refresh tokens are single-use and a refresh kills the previous access token, so two refreshes
at once lose the grant. Refresh is therefore single-flight per user: one task per user in a process
(so 50 concurrent requests make one database round of waiting, not 50), then a row lock shared by
every process; after taking it the row is read again, and if another process already refreshed, its
token is used. Both new tokens are stored before the lock is released.

A caller waits for a refresh only until its own deadline (`TokenRefreshPending` then). The refresh
is never cut short, since WHOOP may already have spent the old refresh token: it finishes in the
background within the token client's own timeout, and a later request finds the new token.

A stored token that cannot be decrypted (a lost key, a damaged row) puts the user in
`needs_reauth` with reason `token_unreadable`: that user must connect again, nobody else notices.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import async_sessionmaker

from shared.time import Clock, utc_now
from whoop_service.auth.crypto import TokenCipher, TokenDecryptError
from whoop_service.db.connections import ConnectionRepository
from whoop_service.domain import Connection, ConnectionStatus
from whoop_service.errors import (
    TokenRefreshPending,
    WhoopNeedsReauth,
    WhoopNotConnected,
    WhoopUnavailable,
)
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
TOKEN_UNREADABLE = "token_unreadable"


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
        # The refresh under way per user in this process; callers join it.
        self._refreshes: dict[str, asyncio.Task[str]] = {}
        # Refreshes this process performed at WHOOP (metrics, tests).
        self.refresh_count = 0

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
        self,
        user_id: str,
        *,
        rejected: str | None = None,
        deadline: float | None = None,
    ) -> str:
        """A valid access token; `rejected` is one WHOOP just refused, forcing a refresh.

        A refresh is waited for until `deadline` (on `time.monotonic()`), then
        `TokenRefreshPending` is raised while the refresh goes on.
        """
        async with self._sessions() as session:
            conn = await ConnectionRepository(session).get_connection(user_id)
        token = await self._usable_or_mark(user_id, conn, rejected)
        if token is not None:
            return token
        task = self._refreshes.get(user_id)
        if task is None:
            task = asyncio.create_task(
                self._refresh_locked(user_id, rejected), name=f"token-refresh:{user_id}"
            )
            self._refreshes[user_id] = task
            task.add_done_callback(self._forget(user_id))
        wait_s = None if deadline is None else deadline - time.monotonic()
        try:
            async with asyncio.timeout(wait_s):
                token = await asyncio.shield(task)
        except TimeoutError:
            log.info("whoop.token.refresh_pending", user_id=user_id)
            raise TokenRefreshPending(
                "A WHOOP token refresh is still under way."
            ) from None
        if token == rejected:
            # The refresh we joined was not ours and handed back the token WHOOP just refused.
            return await self.get_access_token(
                user_id, rejected=rejected, deadline=deadline
            )
        return token

    def _forget(self, user_id: str) -> Callable[[asyncio.Task[str]], None]:
        def done(task: asyncio.Task[str]) -> None:
            if self._refreshes.get(user_id) is task:
                del self._refreshes[user_id]
            if not task.cancelled():
                # Retrieved here: when every waiter stopped waiting, nobody else will. The
                # refresh logged its own failure.
                task.exception()

        return done

    async def settle(self, timeout_s: float = 30.0) -> None:
        """Wait for the refreshes under way (shutdown, tests)."""
        tasks = list(self._refreshes.values())
        if tasks:
            await asyncio.wait(tasks, timeout=timeout_s)

    def _usable(
        self, user_id: str, conn: Connection | None, rejected: str | None
    ) -> str | None:
        """The stored access token if it is still good; TokenDecryptError if unreadable."""
        if conn is None:
            raise WhoopNotConnected("This user has not connected WHOOP.")
        if conn.status is ConnectionStatus.NEEDS_REAUTH:
            raise WhoopNeedsReauth("WHOOP access must be granted again.")
        if conn.access_expires_at - REFRESH_MARGIN <= self._clock():
            return None
        token = self._cipher.decrypt(user_id, "access", conn.access_token_enc)
        return None if token == rejected else token

    async def _usable_or_mark(
        self, user_id: str, conn: Connection | None, rejected: str | None
    ) -> str | None:
        try:
            return self._usable(user_id, conn, rejected)
        except TokenDecryptError:
            async with self._sessions() as session:
                await self._mark_unreadable(ConnectionRepository(session), user_id)
                await session.commit()
            raise WhoopNeedsReauth("WHOOP access must be granted again.") from None

    async def _mark_unreadable(self, repo: ConnectionRepository, user_id: str) -> None:
        # Never the ciphertext or the key: only that it could not be read.
        await repo.mark_needs_reauth(user_id, TOKEN_UNREADABLE, self._clock())
        log.warning(
            "whoop.token.needs_reauth", user_id=user_id, reason=TOKEN_UNREADABLE
        )

    async def _refresh_locked(self, user_id: str, rejected: str | None) -> str:
        # Leaving the session without commit rolls back and releases the row lock.
        async with self._sessions() as session:
            repo = ConnectionRepository(session)
            conn = await repo.get_connection_for_update(user_id)
            try:
                token = self._usable(user_id, conn, rejected)
                if token is not None:
                    return token  # another task or process refreshed while we waited
                assert conn is not None
                outcome = await self._refresh_at_whoop(repo, conn)
            except TokenDecryptError:
                await self._mark_unreadable(repo, user_id)
                outcome = None
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
                    "whoop.token.refresh_failed", attempt=attempt, error=exc.code
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
