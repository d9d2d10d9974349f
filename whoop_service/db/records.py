"""RecordRepository: WHOOP records and per-type sync state. Flushes, never commits.

Records are keyed on WHOOP's ids (a recovery on its `cycle_id`), and an upsert only replaces a row
with a strictly newer `updated_at`: replaying a page, a webhook and a sync in any order leaves one
row holding the latest score.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    RowMapping,
    Select,
    Table,
    and_,
    bindparam,
    delete,
    func,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from whoop_service.db import tables as t
from whoop_service.domain import ConnectionStatus, SyncState

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
        """Records (not recoveries) of the user starting in [start, end), oldest first; no `raw`."""
        params = {"user_id": user_id, "start": start, "end": end}
        rows: Sequence[RowMapping] = (
            (await self._session.execute(_BY_START[kind], params)).mappings().all()
        )
        return rows

    async def list_cycles_with_recoveries(
        self, user_id: str, start: datetime, end: datetime
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The user's cycles starting in [start, end), oldest first, and their recoveries.

        One outer join: a second query would cost every read another round trip.
        """
        params = {"user_id": user_id, "start": start, "end": end}
        rows = (await self._session.execute(_CYCLES_WITH_RECOVERIES, params)).all()
        split = len(_CYCLE_COLUMNS)
        cycles = [dict(zip(_CYCLE_COLUMNS, row[:split], strict=True)) for row in rows]
        recoveries = [
            dict(zip(_RECOVERY_COLUMNS, row[split:], strict=True))
            for row in rows
            if row[split] is not None  # the recovery's cycle_id: no recovery yet
        ]
        return cycles, recoveries

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

    async def starts_of(
        self, kind: str, user_id: str, ids: Collection[Any]
    ) -> dict[Any, datetime]:
        """When each of the user's stored records of `kind` among `ids` starts."""
        table, key = TABLES[kind]
        if not ids or kind == "recovery":
            return {}
        stmt = select(table.c[key], table.c.start).where(
            table.c.user_id == user_id, table.c[key].in_(list(ids))
        )
        return {k: start for k, start in (await self._session.execute(stmt)).all()}

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

    async def last_successes(self) -> dict[str, dict[str, datetime | None]]:
        """Per user, when each data type last synced successfully (the scheduler's view)."""
        stmt = select(
            t.sync_state.c.user_id,
            t.sync_state.c.data_type,
            t.sync_state.c.last_success_at,
        )
        out: dict[str, dict[str, datetime | None]] = {}
        for user_id, data_type, at in (await self._session.execute(stmt)).all():
            out.setdefault(user_id, {})[data_type] = at
        return out

    async def get_status_and_sync_states(
        self, user_id: str
    ) -> tuple[ConnectionStatus | None, dict[str, SyncState]]:
        """The user's connection status (None: no connection) and sync state per type."""
        status, _, states = await self.get_grant_and_sync_states(user_id)
        return status, states

    async def get_grant_and_sync_states(
        self, user_id: str
    ) -> tuple[ConnectionStatus | None, tuple[str, ...], dict[str, SyncState]]:
        """The user's connection status (None: no connection), granted scopes and sync state
        per type.

        One query, as every read starts with all three.
        """
        rows = (
            (await self._session.execute(_STATUS_AND_STATES, {"user_id": user_id}))
            .mappings()
            .all()
        )
        status = rows[0]["connection_status"]  # the outer join always yields a row
        scopes = tuple((rows[0]["connection_scopes"] or "").split())
        states = {r["data_type"]: _sync_state(r) for r in rows if r["data_type"]}
        return (ConnectionStatus(status) if status else None), scopes, states

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
            "failures": state.failures,
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


def _served(table: Table) -> list[Column[Any]]:
    """What a read serves: every column but `raw`, the stored payload, the widest by far."""
    return [c for c in table.columns if c.name != "raw"]


# The read path's statements, built once with bound parameters: building and coercing a
# statement per request cost more CPU than running it.
def _by_start(table: Table) -> Select[Any]:
    return (
        select(*_served(table))
        .where(
            table.c.user_id == bindparam("user_id"),
            table.c.start >= bindparam("start"),
            table.c.start < bindparam("end"),
        )
        .order_by(table.c.start)
    )


_BY_START = {
    kind: _by_start(table) for kind, (table, _) in TABLES.items() if kind != "recovery"
}
_CYCLE_COLUMNS = [c.name for c in _served(t.cycles)]
_RECOVERY_COLUMNS = [c.name for c in _served(t.recoveries)]
_CYCLES_WITH_RECOVERIES = (
    _by_start(t.cycles)
    .add_columns(*_served(t.recoveries))
    .outerjoin(
        t.recoveries,
        and_(
            t.recoveries.c.cycle_id == t.cycles.c.id,
            t.recoveries.c.user_id == t.cycles.c.user_id,
        ),
    )
)
# One row per sync state, or one row of NULLs beside the status (and scopes) when the user has
# none.
_STATUS_AND_STATES = select(
    select(t.connections.c.status)
    .where(t.connections.c.user_id == bindparam("user_id"))
    .scalar_subquery()
    .label("connection_status"),
    select(t.connections.c.scopes)
    .where(t.connections.c.user_id == bindparam("user_id"))
    .scalar_subquery()
    .label("connection_scopes"),
    *t.sync_state.c,
).select_from(
    select(literal_column("1").label("one"))
    .subquery("one")
    .outerjoin(t.sync_state, t.sync_state.c.user_id == bindparam("user_id"))
)


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
        failures=row["failures"],
    )
