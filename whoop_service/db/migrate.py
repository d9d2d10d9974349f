"""Apply pending Alembic migrations to a database (the `migrate` command and auto-migrate)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    """An Alembic configuration for `database_url`, without an alembic.ini."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation would read `%` in a password as a reference.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_to_head(database_url: str) -> None:
    """Apply every pending migration (blocking; the env runs its own event loop)."""
    command.upgrade(alembic_config(database_url), "head")


async def upgrade_to_head_async(database_url: str) -> None:
    """`upgrade_to_head` from async code: in a thread, since Alembic's env starts its own loop."""
    await asyncio.to_thread(upgrade_to_head, database_url)
