import asyncio
import bisect
import time
import uuid

import pytest

from whoop_service.whoop.budget import BudgetExhausted
from whoop_service.whoop.ratelimit import BudgetLimits, Priority
from whoop_service.whoop.redis_budget import RedisBudget

pytestmark = pytest.mark.redis


async def test_two_replicas_share_one_window(redis):
    prefix = f"test:{uuid.uuid4().hex}"
    limits = BudgetLimits(per_minute=10, per_day=10_000, minute_window_s=1.0)
    replicas = [RedisBudget(redis, limits, prefix=prefix) for _ in range(2)]

    async def caller(budget: RedisBudget) -> None:
        for _ in range(3):
            await budget.acquire(Priority.INTERACTIVE)

    started = time.monotonic()
    await asyncio.gather(*(caller(replicas[i % 2]) for i in range(20)))
    elapsed = time.monotonic() - started
    # The server's own record of every grant (the day window keeps them all).
    scores = [s for _, s in await redis.zrange(f"{prefix}:day", 0, -1, withscores=True)]
    assert len(scores) == 60
    ms = sorted(int(s) for s in scores)
    worst = max(range(len(ms)), key=lambda i: bisect.bisect_left(ms, ms[i] + 1000) - i)
    window = [
        t - ms[worst] for t in ms[worst : bisect.bisect_left(ms, ms[worst] + 1000)]
    ]
    assert len(window) <= 10, f"grants in one second (ms from the first): {window}"
    assert elapsed >= 4.5, "60 grants at 10 per second need five windows"
    assert replicas[0].granted + replicas[1].granted == 60


async def test_block_and_deadline(redis):
    budget = RedisBudget(
        redis,
        BudgetLimits(per_minute=5, per_day=100),
        prefix=f"test:{uuid.uuid4().hex}",
    )
    await budget.block_for(30)
    with pytest.raises(BudgetExhausted) as err:
        await budget.acquire(Priority.INTERACTIVE, deadline=time.monotonic() + 1)
    assert 29 <= err.value.wait_s <= 30
    assert (await budget.status())["minute_used"] == 0


async def test_interactive_work_keeps_to_its_own_caps_across_replicas(redis):
    prefix = f"test:{uuid.uuid4().hex}"
    limits = BudgetLimits(per_minute=10, per_day=10_000, interactive_shares=(0.5, 0.3))
    replicas = [RedisBudget(redis, limits, prefix=prefix) for _ in range(2)]
    for i in range(5):  # half of the minute, whichever replica sends
        await replicas[i % 2].acquire(Priority.INTERACTIVE, time.monotonic() + 1)
    for budget in replicas:
        with pytest.raises(BudgetExhausted) as err:
            await budget.acquire(Priority.INTERACTIVE, time.monotonic() + 5)
        assert 55 <= err.value.wait_s <= 60
    # The other half stays for webhooks (95 % of the window in all: 9 sends).
    for i in range(4):
        await replicas[i % 2].acquire(Priority.WEBHOOK, time.monotonic() + 1)
    assert (await replicas[0].status())["minute_used"] == 9
