"""The Sahha caches: in-process LRU and Redis, both JSON round trips."""

import uuid
from datetime import UTC, date, datetime

import pytest

from gateway.sahha.cache import CachedDays, CacheKey, MemorySahhaCache, RedisSahhaCache
from gateway.sahha.days import SahhaDay
from tests.clock import MutableClock

DAY = date(2026, 11, 20)
KEY = CacheKey("user-1", DAY, DAY)


def entry(fetched_at: datetime) -> CachedDays:
    day = SahhaDay(
        DAY,
        scores=[{"id": "s1", "type": "sleep", "score": None, "state": None}],
        biomarkers=[{"id": "b1", "type": "steps", "value": "8123"}],
    )
    return CachedDays({DAY: day}, fetched_at)


async def test_memory_cache_round_trips_and_hands_out_copies():
    clock = MutableClock()
    cache = MemorySahhaCache(clock=clock)
    value = entry(clock())
    await cache.put(KEY, value)

    got = await cache.get(KEY)
    assert got == value
    got.days[DAY].scores.clear()
    assert await cache.get(KEY) == value
    assert await cache.get(CacheKey("user-1", DAY, date(2026, 11, 21))) is None


async def test_memory_cache_forgets_entries_past_the_stale_ttl():
    clock = MutableClock()
    cache = MemorySahhaCache(ttl_s=60, stale_ttl_s=600, clock=clock)
    await cache.put(KEY, entry(clock()))
    clock.advance(seconds=599)
    assert await cache.get(KEY) is not None
    clock.advance(seconds=1)
    assert await cache.get(KEY) is None
    assert len(cache) == 0


async def test_memory_cache_evicts_the_least_recently_used():
    clock = MutableClock()
    cache = MemorySahhaCache(max_entries=2, clock=clock)
    keys = [CacheKey(f"user-{n}", DAY, DAY) for n in range(3)]
    await cache.put(keys[0], entry(clock()))
    await cache.put(keys[1], entry(clock()))
    assert await cache.get(keys[0]) is not None  # now the most recently used
    await cache.put(keys[2], entry(clock()))
    assert await cache.get(keys[1]) is None
    assert await cache.get(keys[0]) is not None
    assert await cache.get(keys[2]) is not None


def test_ttls_must_be_ordered():
    with pytest.raises(ValueError, match="ttl_s"):
        MemorySahhaCache(ttl_s=120, stale_ttl_s=60)


@pytest.mark.redis
async def test_redis_cache_round_trips_as_json_with_the_stale_ttl(redis):
    prefix = f"test:{uuid.uuid4().hex}:"
    cache = RedisSahhaCache(redis, prefix, ttl_s=60, stale_ttl_s=900)
    value = entry(datetime(2026, 11, 20, 9, 12, 3, tzinfo=UTC))
    await cache.put(KEY, value)

    assert await cache.get(KEY) == value
    assert await cache.get(CacheKey("user-2", DAY, DAY)) is None
    assert cache.key_of(KEY) == f"{prefix}v1:user-1:2026-11-20:2026-11-20"
    stored = await redis.get(cache.key_of(KEY))
    assert b'"date":"2026-11-20"' in stored
    assert b'"fetched_at":"2026-11-20T09:12:03+00:00"' in stored
    assert 890_000 < await redis.pttl(cache.key_of(KEY)) <= 900_000
