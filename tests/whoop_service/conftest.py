from contextlib import AsyncExitStack

import pytest

from tests.whoop_service.harness import make_harness


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """Each store test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/whoop.db"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
async def harness(database_url, tmp_path):
    async with AsyncExitStack() as stack:
        yield await make_harness(stack, database_url, tmp_path)
