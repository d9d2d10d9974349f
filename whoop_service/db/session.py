"""The database engine: SQLite (embedded default, WAL) or PostgreSQL through asyncpg."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Result, Select, Table, event, text, update
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from whoop_service.db.tables import SCHEMA

# Supabase's transaction pooler (Supavisor/PgBouncer in transaction mode) listens on this port;
# prepared statements do not survive across its transactions.
TRANSACTION_POOLER_PORT = 6543


def is_transaction_pooler(url: URL) -> bool:
    """Whether `url` goes through a transaction-mode pooler (no asyncpg statement caches)."""
    return url.port == TRANSACTION_POOLER_PORT or url.query.get("pgbouncer") == "true"


def make_engine(database_url: str, *, echo: bool = False) -> AsyncEngine:
    """An async engine for `database_url`, with the per-backend settings this service relies on."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, echo=echo)
    connect_args: dict[str, Any] = {}
    if is_transaction_pooler(url):
        url = url.difference_update_query(["pgbouncer"])
        connect_args = {"statement_cache_size": 0, "prepared_statement_cache_size": 0}
    return create_async_engine(
        url,
        echo=echo,
        # Tables are declared without a schema; on PostgreSQL they live in `whoop`.
        execution_options={"schema_translate_map": {None: SCHEMA}},
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=10,
        connect_args=connect_args,
    )


def _sqlite_engine(url: URL, *, echo: bool) -> AsyncEngine:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, _: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine


def make_session_factory(engine: AsyncEngine) -> async_sessionmaker[Any]:
    """Sessions that keep loaded values after commit (the unit of work commits explicitly)."""
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping(engine: AsyncEngine) -> None:
    """Round-trip to the database; raises when it cannot answer."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def select_for_update(
    session: AsyncSession,
    stmt: Select[Any],
    table: Table,
    where: ColumnElement[bool],
    *,
    skip_locked: bool = False,
) -> Result[Any]:
    """Run `stmt` (which reads rows of `table` matching `where`) holding a lock that other
    writers wait for until this transaction ends.

    PostgreSQL: `FOR UPDATE` on the rows read (`SKIP LOCKED`: rows another transaction holds are
    passed over). SQLite has no row locks: a no-op write as the transaction's first statement
    takes the database write lock, so a second writer waits and then reads what the first one
    stored (there is nothing to skip).
    """
    if session.get_bind().dialect.name == "sqlite":
        key = next(iter(table.primary_key.columns))
        await session.execute(update(table).where(where).values({key.name: key}))
    else:
        stmt = stmt.with_for_update(skip_locked=skip_locked)
    result: Result[Any] = await session.execute(stmt)
    return result
