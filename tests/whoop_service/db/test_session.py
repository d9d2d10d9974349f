import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from whoop_service.db.session import is_transaction_pooler, make_engine


@pytest.mark.parametrize(
    ("url", "pooled"),
    [
        ("postgresql+asyncpg://u:p@aws-0-eu.pooler.supabase.com:6543/postgres", True),
        ("postgresql+asyncpg://u:p@aws-0-eu.pooler.supabase.com:5432/postgres", False),
        ("postgresql+asyncpg://u:p@db.local/postgres?pgbouncer=true", True),
        ("postgresql+asyncpg://u:p@db.local/postgres", False),
    ],
)
def test_recognises_transaction_poolers(url, pooled):
    assert is_transaction_pooler(make_url(url)) is pooled


async def statement_cache_size(url: str) -> int:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            # Tables are mapped into schema whoop on PostgreSQL.
            assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
            raw = await conn.get_raw_connection()
            return raw.driver_connection._stmt_cache.get_max_size()
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_pooler_urls_turn_asyncpg_statement_caches_off(postgres_url):
    pooled = postgres_url + ("&" if "?" in postgres_url else "?") + "pgbouncer=true"
    assert await statement_cache_size(pooled) == 0
    assert await statement_cache_size(postgres_url) > 0


async def test_sqlite_engine_uses_wal_and_foreign_keys(tmp_path):
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/nested/dir/x.db")
    try:
        async with engine.connect() as conn:
            mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar_one()
            fks = (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one()
    finally:
        await engine.dispose()
    assert mode == "wal"
    assert fks == 1
