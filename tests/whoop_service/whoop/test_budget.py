import bisect
from dataclasses import replace

import pytest

from tests.clock import VirtualTime
from whoop_service.whoop.budget import BudgetExhausted, LocalBudget
from whoop_service.whoop.ratelimit import (
    BudgetLimits,
    Preload,
    Priority,
    fallback_preload,
    replica_share,
    window_wait,
)


def test_window_wait_is_the_time_until_the_blocking_request_leaves():
    assert window_wait([], 100.0, 10.0, 2) == 0.0
    assert window_wait([95.0], 100.0, 10.0, 2) == 0.0
    assert window_wait([95.0, 97.0], 100.0, 10.0, 2) == pytest.approx(5.0)
    assert window_wait([91.0, 95.0, 97.0], 100.0, 10.0, 2) == pytest.approx(5.0)


def test_headroom_and_priority_caps():
    limits = BudgetLimits.from_whoop(100, 10_000, 0.9)
    assert (limits.per_minute, limits.per_day) == (90, 9000)
    assert limits.caps(Priority.INTERACTIVE) == (90, 9000)
    assert limits.caps(Priority.BACKFILL) == (81, 7200), (
        "backfill leaves the day's last 20 %"
    )


def max_in_any_window(times: list[float], window: float) -> int:
    """Most events in any half-open window [t, t + window), as the budget's windows are."""
    times = sorted(times)
    return max(bisect.bisect_left(times, t + window) - i for i, t in enumerate(times))


async def test_300_calls_at_20_per_10_s_never_exceed_any_window():
    vt = VirtualTime()
    budget = LocalBudget(
        BudgetLimits(per_minute=20, per_day=10_000, minute_window_s=10.0),
        **vt.hooks(),
    )
    granted: list[float] = []

    async def caller(n: int) -> None:
        for _ in range(n):
            await budget.acquire(Priority.INTERACTIVE)
            granted.append(vt.now)

    start = vt.now
    await vt.run(*(caller(10) for _ in range(30)))
    assert len(granted) == 300
    assert max_in_any_window(granted, 10.0) == 20
    # It waited rather than failed: 300 calls at 20 per 10 s need 14 full windows.
    assert vt.now - start >= 140.0


def test_interactive_work_has_caps_of_its_own():
    limits = BudgetLimits.from_whoop(100, 10_000, 0.9)
    assert limits.own_caps(Priority.INTERACTIVE) == (45, 2700)
    assert limits.own_caps(Priority.WEBHOOK) is None
    assert limits.own_caps(Priority.BACKFILL) is None
    assert replica_share(limits, 3).own_caps(Priority.INTERACTIVE) == (15, 900)
    tiny = BudgetLimits(per_minute=1, per_day=1, interactive_shares=(0.5, 0.3))
    assert tiny.own_caps(Priority.INTERACTIVE) == (1, 1)


SHARES = (0.5, 0.3)


async def test_interactive_work_fills_half_a_minute_and_others_keep_the_rest():
    vt = VirtualTime()
    budget = LocalBudget(
        BudgetLimits(
            per_minute=20,
            per_day=10_000,
            minute_window_s=10.0,
            interactive_shares=SHARES,
        ),
        **vt.hooks(),
    )
    interactive: list[float] = []
    others: list[float] = []

    async def caller(priority: Priority, log: list[float], n: int) -> None:
        for _ in range(n):
            await budget.acquire(priority)
            log.append(vt.now)

    # Many users refreshing at once, while webhooks and a backfill need slots too.
    await vt.run(
        *(caller(Priority.INTERACTIVE, interactive, 10) for _ in range(10)),
        caller(Priority.WEBHOOK, others, 30),
        caller(Priority.BACKFILL, others, 30),
    )
    assert len(interactive) == 100
    assert len(others) == 60
    assert max_in_any_window(interactive, 10.0) == 10
    assert max_in_any_window(interactive + others, 10.0) <= 20
    # Interactive calls waited on their own caps without holding the others back (a waiting
    # higher priority outranks the lower ones): the others were done first.
    assert max(others) < max(interactive)


async def test_interactive_work_stops_at_30_percent_of_the_day():
    vt = VirtualTime()
    budget = LocalBudget(
        BudgetLimits(per_minute=1000, per_day=100, interactive_shares=SHARES),
        **vt.hooks(),
    )
    for _ in range(30):
        await budget.acquire(Priority.INTERACTIVE, deadline=vt.now + 1)
    with pytest.raises(BudgetExhausted) as err:
        await budget.acquire(Priority.INTERACTIVE, deadline=vt.now + 3600)
    assert err.value.wait_s > 3600
    for _ in range(60):
        await budget.acquire(Priority.WEBHOOK, deadline=vt.now + 1)
    assert budget.granted == 90


