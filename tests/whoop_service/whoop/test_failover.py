"""FailoverBudget against a real Redis that the tests stop, start again and freeze.

The budgets decide on virtual time (the Redis scripts are given the time), while the Redis calls are
real: `SettledTime` moves the clock only once every task it knows is asleep, never mid-call.
"""

import asyncio
import bisect
import heapq
import time
import uuid
from contextlib import asynccontextmanager

import pytest
from redis.asyncio import Redis
from structlog.testing import capture_logs

from tests.clock import VirtualTime
from tests.servers import restartable_redis
from whoop_service.whoop.budget import BudgetExhausted
from whoop_service.whoop.failover import FailoverBudget, Mode
from whoop_service.whoop.ratelimit import BudgetLimits, Priority
from whoop_service.whoop.redis_budget import RedisBudget

pytestmark = pytest.mark.redis

WINDOW_S = 10.0
LIMITS = BudgetLimits(per_minute=10, per_day=10_000, minute_window_s=WINDOW_S)


class SettledTime(VirtualTime):
    """Virtual time for code that also does real I/O: it moves only while every task that ever
    slept on it (or that `run` drives) is asleep on it, so no Redis call is in flight."""

    def __init__(self) -> None:
        super().__init__()
        self._known: set[asyncio.Task[object]] = set()
        self._parked: set[asyncio.Task[object]] = set()

    async def sleep(self, seconds: float) -> None:
        task = asyncio.current_task()
        assert task is not None
        fut = asyncio.get_running_loop().create_future()
        self._seq += 1
        self._known.add(task)
        self._parked.add(task)
        heapq.heappush(
            self._sleepers, (self.now + max(seconds, 0.0), self._seq, (fut, task))
        )
        try:
            await fut
        finally:
            self._parked.discard(task)

    async def run(self, *coros):
        tasks = [asyncio.ensure_future(c) for c in coros]
        self._known.update(tasks)
        give_up = time.monotonic() + 120
        idle_rounds = 0
        while not all(t.done() for t in tasks):
            awake = {t for t in self._known if not t.done()} - self._parked
            if not awake and self._sleepers:
                wake, _, (fut, task) = heapq.heappop(self._sleepers)
                if fut.done():  # its task was cancelled
                    continue
                self.now = max(self.now, wake)
                self._parked.discard(task)
                fut.set_result(None)
                idle_rounds = 0
            assert time.monotonic() < give_up, "tasks neither finish nor sleep"
            # Let woken tasks run; past a few rounds they wait on Redis: give it a moment.
            idle_rounds += 1
            await asyncio.sleep(0 if idle_rounds < 20 else 0.0002)
        return [t.result() for t in tasks]


def max_in_any_window(times: list[float], window: float) -> int:
    """Most events in any half-open window [t, t + window), as the budget's windows are."""
    times = sorted(times)
    return max(
        (bisect.bisect_left(times, t + window) - i for i, t in enumerate(times)),
        default=0,
    )


@pytest.fixture
def server():
    with restartable_redis() as s:
        yield s


@asynccontextmanager
async def replica(
    server,
    vt: SettledTime,
    prefix: str,
    heartbeat_s: float = 2.0,
    retry_s: float = 1.0,
    limits: BudgetLimits = LIMITS,
):
    """One replica's budget (its own Redis connection), on virtual time."""
    redis = Redis.from_url(server.url, socket_timeout=0.5, socket_connect_timeout=0.5)
    shared = RedisBudget(
        redis,
        limits,
        prefix=prefix,
        **vt.hooks(),
    )
    try:
        async with FailoverBudget(
            shared,
            heartbeat_s=heartbeat_s,
            retry_s=retry_s,
            **vt.hooks(),
        ) as budget:
            yield budget
    finally:
        await redis.aclose()


