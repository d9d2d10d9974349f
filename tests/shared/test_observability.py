import re

import httpx2
import pytest
from fastapi import FastAPI

from shared.app import build_service_app
from tests.conftest import running


def make_app() -> FastAPI:
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.readiness = {}
        yield

    app = build_service_app(title="t", version="0", lifespan=lifespan)

    @app.get("/items/{item_id}")
    async def item(item_id: str) -> dict[str, str]:
        return {"id": item_id}

    return app


@pytest.fixture
async def client():
    app = make_app()
    async with (
        running(app),
        httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app), base_url="http://t"
        ) as c,
    ):
        yield c


async def test_request_id_is_propagated_or_generated(client):
    given = await client.get("/items/1", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    fresh = await client.get("/items/1")
    assert re.fullmatch(r"[0-9a-f]{32}", fresh.headers["x-request-id"])
    hostile = await client.get("/items/1", headers={"X-Request-ID": "x" * 500})
    assert len(hostile.headers["x-request-id"]) == 32


async def test_metrics_count_by_route_template_not_raw_path(client):
    for item in ("user-a", "user-b", "user-c"):
        await client.get(f"/items/{item}")
    await client.get("/missing")
    text = (await client.get("/metrics")).text
    assert (
        'http_requests_total{method="GET",route="/items/{item_id}",status="200"} 3.0'
        in text
    )
    assert 'route="<unmatched>",status="404"' in text
    assert "user-a" not in text
    assert (
        'http_request_duration_seconds_bucket{le="0.005",method="GET",route="/items/{item_id}"}'
        in text
    )