async def test_waiting_interactive_calls_go_before_waiting_backfill():
    vt = VirtualTime()
    budget = LocalBudget(
        BudgetLimits(per_minute=10, per_day=10_000, minute_window_s=10.0),
        **vt.hooks(),
    )
    order: list[str] = []

    async def one(kind: str, priority: Priority) -> None:
        await budget.acquire(priority)
        order.append(kind)

    for _ in range(9):  # the backfill share of this window, used up
        await budget.acquire(Priority.BACKFILL)
    await vt.run(
        *(one("backfill", Priority.BACKFILL) for _ in range(5)),
        *(one("interactive", Priority.INTERACTIVE) for _ in range(5)),
    )
    assert order[:5] == ["interactive"] * 5


async def test_backfill_stops_at_80_percent_of_the_day():
    vt = VirtualTime()
    budget = LocalBudget(
        BudgetLimits(per_minute=1000, per_day=10),
        **vt.hooks(),
    )
    for _ in range(8):
        await budget.acquire(Priority.BACKFILL, deadline=vt.now + 1)
    with pytest.raises(BudgetExhausted):
        await budget.acquire(Priority.BACKFILL, deadline=vt.now + 3600)
    await budget.acquire(Priority.INTERACTIVE, deadline=vt.now + 1)
    await budget.acquire(Priority.WEBHOOK, deadline=vt.now + 1)
    assert budget.granted == 10


async def test_a_slot_beyond_the_deadline_fails_fast_and_consumes_nothing():
    vt = VirtualTime()
    budget = LocalBudget(
        BudgetLimits(per_minute=1, per_day=100),
        **vt.hooks(),
    )
    await budget.acquire(Priority.INTERACTIVE)
    with pytest.raises(BudgetExhausted) as err:
        await budget.acquire(Priority.INTERACTIVE, deadline=vt.now + 5)
    assert err.value.wait_s == pytest.approx(60.0)
    assert budget.granted == 1


async def test_whoop_saying_stop_blocks_every_priority():
    vt = VirtualTime()
    budget = LocalBudget(
        BudgetLimits(per_minute=100, per_day=1000),
        **vt.hooks(),
    )
    await budget.block_for(30.0)
    start = vt.now
    await vt.run(budget.acquire(Priority.INTERACTIVE))
    assert vt.now - start == pytest.approx(30.0)
    assert (await budget.status())["minute_used"] == 1


def test_replica_shares_never_add_up_past_the_limits():
    limits = BudgetLimits.from_whoop(100, 10_000, 0.9)
    for replicas in range(1, 12):
        share = replica_share(limits, replicas)
        assert share.per_minute * replicas <= limits.per_minute
        assert share.per_day * replicas <= limits.per_day
        assert share.per_minute >= limits.per_minute // replicas
    assert replica_share(limits, 0) == replace(limits, whoop_per_minute=None)
    assert replica_share(BudgetLimits(per_minute=2, per_day=10), 5).per_minute == 1


def test_a_replica_alone_starts_its_share_from_its_own_sends():
    limits = BudgetLimits(per_minute=90, per_day=9000, whoop_per_minute=100)
    preload = fallback_preload(
        limits,
        1,
        alone=True,
        own_minute=[930.0, 950.0, 990.0],
        day_used=4000,
        unseen_s=5.0,
        now=1000.0,
    )
    assert preload == Preload(minute=(950.0, 990.0), day=4000)


def test_with_others_a_share_starts_full_but_for_its_part_of_whoops_headroom():
    limits = BudgetLimits(per_minute=90, per_day=9000, whoop_per_minute=100)
    preload = fallback_preload(
        limits,
        3,
        alone=False,
        own_minute=[990.0],
        day_used=4000,
        unseen_s=5.0,
        now=1000.0,
    )
    # 30 a minute each; 10 of headroom over 3 replicas: 3 may go out in the first window.
    assert preload.minute == (1000.0,) * 27
    # The day as last seen, and one minute cap the others may have sent since: a third each.
    assert preload.day == 1364  # ceil((4000 + 90) / 3)
    assert (
        fallback_preload(
            limits, 3, alone=False, own_minute=[], day_used=4000, unseen_s=130, now=0.0
        ).day
        == 1424
    )  # three minute windows unseen: ceil((4000 + 270) / 3)
    assert (
        fallback_preload(
            limits, 3, alone=False, own_minute=[], day_used=8990, unseen_s=0, now=0.0
        ).day
        == 3000
    ), "never past the day's limit"


async def test_a_preloaded_budget_counts_what_it_did_not_grant():
    vt = VirtualTime()
    budget = LocalBudget(
        BudgetLimits(per_minute=3, per_day=100, minute_window_s=10.0),
        **vt.hooks(),
    )
    budget.preload([vt.now - 8, vt.now - 2], [vt.now - 8, vt.now - 2])
    taken = await budget.take(Priority.INTERACTIVE)
    with pytest.raises(BudgetExhausted) as err:
        await budget.acquire(Priority.INTERACTIVE, deadline=vt.now + 1)
    assert err.value.wait_s == pytest.approx(2.0), (
        "the oldest preloaded send leaves first"
    )
    vt.now += 5
    budget.move(taken, vt.now)  # its send was held up: it leaves the window later
    assert budget.sent_at() == ([vt.now - 7, vt.now], [vt.now - 13, vt.now - 7, vt.now])
