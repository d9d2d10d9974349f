"""ConnectionRepository: connections (tokens) and OAuth states. Flushes, never commits."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from whoop_service.db import tables as t
from whoop_service.db.session import select_for_update
from whoop_service.domain import (
    Connection,
    ConnectionStatus,
    OAuthState,
    PendingGrant,
)


def _connection(row: RowMapping) -> Connection:
    return Connection(
        user_id=row["user_id"],
        whoop_user_id=row["whoop_user_id"],
        status=ConnectionStatus(row["status"]),
        scopes=tuple(row["scopes"].split()),
        access_token_enc=row["access_token_enc"],
        refresh_token_enc=row["refresh_token_enc"],
        access_expires_at=row["access_expires_at"],
        token_version=row["token_version"],
        reauth_reason=row["reauth_reason"],
        connected_at=row["connected_at"],
        refreshed_at=row["refreshed_at"],
        updated_at=row["updated_at"],
    )


def _pending(row: RowMapping) -> PendingGrant:
    return PendingGrant(
        completion_hash=row["completion_hash"],
        user_id=row["user_id"],
        whoop_user_id=row["whoop_user_id"],
        scopes=tuple(row["scopes"].split()),
        access_token_enc=row["access_token_enc"],
        refresh_token_enc=row["refresh_token_enc"],
        access_expires_at=row["access_expires_at"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
    )


class ConnectionRepository:
    """Data access for the connection lifecycle, inside the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get_connection(self, user_id: str) -> Connection | None:
        row = (
            (
                await self._session.execute(
                    select(t.connections).where(t.connections.c.user_id == user_id)
                )
            )
            .mappings()
            .first()
        )
        return _connection(row) if row else None

    async def get_connection_for_update(self, user_id: str) -> Connection | None:
        """Read the row holding a lock that other transactions (and processes) wait for: a second
        refresher waits, then reads what the first one stored."""
        mine = t.connections.c.user_id == user_id
        result = await select_for_update(
            self._session, select(t.connections).where(mine), t.connections, mine
        )
        row = result.mappings().first()
        return _connection(row) if row else None

    async def list_connected(self) -> list[tuple[str, int]]:
        """(user id, WHOOP user id) of every connection that can sync."""
        stmt = (
            select(t.connections.c.user_id, t.connections.c.whoop_user_id)
            .where(t.connections.c.status == ConnectionStatus.CONNECTED.value)
            .order_by(t.connections.c.user_id)
        )
        return [(u, w) for u, w in (await self._session.execute(stmt)).all()]

    async def list_connected_scopes(self) -> dict[str, tuple[str, ...]]:
        """The granted scopes of every connection that can sync, by user id."""
        stmt = select(t.connections.c.user_id, t.connections.c.scopes).where(
            t.connections.c.status == ConnectionStatus.CONNECTED.value
        )
        return {
            u: tuple(s.split()) for u, s in (await self._session.execute(stmt)).all()
        }

    async def get_connection_by_whoop_user(
        self, whoop_user_id: int
    ) -> Connection | None:
        stmt = select(t.connections).where(
            t.connections.c.whoop_user_id == whoop_user_id
        )
        row = (await self._session.execute(stmt)).mappings().first()
        return _connection(row) if row else None

    async def save_connection(self, values: Mapping[str, Any]) -> None:
        """Insert or replace a user's connection (a new grant replaces the old one)."""
        await self._session.execute(
            delete(t.connections).where(t.connections.c.user_id == values["user_id"])
        )
        await self._session.execute(insert(t.connections).values(**values))

    async def update_tokens(
        self,
        user_id: str,
        *,
        access_token_enc: str,
        refresh_token_enc: str | None,
        access_expires_at: datetime,
        scopes: tuple[str, ...],
        now: datetime,
    ) -> None:
        await self._session.execute(
            update(t.connections)
            .where(t.connections.c.user_id == user_id)
            .values(
                access_token_enc=access_token_enc,
                refresh_token_enc=refresh_token_enc,
                access_expires_at=access_expires_at,
                scopes=" ".join(scopes),
                token_version=t.connections.c.token_version + 1,
                status=ConnectionStatus.CONNECTED.value,
                reauth_reason=None,
                refreshed_at=now,
                updated_at=now,
            )
        )

    async def mark_needs_reauth(self, user_id: str, reason: str, now: datetime) -> None:
        await self._session.execute(
            update(t.connections)
            .where(t.connections.c.user_id == user_id)
            .values(
                status=ConnectionStatus.NEEDS_REAUTH.value,
                reauth_reason=reason,
                updated_at=now,
            )
        )

    async def delete_connection(self, user_id: str) -> bool:
        result = await self._session.execute(
            delete(t.connections).where(t.connections.c.user_id == user_id)
        )
        await self._session.execute(
            delete(t.oauth_states).where(t.oauth_states.c.user_id == user_id)
        )
        return bool(getattr(result, "rowcount", 0))

    async def save_state(
        self,
        state_hash: str,
        user_id: str,
        code_verifier_enc: str,
        now: datetime,
        expires_at: datetime,
    ) -> None:
        await self._session.execute(
            insert(t.oauth_states).values(
                state_hash=state_hash,
                user_id=user_id,
                code_verifier_enc=code_verifier_enc,
                created_at=now,
                expires_at=expires_at,
            )
        )

    async def get_state(self, state_hash: str) -> OAuthState | None:
        stmt = select(t.oauth_states).where(t.oauth_states.c.state_hash == state_hash)
        row = (await self._session.execute(stmt)).mappings().first()
        if row is None:
            return None
        return OAuthState(
            user_id=row["user_id"],
            code_verifier_enc=row["code_verifier_enc"],
            expires_at=row["expires_at"],
            used_at=row["used_at"],
        )

    async def consume_state(self, state_hash: str, now: datetime) -> bool:
        """Mark a live state used; False when it was used, expired or unknown (atomic)."""
        result = await self._session.execute(
            update(t.oauth_states)
            .where(
                t.oauth_states.c.state_hash == state_hash,
                t.oauth_states.c.used_at.is_(None),
                t.oauth_states.c.expires_at > now,
            )
            .values(used_at=now)
        )
        return getattr(result, "rowcount", 0) == 1

    async def delete_expired_states(self, now: datetime) -> None:
        await self._session.execute(
            delete(t.oauth_states).where(t.oauth_states.c.expires_at <= now)
        )

    async def save_pending_grant(self, values: Mapping[str, Any]) -> None:
        await self._session.execute(insert(t.pending_grants).values(**values))

    async def get_pending_grant(self, completion_hash: str) -> PendingGrant | None:
        stmt = select(t.pending_grants).where(
            t.pending_grants.c.completion_hash == completion_hash
        )
        row = (await self._session.execute(stmt)).mappings().first()
        return _pending(row) if row else None

    async def take_pending_grant(
        self, completion_hash: str, user_id: str, now: datetime
    ) -> bool:
        """Delete a live pending grant of `user_id`; False when another request took it first,
        or it expired (atomic: a completion works once)."""
        pending = t.pending_grants.c
        result = await self._session.execute(
            delete(t.pending_grants).where(
                pending.completion_hash == completion_hash,
                pending.user_id == user_id,
                pending.expires_at > now,
            )
        )
        return getattr(result, "rowcount", 0) == 1

    async def burn_pending_grant(self, completion_hash: str, now: datetime) -> bool:
        """Make a live pending grant unusable (expired now), keeping it until it is revoked at
        WHOOP; False when it was no longer live (atomic)."""
        pending = t.pending_grants.c
        result = await self._session.execute(
            update(t.pending_grants)
            .where(pending.completion_hash == completion_hash, pending.expires_at > now)
            .values(expires_at=now)
        )
        return getattr(result, "rowcount", 0) == 1

    async def list_expired_pending_grants(
        self, now: datetime, limit: int = 100
    ) -> list[PendingGrant]:
        stmt = (
            select(t.pending_grants)
            .where(t.pending_grants.c.expires_at <= now)
            .order_by(t.pending_grants.c.expires_at)
            .limit(limit)
        )
        return [_pending(r) for r in (await self._session.execute(stmt)).mappings()]

    async def delete_pending_grants_of(self, user_id: str, whoop_user_id: int) -> int:
        """Forget the user's pending grants of one WHOOP member (a newer one supersedes them)."""
        pending = t.pending_grants.c
        result = await self._session.execute(
            delete(t.pending_grants).where(
                pending.user_id == user_id, pending.whoop_user_id == whoop_user_id
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def has_newer_pending_grant(
        self, whoop_user_id: int, created_at: datetime
    ) -> bool:
        """Whether a later flow of the same WHOOP member is pending (whoever started it)."""
        pending = t.pending_grants.c
        stmt = (
            select(pending.completion_hash)
            .where(
                pending.whoop_user_id == whoop_user_id, pending.created_at > created_at
            )
            .limit(1)
        )
        return (await self._session.execute(stmt)).first() is not None

    async def delete_pending_grant(self, completion_hash: str) -> bool:
        result = await self._session.execute(
            delete(t.pending_grants).where(
                t.pending_grants.c.completion_hash == completion_hash
            )
        )
        return getattr(result, "rowcount", 0) == 1

    async def delete_user_data(self, user_id: str) -> dict[str, int]:
        """Delete every stored WHOOP record and sync state of the user; counts per type."""
        counts: dict[str, int] = {}
        for name, table in (
            ("cycle", t.cycles),
            ("recovery", t.recoveries),
            ("sleep", t.sleeps),
            ("workout", t.workouts),
        ):
            result = await self._session.execute(
                delete(table).where(table.c.user_id == user_id)
            )
            counts[name] = int(getattr(result, "rowcount", 0) or 0)
        await self._session.execute(
            delete(t.sync_state).where(t.sync_state.c.user_id == user_id)
        )
        await self._session.execute(delete(t.jobs).where(t.jobs.c.user_id == user_id))
        return counts
