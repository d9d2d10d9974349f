"""RecordRepository: WHOOP records and per-type sync state. Flushes, never commits.

Records are keyed on WHOOP's ids (a recovery on its `cycle_id`), and an upsert only replaces a row
with a strictly newer `updated_at`: replaying a page, a webhook and a sync in any order leaves one
row holding the latest score.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, Table, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from whoop_service.db import tables as t
from whoop_service.domain import SyncState

TABLES: dict[str, tuple[Table, str]] = {
    "cycle": (t.cycles, "id"),
    "recovery": (t.recoveries, "cycle_id"),
    "sleep": (t.sleeps, "id"),
    "workout": (t.workouts, "id"),
}


class RecordRepository:
    """Data access for WHOOP records and sync state, inside the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._dialect = session.get_bind().dialect.name

    def _upsert(self, table: Table, key: str, rows: Sequence[dict[str, Any]]) -> Any:
        """The one dialect-specific statement: insert, or update when strictly newer."""
        insert = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        stmt = insert(table).values(list(rows))
        return stmt.on_conflict_do_update(
            index_elements=[key],
            set_={
                c.name: stmt.excluded[c.name] for c in table.columns if c.name != key
            },
            where=table.c.updated_at < stmt.excluded.updated_at,
        )

    async def upsert(self, kind: str, rows: Sequence[dict[str, Any]]) -> int:
        """Store records; the number inserted or changed."""
        if not rows:
            return 0
        table, key = TABLES[kind]
        # One statement per page; duplicates inside one page would make it fail, so last wins.
        unique = list({row[key]: row for row in rows}.values())
        result = await self._session.execute(self._upsert(table, key, unique))
        return int(getattr(result, "rowcount", 0) or 0)

    async def delete_ids(self, kind: str, ids: Collection[Any]) -> int:
        table, key = TABLES[kind]
        if not ids:
            return 0
        result = await self._session.execute(
            delete(table).where(table.c[key].in_(list(ids)))
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def adopt_account(self, user_id: str, whoop_user_id: int) -> None:
        """Give `user_id` the stored records of `whoop_user_id`, and drop its other accounts'.

        Records are keyed on WHOOP's ids, so when a WHOOP account moves to another app user its
        rows must move too; a user who switched WHOOP accounts keeps none of the old one's.
        """
        for table, _ in TABLES.values():
            await self._session.execute(
                update(table)
                .where(
                    table.c.whoop_user_id == whoop_user_id, table.c.user_id != user_id
                )
                .values(user_id=user_id)
            )
            await self._session.execute(
                delete(table).where(
                    table.c.user_id == user_id, table.c.whoop_user_id != whoop_user_id
                )
            )

    async def reset_sync_state(self, user_id: str) -> None:
        """Forget the user's watermarks: the next sync is a first sync again."""
        await self._session.execute(
            delete(t.sync_state).where(t.sync_state.c.user_id == user_id)
        )

    async def delete_missing(
        self,
        kind: str,
        user_id: str,
        start: datetime,
        end: datetime,
        keep: Collection[Any],
        stored_before: datetime,
    ) -> int:
        """Delete the user's records WHOOP no longer returns for a fully fetched [start, end).

        Only rows stored before the sync began: a webhook may have stored a new one meanwhile.
        """
        table, key = TABLES[kind]
        stmt = delete(table).where(
            table.c.user_id == user_id,
            table.c.start >= start,
            table.c.start < end,
            table.c.synced_at < stored_before,
        )
        if keep:
            stmt = stmt.where(table.c[key].not_in(list(keep)))
        result = await self._session.execute(stmt)
        return int(getattr(result, "rowcount", 0) or 0)

    async def list_by_start(
        self, kind: str, user_id: str, start: datetime, end: datetime
    ) -> Sequence[RowMapping]:
        """Records (not recoveries) of the user starting in [start, end), oldest first."""
        table, _ = TABLES[kind]
        stmt = (
            select(table)
            .where(
                table.c.user_id == user_id, table.c.start >= start, table.c.start < end
            )
            .order_by(table.c.start)
        )
        return (await self._session.execute(stmt)).mappings().all()

    async def list_recoveries_for_cycles(
        self, user_id: str, cycle_ids: Collection[int]
    ) -> Sequence[RowMapping]:
        if not cycle_ids:
            return []
        stmt = select(t.recoveries).where(
            t.recoveries.c.user_id == user_id,
            t.recoveries.c.cycle_id.in_(list(cycle_ids)),
        )
        return (await self._session.execute(stmt)).mappings().all()

    async def oldest_pending_start(self, kind: str, user_id: str) -> datetime | None:
        """Start of the user's oldest record still waiting for its score (not for recoveries)."""
        table, _ = TABLES[kind]
        if kind == "recovery":
            return None
        stmt = select(func.min(table.c.start)).where(
            table.c.user_id == user_id, table.c.score_state == "PENDING_SCORE"
        )
        value: datetime | None = (
            await self._session.execute(stmt)
        ).scalar_one_or_none()
        return value

    async def count(self, kind: str, user_id: str) -> int:
        table, _ = TABLES[kind]
        stmt = select(func.count()).select_from(table).where(table.c.user_id == user_id)
        return int((await self._session.execute(stmt)).scalar_one())

    async def get_sync_state(self, user_id: str, data_type: str) -> SyncState | None:
        stmt = select(t.sync_state).where(
            t.sync_state.c.user_id == user_id, t.sync_state.c.data_type == data_type
        )
        row = (await self._session.execute(stmt)).mappings().first()
        return _sync_state(row) if row else None

    async def list_sync_states(self, user_id: str) -> dict[str, SyncState]:
        stmt = select(t.sync_state).where(t.sync_state.c.user_id == user_id)
        rows = (await self._session.execute(stmt)).mappings().all()
        return {r["data_type"]: _sync_state(r) for r in rows}

    async def save_sync_state(self, state: SyncState) -> None:
        """Insert or replace the (user, type) sync state."""
        values = {
            "user_id": state.user_id,
            "data_type": state.data_type,
            "watermark": state.watermark,
            "last_sync_at": state.last_sync_at,
            "last_success_at": state.last_success_at,
            "status": state.status,
            "records_synced": state.records_synced,
            "error": state.error[:255] if state.error else None,
        }
        insert = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        stmt = insert(t.sync_state).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["user_id", "data_type"],
            set_={
                k: stmt.excluded[k] for k in values if k not in ("user_id", "data_type")
            },
        )
        await self._session.execute(stmt)


def _sync_state(row: RowMapping) -> SyncState:
    return SyncState(
        user_id=row["user_id"],
        data_type=row["data_type"],
        watermark=row["watermark"],
        last_sync_at=row["last_sync_at"],
        last_success_at=row["last_success_at"],
        status=row["status"],
        records_synced=row["records_synced"],
        error=row["error"],
    )
