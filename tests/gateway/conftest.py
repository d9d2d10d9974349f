from contextlib import AsyncExitStack

import pytest

from tests.gateway.harness import make_stack


@pytest.fixture
async def stack(tmp_path, request):
    """The whole system over ASGI; gateway settings may come from indirect parametrization."""
    settings = getattr(request, "param", {})
    async with AsyncExitStack() as s:
        yield await make_stack(
            s, f"sqlite+aiosqlite:///{tmp_path}/w.db", tmp_path, **settings
        )