@pytest.mark.parametrize(
    "looks_every_s", [1.0, 7.0], ids=["back-together", "one-back-later"]
)
async def test_two_replicas_keep_within_the_limit_before_during_and_after_an_outage(
    server, looks_every_s
):
    vt = SettledTime()
    prefix = f"test:{uuid.uuid4().hex}"
    grants: list[tuple[float, int, Mode]] = []
    start = vt.now
    # Both mid-window: the windows before and after each switch overlap it.
    stopped_at, restarted_at, end = start + 25, start + 64, start + 110

    async def caller(n: int, budget: FailoverBudget, joins_at: float) -> None:
        await vt.sleep(joins_at - vt.now)
        while vt.now < end:
            await budget.acquire(Priority.INTERACTIVE)
            grants.append((vt.now, n, budget.mode))

    async def outage() -> None:
        await vt.sleep(stopped_at - vt.now)
        server.stop()
        await vt.sleep(restarted_at - vt.now)
        server.start()

    with capture_logs() as logs:
        async with (
            replica(server, vt, prefix) as one,
            replica(server, vt, prefix, max(looks_every_s, 2), looks_every_s) as two,
        ):
            budgets = [one, two]
            # Callers waiting for a slot at the switch only try again once one is free; new
            # ones right after each switch find out whether the other side's sends count.
            joins = [start] * 12 + [stopped_at + 1] * 4 + [restarted_at + 2] * 4
            # The first one back is on the shared windows alone again; the other may not be.
            joins += [restarted_at + WINDOW_S + 1.5] * 4
            await vt.run(
                *(caller(i % 2, budgets[i % 2], at) for i, at in enumerate(joins)),
                outage(),
            )
            modes = [b.mode for b in budgets]

    times = [t for t, _, _ in grants]
    assert max_in_any_window(times, WINDOW_S) == 10, "never past the limit, any window"
    # Right after the switch, the others may have filled the window unseen: the shares wait
    # it out, then each replica sends its half of the limit.
    during = [(t, n) for t, n, _ in grants if stopped_at + WINDOW_S <= t < restarted_at]
    for n in (0, 1):
        assert max_in_any_window([t for t, m in during if m == n], WINDOW_S) == 5
    assert len(during) >= 25, "WHOOP work goes on: three windows at 10 per 10 s"
    assert {mode for t, _, mode in grants if stopped_at < t < restarted_at} == {
        Mode.FALLBACK
    }
    assert modes == [Mode.SHARED, Mode.SHARED], "both back on the shared budget"
    assert [t for t, _, _ in grants if t >= end - WINDOW_S], "and still sending"
    events = [e["event"] for e in logs if e["event"].startswith("whoop.budget.")]
    assert events.count("whoop.budget.local_fallback") == 2, "one line per switch"
    assert events.count("whoop.budget.shared_again") == 2


async def test_a_replica_alone_goes_on_without_waiting_and_records_its_sends_on_return(
    server,
):
    vt = SettledTime()
    prefix = f"test:{uuid.uuid4().hex}"
    redis = Redis.from_url(server.url)
    grants: list[float] = []
    async with replica(server, vt, prefix) as budget:
        for _ in range(4):
            await budget.acquire(Priority.INTERACTIVE)
            grants.append(vt.now)
        server.stop()
        # Its own sends are the whole window: six more fit at once, the seventh waits.
        for _ in range(6):
            await budget.acquire(Priority.INTERACTIVE, deadline=vt.now)
            grants.append(vt.now)
        assert budget.mode is Mode.FALLBACK
        with pytest.raises(BudgetExhausted):
            await budget.acquire(Priority.INTERACTIVE, deadline=vt.now + 1)

        server.start()
        await vt.run(vt.sleep(2.5))  # the watcher's next look finds Redis and rejoins
        assert budget.mode is Mode.REJOINING
        # Redis restarted empty: what the share counted is in the shared windows again.
        assert await redis.zcard(f"{prefix}:minute") == 10
        with pytest.raises(BudgetExhausted):
            await budget.acquire(Priority.INTERACTIVE, deadline=vt.now + 1)
        await vt.run(vt.sleep(WINDOW_S))
        await budget.acquire(Priority.INTERACTIVE, deadline=vt.now)
        assert budget.mode is Mode.SHARED
    await redis.aclose()
    assert max_in_any_window(grants, WINDOW_S) == 10


