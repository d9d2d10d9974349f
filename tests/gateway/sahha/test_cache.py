"""The Sahha caches: in-process LRU and Redis, both JSON round trips."""

import uuid
from datetime import UTC, date, datetime

import pytest

from gateway.sahha.cache import (
    ENTRY_OVERHEAD_BYTES,
    CachedDays,
    CacheKey,
    MemorySahhaCache,
    RedisSahhaCache,
    dump_cached,
)
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


def sized(fetched_at: datetime, biomarkers: int) -> CachedDays:
    """An answer whose JSON grows by about 60 bytes per biomarker."""
    day = SahhaDay(
        DAY,
        scores=[],
        biomarkers=[
            {"id": f"b{n:08d}", "type": "steps", "value": "8123"}
            for n in range(biomarkers)
        ],
    )
    return CachedDays({DAY: day}, fetched_at)


def cost(key: CacheKey, value: CachedDays) -> int:
    return len(dump_cached(value)) + len(key.external_id) + ENTRY_OVERHEAD_BYTES


async def test_memory_cache_evicts_the_least_recently_used_past_its_byte_bound():
    clock = MutableClock()
    keys = [CacheKey(f"user-{n:02d}", DAY, DAY) for n in range(21)]
    one = cost(keys[0], entry(clock()))
    cache = MemorySahhaCache(max_bytes=20 * one + one // 2, clock=clock)
    for key in keys[:20]:
        await cache.put(key, entry(clock()))
    assert cache.size_bytes == 20 * one
    assert await cache.get(keys[0]) is not None  # now the most recently used
    await cache.put(keys[20], entry(clock()))
    assert await cache.get(keys[1]) is None
    assert await cache.get(keys[0]) is not None
    assert await cache.get(keys[20]) is not None
    assert len(cache) == 20
    assert cache.size_bytes == 20 * one


async def test_one_users_huge_answers_never_push_the_cache_past_its_bound():
    """Issue 11: one user could push GiBs into the cache; now at most `max_bytes`, evicted in
    LRU order, and an answer over one entry's share is not kept."""
    clock = MutableClock()
    max_bytes = 1024 * 1024
    cache = MemorySahhaCache(max_bytes=max_bytes, clock=clock)  # an entry: <= 64 KiB
    others = [CacheKey(f"other-{n}", DAY, DAY) for n in range(4)]
    for key in others:
        await cache.put(key, entry(clock()))
    big = sized(clock(), 900)  # ~55 KiB: under one entry's share
    huge = sized(clock(), 5000)  # ~300 KiB: over it
    ranges = [CacheKey("greedy", DAY, date(2026, 12, n)) for n in range(1, 31)]
    for key in ranges:
        await cache.put(key, big)
        assert cache.size_bytes <= max_bytes
        await cache.put(CacheKey("greedy", date(2026, 1, 1), key.end_date), huge)
        assert cache.size_bytes <= max_bytes
    assert all(
        [await cache.get(key) is None for key in others]
    )  # least recent, out first
    kept = [key for key in ranges if key in cache._entries]
    assert kept == ranges[-len(kept) :]  # the most recent survive, in order
    assert len(kept) == max_bytes // cost(ranges[0], big)
    assert await cache.get(CacheKey("greedy", date(2026, 1, 1), DAY)) is None


async def test_an_answer_over_an_entrys_share_replaces_nothing():
    """A newer answer too large to keep drops the older one, which would be served as fresh."""
    clock = MutableClock()
    cache = MemorySahhaCache(max_bytes=16 * 4096, max_entry_bytes=4096, clock=clock)
    await cache.put(KEY, entry(clock()))
    assert len(cache) == 1
    await cache.put(KEY, sized(clock(), 200))  # ~12 KiB
    assert await cache.get(KEY) is None
    assert len(cache) == 0
    assert cache.size_bytes == 0


def test_an_entrys_share_is_at_most_a_sixteenth_of_the_bound():
    cache = MemorySahhaCache(max_bytes=16_000, max_entry_bytes=1024 * 1024)
    assert cache._max_entry_bytes == 1000
    assert (
        MemorySahhaCache(max_bytes=16_000, max_entry_bytes=500)._max_entry_bytes == 500
    )


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


@pytest.mark.redis
async def test_redis_cache_writes_no_value_over_the_entry_cap_and_every_key_expires(
    redis,
):
    prefix = f"test:{uuid.uuid4().hex}:"
    cache = RedisSahhaCache(
        redis, prefix, ttl_s=60, stale_ttl_s=900, max_entry_bytes=4096
    )
    small = entry(datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    await cache.put(KEY, small)
    assert await cache.get(KEY) == small
    await cache.put(KEY, sized(datetime(2026, 11, 20, 9, 5, tzinfo=UTC), 200))
    assert await redis.exists(cache.key_of(KEY)) == 0  # the older value is gone too
    assert await cache.get(KEY) is None
    for n in range(5):
        await cache.put(CacheKey(f"user-{n}", DAY, DAY), small)
    keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
    assert len(keys) == 5
    assert all([0 < await redis.pttl(key) <= 900_000 for key in keys])
