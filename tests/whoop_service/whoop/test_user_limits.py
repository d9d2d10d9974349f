"""Per-user cooldown and daily quota (CONTRACT.md §9): in-process, shared through Redis, and
in-process again while Redis is down."""

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from tests.clock import MutableClock
from tests.servers import free_port
from whoop_service.whoop.user_limits import (
    UserLimits,
    UserQuotaExceeded,
    seconds_to_next_utc_day,
)

EVENING = datetime(2026, 11, 20, 22, 0, tzinfo=UTC)


def test_seconds_to_the_next_utc_day():
    assert seconds_to_next_utc_day(EVENING) == 2 * 3600
    assert seconds_to_next_utc_day(datetime(2026, 11, 20, tzinfo=UTC)) == 86_400


async def test_one_interactive_sync_per_cooldown_in_process():
    clock = MutableClock(EVENING)
    limits = UserLimits(60, 100, clock=clock)
    assert await limits.start_sync("u1") == 0
    assert await limits.start_sync("u1") == pytest.approx(60)
    assert await limits.start_sync("u2") == 0, (
        "another user has a cooldown of their own"
    )
    clock.advance(seconds=45)
    assert await limits.start_sync("u1") == pytest.approx(15)
    clock.advance(seconds=15)
    assert await limits.start_sync("u1") == 0


async def test_no_cooldown_when_it_is_zero():
    limits = UserLimits(0, 100)
    assert [await limits.start_sync("u1") for _ in range(3)] == [0, 0, 0]


async def test_the_daily_quota_stops_requests_until_the_next_utc_day():
    clock = MutableClock(EVENING)
    limits = UserLimits(60, 3, clock=clock)
    for _ in range(3):
        assert await limits.quota_wait_s("u1") == 0
        await limits.spend("u1")
    assert await limits.quota_wait_s("u1") == 2 * 3600
    with pytest.raises(UserQuotaExceeded) as err:
        await limits.spend("u1")
    assert err.value.wait_s == 2 * 3600
    await limits.spend("u2")  # another user's quota is untouched
    clock.advance(hours=2)
    assert await limits.quota_wait_s("u1") == 0
    await limits.spend("u1")


@pytest.mark.redis
async def test_replicas_share_the_cooldown_and_the_quota_through_redis(redis):
    clock = MutableClock(EVENING)
    prefix = f"test:{uuid.uuid4().hex}"
    replicas = [
        UserLimits(30, 4, redis=redis, prefix=prefix, clock=clock) for _ in "ab"
    ]
    assert await replicas[0].start_sync("u1") == 0
    wait = await replicas[1].start_sync("u1")
    assert 29 < wait <= 30
    for i in range(4):
        await replicas[i % 2].spend("u1")
    for limits in replicas:
        assert await limits.quota_wait_s("u1") == 2 * 3600
        with pytest.raises(UserQuotaExceeded):
            await limits.spend("u1")
    # The counter lives no longer than needed.
    day_key = f"{prefix}:u1:requests:2026-11-20"
    assert int(await redis.get(day_key)) == 4
    assert 0 < await redis.ttl(day_key) <= 2 * 86_400
    assert 0 < await redis.pttl(f"{prefix}:u1:cooldown") <= 30_000


async def test_an_unreachable_redis_falls_back_to_limits_in_process():
    dead = Redis.from_url(
        f"redis://127.0.0.1:{free_port()}/0",
        socket_timeout=0.2,
        socket_connect_timeout=0.2,
    )
    clock = MutableClock(EVENING)
    limits = UserLimits(60, 2, redis=dead, clock=clock)
    try:
        assert await limits.start_sync("u1") == 0
        assert await limits.start_sync("u1") == pytest.approx(60)
        await limits.spend("u1")
        await limits.spend("u1")
        with pytest.raises(UserQuotaExceeded):
            await limits.spend("u1")
        assert await limits.quota_wait_s("u1") > 0
    finally:
        await dead.aclose()


async def test_while_redis_is_down_each_replica_keeps_its_share():
    """As the rate budget does: two replicas each allow half the quota, and one sync per two
    cooldowns, so together they keep to the limits."""
    dead = Redis.from_url(
        f"redis://127.0.0.1:{free_port()}/0",
        socket_timeout=0.2,
        socket_connect_timeout=0.2,
    )
    clock = MutableClock(EVENING)
    limits = UserLimits(60, 5, redis=dead, clock=clock, replicas=lambda: 2)
    try:
        assert await limits.start_sync("u1") == 0
        assert await limits.start_sync("u1") == pytest.approx(120)
        for _ in range(3):  # ceil(5 / 2)
            await limits.spend("u1")
        with pytest.raises(UserQuotaExceeded):
            await limits.spend("u1")
        assert await limits.quota_wait_s("u1") == 2 * 3600
    finally:
        await dead.aclose()


async def cooldown_given_back(redis) -> None:
    limits = UserLimits(
        60,
        100,
        redis=redis,
        prefix=f"test:{uuid.uuid4().hex}",
        clock=MutableClock(EVENING),
    )
    assert await limits.start_sync("u1") == 0
    assert await limits.start_sync("u1") > 0
    await limits.cancel_sync("u1")
    assert await limits.start_sync("u1") == 0


async def test_a_cooldown_given_back_lets_the_next_sync_run():
    await cooldown_given_back(None)


@pytest.mark.redis
async def test_a_cooldown_given_back_in_redis_lets_the_next_sync_run(redis):
    await cooldown_given_back(redis)


async def twelve_connects_at_once(redis) -> list[float]:
    limits = UserLimits(
        60,
        100,
        redis=redis,
        prefix=f"test:{uuid.uuid4().hex}",
        clock=MutableClock(EVENING),
    )
    return await asyncio.gather(*(limits.start_connect("u1") for _ in range(12)))


async def test_connect_flows_started_at_once_keep_to_five_in_ten_minutes():
    """Review: the count of a user's flows and the new flow were not one step, so concurrent
    starts all passed."""
    waits = await twelve_connects_at_once(None)
    assert waits.count(0.0) == 5
    assert all(0 < w <= 600 for w in waits if w)


@pytest.mark.redis
async def test_connect_flows_started_at_once_on_redis_keep_to_five(redis):
    waits = await twelve_connects_at_once(redis)
    assert waits.count(0.0) == 5
    assert all(599 < w <= 600 for w in waits if w)
