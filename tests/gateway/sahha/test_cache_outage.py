"""The gateway's Sahha cache while its Redis is down: in-process instead, never a failed request."""

import uuid
from contextlib import AsyncExitStack
from datetime import UTC, date, datetime

import pytest
from redis.asyncio import Redis
from structlog.testing import capture_logs

from gateway.sahha.cache import CachedDays, CacheKey, MemorySahhaCache, RedisSahhaCache
from gateway.sahha.days import SahhaDay
from tests.clock import MutableClock
from tests.gateway.harness import make_stack
from tests.servers import restartable_redis

pytestmark = pytest.mark.redis

DAY = date(2026, 11, 20)
KEY = CacheKey("user-1", DAY, DAY)
USER = "7f1c2e4a-9b8d-4c6e-a1f2-3d4e5f6a7b8c"


def entry(fetched_at: datetime) -> CachedDays:
    day = SahhaDay(DAY, scores=[{"id": "s1", "type": "sleep"}], biomarkers=[])
    return CachedDays({DAY: day}, fetched_at)


class Ticks:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def server():
    with restartable_redis() as s:
        yield s


async def test_the_redis_cache_keeps_entries_in_process_while_redis_is_down(server):
    clock, ticks = MutableClock(), Ticks()
    redis = Redis.from_url(server.url, socket_timeout=0.5, socket_connect_timeout=0.5)
    cache = RedisSahhaCache(
        redis,
        f"test:{uuid.uuid4().hex}:",
        fallback=MemorySahhaCache(clock=clock),
        retry_s=5.0,
        monotonic=ticks,
    )
    shared = entry(datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    await cache.put(KEY, shared)
    assert await cache.get(KEY) == shared

    server.stop()
    local = entry(clock())
    with capture_logs() as logs:
        assert await cache.get(KEY) is None, "Redis's entries are out of reach"
        await cache.put(KEY, local)
        assert await cache.get(KEY) == local, "kept in-process meanwhile"
    assert not cache.redis_available
    assert [e["event"] for e in logs] == ["sahha.cache.redis_unavailable"]

    server.start()
    assert await cache.get(KEY) == local, "Redis is not asked again before retry_s"
    ticks.now += 5.0
    with capture_logs() as logs:
        assert await cache.get(KEY) is None, "Redis again (restarted empty)"
        await cache.put(KEY, shared)
    assert cache.redis_available
    assert [e["event"] for e in logs] == ["sahha.cache.redis_restored"]
    assert await redis.get(cache.key_of(KEY)) is not None
    await redis.aclose()


async def test_a_hung_redis_costs_one_timeout_then_is_left_alone(server):
    ticks = Ticks()
    redis = Redis.from_url(server.url)  # no socket timeout: the cache bounds each call
    cache = RedisSahhaCache(
        redis, f"test:{uuid.uuid4().hex}:", op_timeout_s=0.2, monotonic=ticks
    )
    await cache.put(KEY, entry(datetime(2026, 11, 20, 9, 0, tzinfo=UTC)))
    server.pause()
    try:
        with capture_logs() as logs:
            assert await cache.get(KEY) is None
            for _ in range(20):
                assert await cache.get(KEY) is None
        assert [(e["event"], e["error_type"]) for e in logs] == [
            ("sahha.cache.redis_unavailable", "TimeoutError")
        ]
    finally:
        server.resume()
    await redis.aclose()


async def test_health_is_answered_from_the_in_process_cache_while_redis_is_down(
    tmp_path, server
):
    async with AsyncExitStack() as s:
        stack = await make_stack(
            s, f"sqlite+aiosqlite:///{tmp_path}/w.db", tmp_path, redis_url=server.url
        )
        server.stop()
        path = f"/api/v1/health/{USER}"
        with capture_logs() as logs:
            first = await stack.get(path, USER, params={"date": "2026-11-17"})
            asked = stack.sahha_faults.attempted
            # Sahha down: the next answer can only come from a cache.
            stack.sahha_faults.mode = "down"
            second = await stack.get(path, USER, params={"date": "2026-11-17"})

    for resp in (first, second):
        assert resp.status_code == 200, resp.text
        assert resp.json()["sources"]["sahha"]["status"] == "ok"
    assert second.json()["days"] == first.json()["days"]
    assert asked > 0
    assert stack.sahha_faults.attempted == asked, "Sahha was not asked again"
    events = [e["event"] for e in logs if e["event"].startswith("sahha.cache.")]
    assert events == ["sahha.cache.redis_unavailable"]
