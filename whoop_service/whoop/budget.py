"""The rate budget every WHOOP call acquires a slot from: in-process, or shared through Redis
(`failover.FailoverBudget`, which keeps to a `LocalBudget` share while Redis is unreachable).

Calls wait for a slot instead of failing, up to their own deadline; `BudgetExhausted` says the slot
would come too late. What WHOOP reports (`X-RateLimit-Remaining`/`Reset`, a 429) also blocks the
budget until WHOOP's window resets, since other clients of the same app may be spending it too.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

import structlog

from whoop_service.whoop.ratelimit import BudgetLimits, Priority, window_wait

log = structlog.get_logger()

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class BudgetExhausted(Exception):
    """No slot is free before the caller's deadline."""

    def __init__(self, wait_s: float) -> None:
        super().__init__(f"the WHOOP rate budget frees a slot in {wait_s:.1f} s")
        self.wait_s = wait_s


class RateBudget(Protocol):
    """What the WHOOP client needs of a budget."""

    async def acquire(self, priority: Priority, deadline: float | None = None) -> None:
        """Wait for a slot; `deadline` is on `time.monotonic()`'s scale."""

    async def block_for(self, seconds: float) -> None:
        """WHOOP said its window is spent: send nothing for `seconds`."""

    async def record_sent(self) -> None:
        """Count a send that took no slot (a token call, which cannot wait): what follows
        waits for it."""

    async def status(self) -> dict[str, object]:
        """What `/health/ready` and the metrics report."""


class LocalBudget:
    """The budget of one process (the default: one replica, or no Redis)."""

    def __init__(
        self,
        limits: BudgetLimits,
        *,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        monotonic: Clock = time.monotonic,
    ) -> None:
        self.limits = limits
        self._clock = clock
        self._sleep = sleep
        self._monotonic = monotonic
        self._minute: collections.deque[float] = collections.deque()
        self._day: collections.deque[float] = collections.deque()
        # Interactive sends again, counted apart for their own caps (`BudgetLimits.own_caps`).
        self._own_minute: collections.deque[float] = collections.deque()
        self._own_day: collections.deque[float] = collections.deque()
        self._blocked_until = 0.0
        self._waiting: collections.Counter[Priority] = collections.Counter()
        self.granted = 0

    def _prune(self, now: float) -> None:
        for log_, window in (
            (self._minute, self.limits.minute_window_s),
            (self._day, self.limits.day_window_s),
            (self._own_minute, self.limits.minute_window_s),
            (self._own_day, self.limits.day_window_s),
        ):
            while log_ and log_[0] <= now - window:
                log_.popleft()

    def _wait_s(self, priority: Priority, now: float) -> float:
        self._prune(now)
        minute_cap, day_cap = self.limits.caps(priority)
        return max(
            self._blocked_until - now,
            window_wait(self._minute, now, self.limits.minute_window_s, minute_cap),
            window_wait(self._day, now, self.limits.day_window_s, day_cap),
            0.0,
        )

    def _own_wait_s(self, priority: Priority, now: float) -> float:
        """Seconds until `priority`'s own caps admit one more send (0: now, or no caps)."""
        caps = self.limits.own_caps(priority)
        if caps is None:
            return 0.0
        self._prune(now)
        return max(
            window_wait(self._own_minute, now, self.limits.minute_window_s, caps[0]),
            window_wait(self._own_day, now, self.limits.day_window_s, caps[1]),
        )

    def _outranked(self, priority: Priority) -> bool:
        return any(self._waiting[p] for p in Priority if p < priority)

    async def acquire(self, priority: Priority, deadline: float | None = None) -> None:
        await self.take(priority, deadline)

    async def take(self, priority: Priority, deadline: float | None = None) -> float:
        """`acquire`, answering when the slot was taken (on this budget's clock)."""
        while True:
            own = self._own_wait_s(priority, self._clock())
            if own > 0:
                # Held by its own caps: it waits without outranking anyone meanwhile.
                await self._pause(own, deadline)
                continue
            self._waiting[priority] += 1
            try:
                now = self._clock()
                wait = self._wait_s(priority, now)
                if wait <= 0 and not self._outranked(priority):
                    if self._own_wait_s(priority, now) > 0:
                        continue
                    self._minute.append(now)
                    self._day.append(now)
                    if self.limits.own_caps(priority) is not None:
                        self._own_minute.append(now)
                        self._own_day.append(now)
                    self.granted += 1
                    return now
                # Outranked: let the higher priority take the slot, then look again.
                await self._pause(max(wait, 0.005), deadline)
            finally:
                self._waiting[priority] -= 1

    async def _pause(self, wait: float, deadline: float | None) -> None:
        if deadline is not None and self._monotonic() + wait > deadline:
            raise BudgetExhausted(wait)
        await self._sleep(wait)

    async def record_sent(self) -> None:
        self.preload([self._clock()], [self._clock()])

    def move(self, taken_at: float, to: float) -> None:
        """Count a slot taken at `taken_at` as taken at `to` (now): its send was held up."""
        for log_ in (self._minute, self._day, self._own_minute, self._own_day):
            if taken_at in log_:
                log_.remove(taken_at)
                bisect.insort(log_, to)

    def preload(
        self,
        minute: Iterable[float],
        day: Iterable[float],
        blocked_until: float = 0.0,
        *,
        own_minute: Iterable[float] = (),
        own_day: Iterable[float] = (),
    ) -> None:
        """Count sends this budget did not grant (other budgets', or an estimate of them);
        `own_*`: those of them that count for the interactive caps too."""
        self._minute = collections.deque(sorted([*self._minute, *minute]))
        self._day = collections.deque(sorted([*self._day, *day]))
        self._own_minute = collections.deque(sorted([*self._own_minute, *own_minute]))
        self._own_day = collections.deque(sorted([*self._own_day, *own_day]))
        self._blocked_until = max(self._blocked_until, blocked_until)

    def sent_at(self) -> tuple[list[float], list[float]]:
        """The send times still in the minute window and in the day window, oldest first."""
        self._prune(self._clock())
        return list(self._minute), list(self._day)

    def own_sent_at(self) -> tuple[list[float], list[float]]:
        """`sent_at` of the sends counted for the interactive caps."""
        self._prune(self._clock())
        return list(self._own_minute), list(self._own_day)

    async def block_for(self, seconds: float) -> None:
        until = self._clock() + seconds
        if until > self._blocked_until:
            self._blocked_until = until
            log.warning("whoop.budget.blocked", seconds=round(seconds, 1))

    async def status(self) -> dict[str, object]:
        now = self._clock()
        self._prune(now)
        return {
            "backend": "local",
            "minute_used": len(self._minute),
            "minute_limit": self.limits.per_minute,
            "day_used": len(self._day),
            "day_limit": self.limits.per_day,
            "blocked_s": round(max(0.0, self._blocked_until - now), 1),
        }
