"""The WHOOP service while its Redis is down: readiness says so (and stays 200), syncs go on."""

import asyncio
import time
import uuid
from contextlib import AsyncExitStack

import httpx2
import pytest
from redis.asyncio import Redis

from tests.conftest import running
from tests.servers import restartable_redis
from tests.whoop_service.harness import make_harness
from whoop_service.main import create_app
from whoop_service.settings import WhoopSettings
from whoop_service.whoop.failover import FailoverBudget
from whoop_service.whoop.ratelimit import BudgetLimits
from whoop_service.whoop.redis_budget import RedisBudget

pytestmark = pytest.mark.redis

HEALTHY = {"database": "ok", "redis": "ok", "rate_budget": "ok"}
OUTAGE = {"database": "ok", "redis": "unavailable", "rate_budget": "local_fallback"}


@pytest.fixture
def server():
    with restartable_redis() as s:
        yield s


def settings_for(tmp_path, **overrides) -> WhoopSettings:
    return WhoopSettings(
        _env_file=None,
        var_dir=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/whoop.db",
        worker_enabled=False,
        scheduler_enabled=False,
        **overrides,
    )


async def ready(app) -> httpx2.Response:
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url="http://whoop-service"
    ) as client:
        return await client.get("/health/ready")


async def test_readiness_reports_the_redis_outage_and_stays_200(tmp_path, server):
    app = create_app(settings_for(tmp_path, redis_url=server.url))
    async with running(app):
        before = await ready(app)
        assert (before.status_code, before.json()) == (
            200,
            {"status": "ready", "checks": HEALTHY},
        )
        server.stop()
        during = await ready(app)
    assert (during.status_code, during.json()) == (
        200,
        {"status": "degraded", "checks": OUTAGE},
    )


async def test_readiness_is_ok_again_once_the_budget_is_shared_again(tmp_path, server):
    redis = Redis.from_url(server.url, socket_timeout=0.5, socket_connect_timeout=0.5)
    limits = BudgetLimits.from_whoop(100, 10_000, 0.9)
    shared = RedisBudget(redis, limits, prefix=f"test:{uuid.uuid4().hex}")
    async with FailoverBudget(shared, retry_s=0.05) as budget:
        app = create_app(settings_for(tmp_path), budget=budget)
        async with running(app):
            server.stop()
            assert (await ready(app)).json()["checks"] == OUTAGE
            server.start()
            deadline = time.monotonic() + 10
            while (await ready(app)).json()["checks"] != HEALTHY:
                assert time.monotonic() < deadline, "still not shared again"
                await asyncio.sleep(0.02)
            after = await ready(app)
    await redis.aclose()
    assert (after.status_code, after.json()) == (
        200,
        {"status": "ready", "checks": HEALTHY},
    )


async def test_a_sync_completes_while_redis_is_down(tmp_path, server):
    async with AsyncExitStack() as stack:
        harness = await make_harness(
            stack,
            f"sqlite+aiosqlite:///{tmp_path}/w.db",
            tmp_path,
            service_overrides={"redis_url": server.url},
        )
        server.stop()
        user = harness.whoop.add_user(tz_offset="-04:00", history_days=10)
        connected = await harness.connect("user-1", sandbox_user_id=str(user.user_id))
        assert connected.status_code == 200, connected.text
        await (
            harness.app.state.worker.wait_idle()
        )  # the first sync, queued by connecting
        harness.clock.advance(minutes=5)
        pulled = await harness.client.post("/internal/sync/user-1")
        status = await harness.client.get("/internal/sync/status/user-1")
        readiness = await ready(harness.app)

    assert pulled.status_code == 200, pulled.text
    assert pulled.json()["status"] == "success"
    assert pulled.json()["api_calls"] > 0
    synced = status.json()["sync"]
    assert {kind: s["status"] for kind, s in synced.items()} == dict.fromkeys(
        ("cycle", "recovery", "sleep", "workout"), "success"
    )
    assert sum(s["records_synced"] for s in synced.values()) > 0
    assert harness.whoop.rate_limited_count == 0
    assert readiness.json()["checks"] == OUTAGE