async def test_a_hung_redis_times_out_into_the_local_share_and_readiness_says_so(
    server,
):
    vt = SettledTime()
    async with replica(server, vt, f"test:{uuid.uuid4().hex}") as budget:
        assert (await budget.redis_state(), await budget.budget_state()) == (None, None)
        server.pause()
        try:
            await budget.acquire(Priority.INTERACTIVE)  # runs into the socket timeout
            assert budget.mode is Mode.FALLBACK
            assert await budget.redis_state() == "unavailable"
            assert await budget.budget_state() == "local_fallback"
        finally:
            server.resume()
        await vt.run(vt.sleep(2.5))  # the watcher's next look
        assert await budget.budget_state() is None
        assert budget.mode is Mode.REJOINING


async def test_a_redis_that_lost_its_data_without_failing_a_call_is_noticed(server):
    """E.g. a failover to an empty replica: the shared windows are empty, the replicas must count
    them as full (as after an outage) and record their shares' counts there."""
    vt = SettledTime()
    prefix = f"test:{uuid.uuid4().hex}"
    admin = Redis.from_url(server.url)
    async with (
        replica(server, vt, prefix) as one,
        replica(server, vt, prefix) as two,
    ):
        await vt.run(vt.sleep(2.5))  # a heartbeat each: both know there are two
        for budget in (one, two):
            for _ in range(5):
                await budget.acquire(Priority.INTERACTIVE, deadline=vt.now)
        await admin.flushall()
        with capture_logs() as logs, pytest.raises(BudgetExhausted):
            await one.acquire(Priority.INTERACTIVE, deadline=vt.now + 1)
        assert one.mode is Mode.FALLBACK
        assert [e["error_type"] for e in logs if "error_type" in e] == [
            "redis_data_lost"
        ]
        # The next heartbeat: the other notices too, and both rejoin.
        await vt.run(vt.sleep(2))
        assert [one.mode, two.mode] == [Mode.REJOINING, Mode.REJOINING]
        assert await admin.zcard(f"{prefix}:minute") >= 10, "both shares, recorded"
        with pytest.raises(BudgetExhausted):
            await two.acquire(Priority.INTERACTIVE, deadline=vt.now + 1)
    await admin.aclose()


async def test_redis_failing_again_while_rejoining_grants_no_second_headroom(server):
    """Ours 8, WHOOP's 10 a window: each of two shares may spend one of WHOOP's headroom in the
    window it falls back in, once; a Redis that flaps inside that window must not grant it again."""
    vt = SettledTime()
    prefix = f"test:{uuid.uuid4().hex}"
    limits = BudgetLimits(
        per_minute=8, per_day=10_000, minute_window_s=WINDOW_S, whoop_per_minute=10
    )
    grants: list[float] = []

    async def send_what_fits(budget: FailoverBudget) -> None:
        while True:
            try:
                await budget.acquire(Priority.INTERACTIVE, deadline=vt.now)
            except BudgetExhausted:
                return
            grants.append(vt.now)

    async with (
        replica(server, vt, prefix, limits=limits) as one,
        replica(server, vt, prefix, limits=limits) as two,
    ):
        await vt.run(vt.sleep(2.5))  # a heartbeat each: both know there are two
        for budget in (one, two):
            await send_what_fits(budget)
        server.stop()
        for budget in (one, two):
            await send_what_fits(budget)
        assert [one.mode, two.mode] == [Mode.FALLBACK, Mode.FALLBACK]
        server.start()
        await vt.run(vt.sleep(1.5))  # the watchers' next look: both rejoin
        assert [one.mode, two.mode] == [Mode.REJOINING, Mode.REJOINING]
        server.stop()
        for budget in (one, two):
            assert await budget.redis_state() == "unavailable"  # a readiness probe
            await send_what_fits(budget)
        assert [one.mode, two.mode] == [Mode.FALLBACK, Mode.FALLBACK]
    assert vt.now < grants[0] + WINDOW_S, "all of it inside one window"
    assert len(grants) == 10, "our 8, then WHOOP's headroom once"


