"""`python -m whoop_service migrate` as an operator runs it: a process configured by env."""

import asyncio
import os
import subprocess
import sys

import asyncpg
import pytest
from sqlalchemy.engine import make_url


def run_migrate(database_url: str, tmp_path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_FORMAT": "json"}
    return subprocess.run(
        [sys.executable, "-m", "whoop_service", "migrate"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_migrate_on_sqlite_exits_zero(tmp_path):
    result = run_migrate(f"sqlite+aiosqlite:///{tmp_path}/var/whoop.db", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "db.migrate.done" in result.stderr
    assert (tmp_path / "var" / "whoop.db").exists()


def test_migrate_failure_exits_nonzero_without_leaking_the_password(tmp_path):
    result = run_migrate(
        "postgresql+asyncpg://svc:hunter2-secret@127.0.0.1:1/none", tmp_path
    )
    assert result.returncode == 1
    assert "db.migrate.failed" in result.stderr
    assert "hunter2-secret" not in result.stderr + result.stdout


@pytest.mark.postgres
def test_migrate_on_postgres_creates_the_whoop_schema_and_is_repeatable(
    tmp_path, postgres_url
):
    for _ in range(2):
        result = run_migrate(postgres_url, tmp_path)
        assert result.returncode == 0, result.stderr

    async def schemas() -> set[str]:
        dsn = (
            make_url(postgres_url).set(drivername="postgresql").render_as_string(False)
        )
        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch(
                "SELECT schema_name FROM information_schema.schemata"
            )
        finally:
            await conn.close()
        return {r["schema_name"] for r in rows}

    assert "whoop" in asyncio.run(schemas())
