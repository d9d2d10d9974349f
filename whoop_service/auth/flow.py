"""ConnectFlow: the connection lifecycle (connect, callback, status, disconnect) as one unit of work
per step; it owns the commits, the repository only flushes."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.contracts import (
    CallbackResponse,
    CompletionResponse,
    ConnectionStatusResponse,
    ConnectResponse,
    DisconnectResponse,
)
from shared.errors import TooManyRequests
from shared.time import Clock, utc_now
from whoop_service.auth.crypto import TokenCipher, TokenDecryptError
from whoop_service.auth.tokens import TokenManager
from whoop_service.db.connections import ConnectionRepository
from whoop_service.db.jobs import JobRepository
from whoop_service.db.records import RecordRepository
from whoop_service.domain import (
    DATA_TYPES,
    ConnectionStatus,
    PendingGrant,
    granted_types,
)
from whoop_service.errors import (
    AuthorizationDenied,
    ConnectUserMismatch,
    InvalidCompletion,
    InvalidOAuthState,
    OAuthCodeRejected,
    WhoopAccountLinked,
    WhoopNeedsReauth,
    WhoopNotConfigured,
    WhoopNotConnected,
    WhoopUnavailable,
    error_code,
)
from whoop_service.sync.plan import SyncPolicy, type_statuses
from whoop_service.whoop.budget import BudgetExhausted
from whoop_service.whoop.client import WhoopClient
from whoop_service.whoop.errors import (
    WhoopAuthError,
    WhoopError,
    WhoopInvalidGrant,
    WhoopOAuthError,
)
from whoop_service.whoop.oauth import WhoopOAuth, build_authorize_url, make_pkce_pair
from whoop_service.whoop.ratelimit import Priority
from whoop_service.whoop.user_limits import UserLimits, retry_after_header

log = structlog.get_logger()

STATE_TTL = timedelta(minutes=10)
# How long an exchanged grant waits for its user to complete the link (CONTRACT.md §8).
COMPLETION_TTL = timedelta(minutes=10)
# A pending grant WHOOP would not revoke is forgotten after this long all the same.
PENDING_GIVE_UP = timedelta(days=1)
# RFC 6749 §4.1.2.1: the errors an authorization redirect may carry.
_AUTHORIZE_ERRORS = frozenset(
    {
        "invalid_request",
        "unauthorized_client",
        "unsupported_response_type",
        "invalid_scope",
        "server_error",
        "temporarily_unavailable",
    }
)


def hash_state(state: str) -> str:
    """SHA-256 of a bearer secret (an OAuth state, a completion token): what is stored."""
    return hashlib.sha256(state.encode()).hexdigest()


class ConnectFlow:
    """Connect, complete, report and forget WHOOP connections."""

    def __init__(
        self,
        sessions: async_sessionmaker[Any],
        cipher: TokenCipher,
        tokens: TokenManager,
        oauth: WhoopOAuth | None,
        whoop: WhoopClient,
        *,
        oauth_base_url: str,
        client_id: str | None,
        redirect_uri: str,
        scopes: Sequence[str],
        clock: Clock = utc_now,
        policy: SyncPolicy | None = None,
        on_connected: Callable[[], None] | None = None,
        limits: UserLimits | None = None,
    ) -> None:
        self._sessions = sessions
        self._cipher = cipher
        self._tokens = tokens
        self._oauth = oauth
        self._whoop = whoop
        self._oauth_base_url = oauth_base_url
        self._client_id = client_id
        self._redirect_uri = redirect_uri
        self._scopes = tuple(scopes)
        self._clock = clock
        self._policy = policy or SyncPolicy()
        self._on_connected = on_connected
        self._limits = limits

    async def start(self, user_id: str) -> ConnectResponse:
        """A fresh authorization URL with a single-use state bound to the user.

        Each approved flow costs WHOOP calls every user shares (the exchange, the profile, the
        first backfill, a revoke): the limits allow a user a few flows in 10 minutes and a UTC
        day (429 `rate_limited`)."""
        if self._oauth is None or self._client_id is None:
            raise WhoopNotConfigured("WHOOP credentials are not configured.")
        if self._limits is not None:
            wait_s = await self._limits.start_connect(user_id)
            if wait_s > 0:
                raise TooManyRequests(
                    "Too many WHOOP connections were started lately; try again later.",
                    headers=retry_after_header(wait_s),
                )
        state = secrets.token_urlsafe(32)
        verifier, challenge = make_pkce_pair()
        now = self._clock()
        expires_at = now + STATE_TTL
        async with self._sessions() as session:
            repo = ConnectionRepository(session)
            await repo.delete_expired_states(now)
            await repo.save_state(
                hash_state(state),
                user_id,
                self._cipher.encrypt(user_id, "pkce", verifier),
                now,
                expires_at,
            )
            await session.commit()
        url = build_authorize_url(
            self._oauth_base_url,
            client_id=self._client_id,
            redirect_uri=self._redirect_uri,
            scopes=self._scopes,
            state=state,
            code_challenge=challenge,
        )
        log.info("whoop.connect.started", user_id=user_id)
        return ConnectResponse(
            authorization_url=url, state=state, expires_at=expires_at
        )

    async def exchange(
        self,
        code: str,
        state: str,
        user_id: str | None = None,
        *,
        deadline: float | None = None,
    ) -> CompletionResponse:
        """WHOOP's redirect: exchange the code and keep the grant *pending* for the user who
        started the flow; nothing is linked until that user completes it (CONTRACT.md §8).
        WHOOP's calls end by `deadline` (on `time.monotonic()`), the caller's."""
        if self._oauth is None:
            raise WhoopNotConfigured("WHOOP credentials are not configured.")
        owner, verifier = await self._consume_state(state, user_id)
        try:
            grant = await self._oauth.exchange_code(code, verifier, deadline=deadline)
            profile = await self._whoop.fetch_profile(
                grant.access_token, deadline=deadline
            )
        except WhoopInvalidGrant:
            raise OAuthCodeRejected("WHOOP refused the authorization code.") from None
        except WhoopOAuthError as exc:
            log.error("whoop.connect.exchange_refused", error=exc.error)
            raise WhoopUnavailable("WHOOP refused the code exchange.") from None
        except (WhoopError, BudgetExhausted) as exc:
            log.warning("whoop.connect.upstream_failed", error=error_code(exc))
            raise WhoopUnavailable("WHOOP could not complete the connection.") from None
        completion = secrets.token_urlsafe(32)
        now = self._clock()
        expires_at = now + COMPLETION_TTL
        async with self._sessions() as session:
            repo = ConnectionRepository(session)
            # An earlier unfinished flow of the same member is superseded; revoking it would
            # revoke this grant too (WHOOP revokes a member's access as a whole).
            await repo.delete_pending_grants_of(owner, profile.user_id)
            await repo.save_pending_grant(
                {
                    "completion_hash": hash_state(completion),
                    "user_id": owner,
                    "whoop_user_id": profile.user_id,
                    "scopes": " ".join(grant.scopes),
                    **self._tokens.encrypt_grant(owner, grant),
                    "created_at": now,
                    "expires_at": expires_at,
                }
            )
            await session.commit()
        log.info("whoop.connect.pending", user_id=owner, whoop_user_id=profile.user_id)
        return CompletionResponse(completion=completion, expires_at=expires_at)

    async def complete(
        self, completion: str, user_id: str, *, deadline: float | None = None
    ) -> CallbackResponse:
        """Link the pending grant, only for the user who started the flow.

        Another user's completion burns the grant and revokes it at WHOOP (a forwarded consent
        link must never hand someone's WHOOP data to whoever holds it)."""
        completion_hash = hash_state(completion)
        now = self._clock()
        async with self._sessions() as session:
            repo = ConnectionRepository(session)
            pending = await repo.get_pending_grant(completion_hash)
            if pending is None or pending.expires_at <= now:
                raise InvalidCompletion(
                    "The completion is unknown, used or expired; connect again."
                )
            if pending.user_id != user_id:
                burned = await repo.burn_pending_grant(completion_hash, now)
                await session.commit()
                if burned:
                    log.warning(
                        "whoop.connect.user_mismatch",
                        user_id=user_id,
                        started_by=pending.user_id,
                    )
                    await self._forget_pending(pending, deadline)
                    raise ConnectUserMismatch(
                        "This connection was started by another user; it was revoked."
                    )
                raise InvalidCompletion(
                    "The completion is unknown, used or expired; connect again."
                )
            if not await repo.take_pending_grant(completion_hash, user_id, now):
                raise InvalidCompletion(
                    "The completion is unknown, used or expired; connect again."
                )
            try:
                await self._link(session, pending, now)
                await session.commit()
            except WhoopAccountLinked:
                await session.rollback()
                await self._drop_pending(pending)  # revoking would cut the other link
                raise
            except IntegrityError:
                # Another user linked this WHOOP member in the same moment (the unique
                # whoop_user_id held): the same answer as when that link came first.
                await session.rollback()
                await self._drop_pending(pending)
                raise WhoopAccountLinked(
                    "This WHOOP account is connected to another user."
                ) from None
        log.info(
            "whoop.connect.completed",
            user_id=user_id,
            whoop_user_id=pending.whoop_user_id,
        )
        if self._on_connected is not None:
            self._on_connected()  # wake the worker for the first sync
        return CallbackResponse(
            user_id=user_id,
            status="connected",
            whoop_user_id=pending.whoop_user_id,
            scopes=list(pending.scopes),
        )

    async def _link(
        self, session: AsyncSession, pending: PendingGrant, now: datetime
    ) -> None:
        """Store the connection, adopt the account's records and queue the first sync."""
        owner = pending.user_id
        repo = ConnectionRepository(session)
        linked = await repo.get_connection_by_whoop_user(pending.whoop_user_id)
        if linked is not None and linked.user_id != owner:
            if linked.status is ConnectionStatus.CONNECTED:
                raise WhoopAccountLinked(
                    "This WHOOP account is connected to another user."
                )
            # That grant is dead: the account gets a new owner.
            await repo.delete_connection(linked.user_id)
        previous = await repo.get_connection(owner)
        records = RecordRepository(session)
        await records.adopt_account(owner, pending.whoop_user_id)
        if previous is None or previous.whoop_user_id != pending.whoop_user_id:
            await records.reset_sync_state(owner)
        # The first sync is a job queued with the connection: durable across restarts.
        await JobRepository(session).enqueue(
            "sync",
            {"data_types": list(DATA_TYPES)},
            priority=int(Priority.BACKFILL),
            now=now,
            user_id=owner,
        )
        await repo.save_connection(
            {
                "user_id": owner,
                "whoop_user_id": pending.whoop_user_id,
                "status": ConnectionStatus.CONNECTED.value,
                "scopes": " ".join(pending.scopes),
                "access_token_enc": pending.access_token_enc,
                "refresh_token_enc": pending.refresh_token_enc,
                "access_expires_at": pending.access_expires_at,
                "token_version": 1,
                "connected_at": now,
                "updated_at": now,
            }
        )

    async def expire_pending(self, *, deadline: float | None = None) -> int:
        """Revoke at WHOOP and delete the pending grants nobody completed in time; how many
        were forgotten. Every replica may run it: a revoke is idempotent at WHOOP."""
        async with self._sessions() as session:
            expired = await ConnectionRepository(session).list_expired_pending_grants(
                self._clock()
            )
        forgotten = 0
        for pending in expired:
            if deadline is not None and time.monotonic() >= deadline:
                break
            forgotten += await self._forget_pending(pending, deadline)
        if forgotten:
            log.info("whoop.connect.pending_expired", count=forgotten)
        return forgotten

    async def _forget_pending(
        self, pending: PendingGrant, deadline: float | None
    ) -> bool:
        """Revoke a pending grant at WHOOP, then delete it; kept for a later try when WHOOP
        did not answer (until PENDING_GIVE_UP)."""
        revoked = await self._revoke_pending(pending, deadline)
        if not revoked and self._clock() - pending.created_at < PENDING_GIVE_UP:
            return False
        await self._drop_pending(pending)
        return True

    async def _revoke_pending(
        self, pending: PendingGrant, deadline: float | None
    ) -> bool:
        """True when WHOOP revoked the grant, or there is nothing it should revoke."""
        async with self._sessions() as session:
            repo = ConnectionRepository(session)
            linked = await repo.get_connection_by_whoop_user(pending.whoop_user_id)
            newer = await repo.has_newer_pending_grant(
                pending.whoop_user_id, pending.created_at
            )
        if newer or (
            linked is not None and linked.status is ConnectionStatus.CONNECTED
        ):
            # WHOOP revokes a member's access to the app as a whole: that would cut this live
            # connection (or the newer flow) too. The pending tokens are only forgotten.
            return True
        if pending.access_expires_at <= self._clock():
            return True  # the access token is dead; WHOOP has nothing live to revoke with it
        try:
            token = self._cipher.decrypt(
                pending.user_id, "access", pending.access_token_enc
            )
            # Background work (the sweep, or after a refusal): never ahead of users' reads.
            await self._whoop.revoke_access(
                token, deadline=deadline, priority=Priority.SCHEDULED
            )
        except TokenDecryptError:
            return True  # unreadable with today's keys: nothing can ever revoke with it
        except WhoopAuthError:
            return True  # WHOOP no longer takes the token: already revoked
        except (WhoopError, BudgetExhausted) as exc:
            log.warning("whoop.connect.pending_revoke_failed", error=error_code(exc))
            return False
        return True

    async def _drop_pending(self, pending: PendingGrant) -> None:
        async with self._sessions() as session:
            await ConnectionRepository(session).delete_pending_grant(
                pending.completion_hash
            )
            await session.commit()

    async def decline(self, state: str, error: str, user_id: str | None = None) -> None:
        """The member did not approve: use up the state and say why (always raises)."""
        owner, _ = await self._consume_state(state, user_id)
        log.info("whoop.connect.declined", user_id=owner, reason=error)
        if error == "access_denied":
            raise AuthorizationDenied("The WHOOP member declined access.")
        code = error if error in _AUTHORIZE_ERRORS else "authorization_failed"
        raise AuthorizationDenied("WHOOP did not grant access.", code=code)

    async def _consume_state(self, state: str, user_id: str | None) -> tuple[str, str]:
        """The state's user and PKCE verifier; refused (without side effects) unless live."""
        state_hash = hash_state(state)
        now = self._clock()
        async with self._sessions() as session:
            repo = ConnectionRepository(session)
            found = await repo.get_state(state_hash)
            if found is None:
                raise InvalidOAuthState(
                    "Unknown authorization state.", code="invalid_state"
                )
            if found.used_at is not None:
                raise InvalidOAuthState(
                    "This authorization was already used.", code="state_used"
                )
            if found.expires_at <= now:
                raise InvalidOAuthState(
                    "This authorization expired.", code="state_expired"
                )
            if user_id is not None and user_id != found.user_id:
                raise InvalidOAuthState(
                    "This authorization belongs to another user.",
                    code="state_user_mismatch",
                )
            if not await repo.consume_state(state_hash, now):
                raise InvalidOAuthState(
                    "This authorization was already used.", code="state_used"
                )
            await session.commit()
        verifier = self._cipher.decrypt(found.user_id, "pkce", found.code_verifier_enc)
        return found.user_id, verifier

    async def status(self, user_id: str) -> ConnectionStatusResponse:
        """The user's connection state, scopes and per-type sync status."""
        async with self._sessions() as session:
            repo = ConnectionRepository(session)
            conn = await repo.get_connection(user_id)
            states = await RecordRepository(session).list_sync_states(user_id)
        granted = granted_types(conn.scopes) if conn else DATA_TYPES
        sync = type_statuses(states, self._clock(), self._policy, granted)
        return ConnectionStatusResponse(
            user_id=user_id,
            status=conn.status.value if conn else "not_connected",
            whoop_user_id=conn.whoop_user_id if conn else None,
            scopes=list(conn.scopes) if conn else [],
            connected_at=conn.connected_at if conn else None,
            reauth_reason=conn.reauth_reason if conn else None,
            sync=sync,
        )

    async def disconnect(
        self, user_id: str, *, delete_data: bool, deadline: float | None = None
    ) -> DisconnectResponse:
        """Revoke at WHOOP (best effort, before `deadline`), then forget tokens (and data) in
        one transaction."""
        revoked = await self._revoke(user_id, deadline)
        async with self._sessions() as session:
            repo = ConnectionRepository(session)
            was_connected = await repo.delete_connection(user_id)
            counts = await repo.delete_user_data(user_id) if delete_data else {}
            await session.commit()
        log.info(
            "whoop.disconnect.done",
            user_id=user_id,
            revoked_at_whoop=revoked,
            data_deleted=delete_data,
        )
        return DisconnectResponse(
            user_id=user_id,
            status="not_connected",
            was_connected=was_connected,
            revoked_at_whoop=revoked,
            data_deleted=delete_data,
            records_deleted=counts,
        )

    async def _revoke(self, user_id: str, deadline: float | None) -> bool:
        try:
            token = await self._tokens.get_access_token(user_id, deadline=deadline)
            await self._whoop.revoke_access(token, deadline=deadline)
        except (WhoopNotConnected, WhoopNeedsReauth):
            return False
        except (WhoopError, WhoopUnavailable, BudgetExhausted) as exc:
            # Forgetting locally matters more than WHOOP's answer; the member can revoke in the
            # WHOOP app too. The answer says it did not happen.
            log.warning(
                "whoop.disconnect.revoke_failed",
                user_id=user_id,
                error=error_code(exc),
            )
            return False
        return True
