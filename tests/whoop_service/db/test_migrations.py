import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from whoop_service.db.migrate import upgrade_to_head_async
from whoop_service.db.session import make_engine
from whoop_service.db.tables import metadata


async def test_migrations_build_exactly_the_declared_tables_on_sqlite(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path}/m.db"
    await upgrade_to_head_async(url)
    await upgrade_to_head_async(url)  # idempotent
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync), metadata
                )
            )
    finally:
        await engine.dispose()
    assert diff == []


@pytest.mark.postgres
async def test_postgres_tables_live_in_schema_whoop_with_row_level_security(
    postgres_url,
):
    await upgrade_to_head_async(postgres_url)
    engine = make_engine(postgres_url)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT c.relname, c.relrowsecurity FROM pg_class c "
                        "JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE n.nspname = 'whoop' AND c.relkind = 'r'"
                    )
                )
            ).all()
            public = (
                await conn.execute(
                    text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    tables = {name: rls for name, rls in rows}
    assert set(metadata.tables) | {"alembic_version"} == set(tables)
    assert all(rls for name, rls in tables.items() if name != "alembic_version")
    assert public == 0
