"""The Redis budget with a local share to fall back on: a Redis outage never stops WHOOP work.

While Redis answers, a replica takes its slots from the shared windows (`RedisBudget`) and beats a
heartbeat there, so it knows how many replicas share the app's limits. When a Redis call fails, it
keeps to an equal share of the limits in-process (`ratelimit.replica_share`, preloaded by
`ratelimit.fallback_preload` so that the shares and the shared sends before never add up past a
limit), and asks Redis again every `retry_s`. When Redis answers, the replica records there what it
sent meanwhile, then keeps to its share as well as the shared windows for one more minute window
(other replicas may still be on their shares), and then to the shared windows alone.

WHOOP's 429 and `X-RateLimit-*` handling stays the backstop for what no replica can know: a replica
that started during the outage, or Redis reachable from some replicas and not others.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
import time
import uuid
from enum import StrEnum
from types import TracebackType
from typing import NamedTuple

import structlog

from shared.redis_fallback import REDIS_ERRORS
from whoop_service.whoop.budget import BudgetExhausted, Clock, LocalBudget, Sleep
from whoop_service.whoop.ratelimit import (
    BudgetLimits,
    Priority,
    fallback_preload,
    replica_share,
)
from whoop_service.whoop.redis_budget import Heartbeat, RedisBudget, Usage

log = structlog.get_logger()


class Mode(StrEnum):
    SHARED = "shared"
    FALLBACK = "local_fallback"
    # Shared again, and still on the local share too for one minute window.
    REJOINING = "rejoining"


class _Seen(NamedTuple):
    at: float
    usage: Usage


class FailoverBudget:
    """The app-wide budget through Redis; a share of it in-process while Redis is unreachable."""

    def __init__(
        self,
        shared: RedisBudget,
        *,
        heartbeat_s: float = 10.0,
        retry_s: float = 5.0,
        redis_timeout_s: float = 1.0,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        monotonic: Clock = time.monotonic,
    ) -> None:
        self.limits = shared.limits
        self.replica_id = uuid.uuid4().hex
        self._mode = Mode.SHARED
        self.granted = 0
        self._shared = shared
        self._heartbeat_s = heartbeat_s
        self._retry_s = retry_s
        self._redis_timeout_s = redis_timeout_s
        self._clock = clock
        self._sleep = sleep
        self._monotonic = monotonic
        # A replica that died less than a minute window ago may still have sends in it.
        self._alive_s = max(self.limits.minute_window_s, 3 * heartbeat_s)
        self._counts: collections.deque[tuple[float, int]] = collections.deque()
        self._epoch: str | None = None
        self._data_lost = False  # Redis forgot the shared windows since the last rejoin
        self._seen: _Seen | None = None
        self._recent: collections.deque[float] = collections.deque()  # own sends
        self._offline: collections.deque[float] = collections.deque()  # not in Redis
        # The same, of the sends that count for the interactive caps.
        self._recent_own: collections.deque[float] = collections.deque()
        self._offline_own: collections.deque[float] = collections.deque()
        self._blocked_until = 0.0
        self._local: LocalBudget | None = None
        self._rejoined_at = 0.0
        self._share_of = 1  # replicas the last local share was for
        self._watcher: asyncio.Task[None] | None = None

    async def __aenter__(self) -> FailoverBudget:
        await self._beat()
        self._watcher = asyncio.create_task(self._watch(), name="whoop-budget-watch")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None

    @property
    def mode(self) -> Mode:
        """Where slots come from now."""
        rejoin_over = self._rejoined_at + self.limits.minute_window_s
        if self._mode is Mode.REJOINING and self._clock() >= rejoin_over:
            self._mode, self._local = Mode.SHARED, None
        return self._mode

    @property
    def replicas(self) -> int | None:
        """Most replicas seen alive at once lately (None: Redis never answered)."""
        now = self._clock()
        while self._counts and self._counts[0][0] <= now - self._alive_s:
            self._counts.popleft()
        return max((n for _, n in self._counts), default=None)

    # --- the budget -------------------------------------------------------------------------

    async def acquire(self, priority: Priority, deadline: float | None = None) -> None:
        while True:
            local = self._current_local()
            taken_at = None
            if local is not None:
                taken_at = await local.take(priority, deadline)
                if self._local is not local:
                    continue  # Redis failed again, or the rejoin ended, while this call waited
                if self.mode is Mode.FALLBACK:
                    self._sent(taken_at, offline=True, priority=priority)
                    return
            if await self._take_shared(priority, deadline):
                now = self._clock()
                if local is not None and taken_at is not None:
                    local.move(taken_at, now)  # the shared windows held the send up
                self._sent(now, offline=False, priority=priority)
                return

    async def _take_shared(self, priority: Priority, deadline: float | None) -> bool:
        """A shared slot (True), or False once Redis failed and the local share took over."""
        while True:
            try:
                async with asyncio.timeout(self._redis_timeout_s):
                    wait = await self._shared.try_acquire(priority)
            except REDIS_ERRORS as exc:
                self._fall_back(exc)
                return False
            if self._epoch is not None and self._shared.epoch != self._epoch:
                # Redis restarted and forgot the shared windows (this answer was on empty ones).
                self._data_lost = True
                self._fall_back(None)
                return False
            self._seen = _Seen(self._clock(), self._shared.usage)
            if wait <= 0:
                return True
            if deadline is not None and self._monotonic() + wait > deadline:
                raise BudgetExhausted(wait)
            await self._sleep(wait)
            if self.mode is Mode.FALLBACK:
                return False

    async def block_for(self, seconds: float) -> None:
        self._blocked_until = max(self._blocked_until, self._clock() + seconds)
        local = self._current_local()
        if local is not None:
            await local.block_for(seconds)
        if self.mode is Mode.FALLBACK:
            return
        try:
            async with asyncio.timeout(self._redis_timeout_s):
                await self._shared.block_for(seconds)
        except REDIS_ERRORS as exc:
            self._fall_back(exc)  # the local share starts blocked too

    async def record_sent(self) -> None:
        now = self._clock()
        local = self._current_local()
        if local is not None:
            await local.record_sent()
        if self.mode is Mode.FALLBACK:
            self._sent(now, offline=True)
            return
        try:
            async with asyncio.timeout(self._redis_timeout_s):
                await self._shared.record_sent()
        except REDIS_ERRORS as exc:
            self._fall_back(exc)
            if self._local is not local and self._local is not None:
                await self._local.record_sent()  # the share just built has not seen it
            self._sent(now, offline=True)
            return
        self._sent(now, offline=False)

    async def status(self) -> dict[str, object]:
        local = self._current_local()
        if local is None:
            try:
                async with asyncio.timeout(self._redis_timeout_s):
                    return {**await self._shared.status(), "mode": self.mode.value}
            except REDIS_ERRORS as exc:
                self._fall_back(exc)
                local = self._local
                assert local is not None
        return {
            **await local.status(),
            "backend": "redis",
            "mode": self.mode.value,
            "replicas": self.replicas,
        }

    # --- readiness --------------------------------------------------------------------------

    async def redis_state(self) -> str | None:
        """Readiness of Redis: None when it answers, else "unavailable" (the share takes over)."""
        try:
            async with asyncio.timeout(self._redis_timeout_s):
                await self._shared.ping()
        except REDIS_ERRORS as exc:
            self._fall_back(exc)
            return "unavailable"
        return None

    async def budget_state(self) -> str | None:
        """Readiness of the budget: None when shared, else "local_fallback" (still serving)."""
        if self.mode is not Mode.FALLBACK:
            await self.redis_state()
        return Mode.FALLBACK.value if self.mode is Mode.FALLBACK else None

    # --- switching --------------------------------------------------------------------------

    def _current_local(self) -> LocalBudget | None:
        """The local share in force (None: the shared windows alone)."""
        _ = self.mode  # ends a rejoin that is over
        return self._local

    def _sent(
        self, at: float, *, offline: bool, priority: Priority | None = None
    ) -> None:
        self.granted += 1
        logs = [(self._recent, self._offline)]
        if priority is not None and self.limits.own_caps(priority) is not None:
            logs.append((self._recent_own, self._offline_own))
        for recent, not_in_redis in logs:
            recent.append(at)
            _prune(recent, at - self.limits.minute_window_s)
            if offline:
                not_in_redis.append(at)
                _prune(not_in_redis, at - self.limits.day_window_s)

    def _fall_back(self, error: BaseException | None) -> None:
        """Keep to this replica's share of the limits, from now until Redis answers again."""
        if self.mode is Mode.FALLBACK:
            return
        if self._local is not None:
            # Failed again while rejoining: the share in force already counts every send of
            # this minute window; a fresh one would grant its headroom a second time.
            self._mode = Mode.FALLBACK
            log.warning(
                "whoop.budget.local_fallback",
                replicas=self._share_of,
                error_type=type(error).__name__ if error else "redis_data_lost",
            )
            return
        now = self._clock()
        replicas = self.replicas
        n = replicas or 1
        alone = replicas == 1
        seen = self._seen
        preload = fallback_preload(
            self.limits,
            n,
            alone=alone,
            own_minute=self._recent,
            day_used=seen.usage.day_used if seen else 0,
            unseen_s=now - seen.at if seen else 0.0,
            now=now,
        )
        share = replica_share(self.limits, n)
        local = LocalBudget(
            share, clock=self._clock, sleep=self._sleep, monotonic=self._monotonic
        )
        # Sends Redis never recorded (an earlier outage) are in no shared count: add them.
        own_minute, own_day = self._interactive_preload(share, n, alone=alone, now=now)
        local.preload(
            [*preload.minute, *([] if alone else self._offline)],
            [now] * preload.day + list(self._offline),
            self._blocked_until,
            own_minute=own_minute,
            own_day=own_day,
        )
        self._mode, self._local, self._share_of = Mode.FALLBACK, local, n
        log.warning(
            "whoop.budget.local_fallback",
            replicas=replicas,
            per_minute=share.per_minute,
            per_day=share.per_day,
            error_type=type(error).__name__ if error else "redis_data_lost",
        )

    def _interactive_preload(
        self, share: BudgetLimits, n: int, *, alone: bool, now: float
    ) -> tuple[list[float], list[float]]:
        """What the share's interactive caps start with, so that an outage never grants users'
        work a second share of any window (the interactive sends of the others are unseen)."""
        caps = share.own_caps(Priority.INTERACTIVE)
        whole = self.limits.own_caps(Priority.INTERACTIVE)
        if caps is None or whole is None:
            return [], []
        window = self.limits.minute_window_s
        if alone:
            minute = [t for t in self._recent_own if t > now - window]
            unseen = 0
        else:
            minute = [now] * caps[
                0
            ]  # the others may have filled it just before: wait it out
            last_look = self._seen.at if self._seen else now
            unseen = whole[0] * (math.floor(max(0.0, now - last_look) / window) + 1)
        seen_at = self._seen.at if self._seen else now
        seen_day = self._seen.usage.interactive_day_used if self._seen else 0
        # This replica's own sends since that look are in no count it has seen yet.
        own_since = sum(1 for t in self._recent_own if t > seen_at)
        day = min(caps[1], math.ceil(min(whole[1], seen_day + own_since + unseen) / n))
        return (
            [*minute, *([] if alone else self._offline_own)],
            [now] * day + list(self._offline_own),
        )

    async def _rejoin(self) -> None:
        """Record in Redis what this replica sent on its share, then use the shared windows."""
        local = self._local
        assert local is not None
        now, lost = self._clock(), self._data_lost
        window = self.limits.minute_window_s
        if lost:
            # Redis forgot every send: the share's preload stands in for the others'.
            minute, day = local.sent_at()
            own_minute, own_day = local.own_sent_at()
        else:
            minute = [t for t in self._offline if t > now - window]
            day = list(self._offline)
            own_minute = [t for t in self._offline_own if t > now - window]
            own_day = list(self._offline_own)
        self._mode, self._rejoined_at = Mode.REJOINING, now
        try:
            async with asyncio.timeout(self._redis_timeout_s):
                await self._shared.absorb(
                    [now - t for t in minute],
                    [now - t for t in day],
                    self._blocked_until - now,
                )
                if own_minute or own_day:
                    await self._shared.absorb(
                        [now - t for t in own_minute],
                        [now - t for t in own_day],
                        interactive=True,
                    )
        except REDIS_ERRORS as exc:
            self._fall_back(exc)
            return
        if self._mode is not Mode.REJOINING:
            # Another call failed meanwhile: what it sent offline is in no shared count yet.
            # Keeping what was just recorded too counts it twice at the next rejoin: safe.
            return
        self._offline.clear()  # sends since are in Redis: the mode was REJOINING
        self._offline_own.clear()
        self._data_lost = False
        log.info("whoop.budget.shared_again", recorded=len(day), redis_data_lost=lost)

    async def _beat(self) -> None:
        """One heartbeat: learn the replica count, and switch if Redis failed or came back."""
        try:
            async with asyncio.timeout(self._redis_timeout_s):
                beat: Heartbeat = await self._shared.heartbeat(
                    self.replica_id, self._alive_s
                )
        except REDIS_ERRORS as exc:
            self._fall_back(exc)
            return
        if beat.epoch != self._epoch:
            # Redis restarted since the last look and forgot the shared windows; or this is the
            # first look, after an outage since start-up: what was sent before is unknown.
            if self._epoch is not None or self.mode is Mode.FALLBACK:
                self._data_lost = True
            if self._epoch is not None and self.mode is not Mode.FALLBACK:
                self._fall_back(None)
            # Answers on this epoch are the shared windows again.
            self._epoch = beat.epoch
        now, replicas = self._clock(), beat.replicas
        if self.mode is Mode.FALLBACK:
            await self._rejoin()
            # The others may not have said they are alive yet: count them as before.
            replicas = max(replicas, self._share_of)
        if self.mode is not Mode.FALLBACK:
            self._seen = _Seen(now, beat.usage)
            self._counts.append((now, replicas))

    async def _watch(self) -> None:
        """Heartbeats while Redis answers; tries to rejoin every `retry_s` while it does not."""
        last = self._clock()
        while True:
            # Short naps, so that a switch to the local share is followed by a retry soon.
            await self._sleep(min(self._retry_s, self._heartbeat_s))
            pause = self._retry_s if self.mode is Mode.FALLBACK else self._heartbeat_s
            if self._clock() - last < pause:
                continue
            last = self._clock()
            try:
                await self._beat()
            except Exception:
                # The watcher must outlive a surprise; the next beat retries.
                log.exception("whoop.budget.watch_failed")


def _prune(times: collections.deque[float], before: float) -> None:
    while times and times[0] <= before:
        times.popleft()
