"""Alembic environment: runs migrations on the async engine of `DATABASE_URL`.

On PostgreSQL everything lives in schema `whoop` (not exposed by Supabase's Data API), the version
table included, and an advisory lock makes concurrent `migrate` runs (several replicas starting at
once) wait for each other instead of racing.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from whoop_service.db.session import make_engine
from whoop_service.db.tables import SCHEMA, metadata

MIGRATION_LOCK_ID = 0x77686F6F70  # "whoop"


def _run(connection: Connection) -> None:
    is_pg = connection.dialect.name == "postgresql"
    if is_pg:
        connection.execute(
            text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID}
        )
        connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
        connection.commit()
    try:
        if is_pg:
            connection = connection.execution_options(
                schema_translate_map={None: SCHEMA}
            )
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table_schema=SCHEMA if is_pg else None,
            render_as_batch=not is_pg,
            transaction_per_migration=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    finally:
        if is_pg:
            connection.execute(
                text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID}
            )
            connection.commit()


async def _main() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url is set by whoop_service.db.migrate"
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_run)
    finally:
        await engine.dispose()


asyncio.run(_main())