async def test_a_send_that_took_no_slot_counts_in_redis_and_in_the_share(server):
    """Token calls take no slot but are counted: in the shared windows while Redis answers, in
    the local share (and later in Redis) while it does not."""
    vt = SettledTime()
    prefix = f"test:{uuid.uuid4().hex}"
    admin = Redis.from_url(server.url)
    async with replica(server, vt, prefix) as budget:
        await budget.record_sent()
        assert await admin.zcard(f"{prefix}:minute") == 1
        server.stop()
        await budget.record_sent()
        assert budget.mode is Mode.FALLBACK
        granted = 0
        while True:
            try:
                await budget.acquire(Priority.INTERACTIVE, deadline=vt.now)
            except BudgetExhausted:
                break
            granted += 1
        # Alone, its own sends are the whole window: two counted, eight more fit.
        assert granted == LIMITS.per_minute - 2
    await admin.aclose()


# With caps of interactive work's own: 5 a window, 30 a day.
INTERACTIVE_LIMITS = BudgetLimits(
    per_minute=10,
    per_day=100,
    minute_window_s=WINDOW_S,
    interactive_shares=(0.5, 0.3),
)


async def fill_interactive(
    budget: FailoverBudget, vt: SettledTime, sent: list[float]
) -> None:
    """Interactive sends, waiting between windows, until the day's interactive cap stops them."""
    while True:
        try:
            await budget.acquire(Priority.INTERACTIVE, deadline=vt.now + WINDOW_S)
        except BudgetExhausted as exc:
            if exc.wait_s > 3600:
                return
            await vt.sleep(exc.wait_s)
            continue
        sent.append(vt.now)


async def test_an_outage_never_grants_interactive_work_a_second_share(server):
    """Found by review: the local share started with empty interactive windows, so users'
    work could take the whole minute (and another 30 % of the day) once Redis failed, and
    what it sent offline never reached Redis's interactive windows."""
    vt = SettledTime()
    prefix = f"test:{uuid.uuid4().hex}"
    limits = INTERACTIVE_LIMITS
    redis = Redis.from_url(server.url)
    interactive: list[float] = []

    try:
        async with replica(server, vt, prefix, limits=limits) as budget:
            for _ in range(5):  # half the minute: the interactive cap
                await budget.acquire(Priority.INTERACTIVE, deadline=vt.now + 1)
                interactive.append(vt.now)
            server.stop()
            with pytest.raises(BudgetExhausted):
                await budget.acquire(Priority.INTERACTIVE, deadline=vt.now + 1)
            assert budget.mode is Mode.FALLBACK
            for _ in range(4):  # the rest of the window is still the others'
                await budget.acquire(Priority.WEBHOOK, deadline=vt.now + 1)
            await vt.run(fill_interactive(budget, vt, interactive))
            assert len(interactive) == 30, "30 % of the day in all, outage or not"
            assert max_in_any_window(interactive, WINDOW_S) == 5
            server.start()
            await vt.run(vt.sleep(5 * WINDOW_S))  # heartbeats: back on Redis
            assert budget.mode is Mode.SHARED
            recorded = await redis.zcard(f"{prefix}:interactive:day")
            assert recorded == 30, "the offline interactive sends were recorded"
            with pytest.raises(BudgetExhausted):
                await budget.acquire(Priority.INTERACTIVE, deadline=vt.now + 1)
    finally:
        await redis.aclose()


async def test_the_days_interactive_sends_seen_at_any_shared_slot_survive_an_outage(
    server,
):
    """Review: each shared slot's answer reset the known interactive day count to 0, so an
    outage soon after busy hours granted users' work another 30 % of the day."""
    vt = SettledTime()
    prefix = f"test:{uuid.uuid4().hex}"
    sent: list[float] = []
    # No heartbeat after the first: the last look at Redis is a slot's answer.
    async with replica(
        server, vt, prefix, heartbeat_s=10_000, limits=INTERACTIVE_LIMITS
    ) as budget:
        await vt.run(fill_interactive(budget, vt, sent))
        assert len(sent) == 30
        assert budget.mode is Mode.SHARED
        server.stop()
        await vt.run(vt.sleep(2 * WINDOW_S))
        with pytest.raises(BudgetExhausted) as err:
            await budget.acquire(Priority.INTERACTIVE, deadline=vt.now + WINDOW_S)
        assert budget.mode is Mode.FALLBACK
        assert err.value.wait_s > 3600, "the day's interactive share stays spent"
