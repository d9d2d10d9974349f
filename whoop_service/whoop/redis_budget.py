"""The rate budget shared by every replica through Redis (when `REDIS_URL` is set).

One Lua script makes the decision atomically on Redis's own clock, so replicas with skewed clocks
still share one set of windows. The maths are those of `ratelimit.window_wait`: two sorted sets hold
the send times of the minute and the day; a priority's caps decide whether one more fits. Redis
errors propagate: `failover.FailoverBudget` turns them into a local share of the limits.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple

import structlog
from redis.asyncio import Redis

from whoop_service.whoop.budget import BudgetExhausted, Clock, Sleep
from whoop_service.whoop.ratelimit import BudgetLimits, Priority

log = structlog.get_logger()

# Milliseconds on Redis's clock, or on the caller's when it passes them (tests on virtual time).
_NOW = """
local function now_ms(arg)
  if arg ~= '' then return tonumber(arg) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""

# KEYS: minute zset, day zset, blocked-until key, epoch key, then the minute and day zsets of
# the sends counted apart for a priority's own caps (interactive).
# ARGV: minute window ms, day window ms, minute cap, day cap, member, now, then the own minute cap
# and own day cap (0: the priority has none).
# Returns {0 when a slot was taken, else the ms until one may be free; minute count; day count;
# epoch (see _HEARTBEAT) or nil; interactive day count}.
_ACQUIRE = (
    _NOW
    + """
local now = now_ms(ARGV[6])
local mw, dw = tonumber(ARGV[1]), tonumber(ARGV[2])
local own_m, own_d = tonumber(ARGV[7]), tonumber(ARGV[8])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - mw)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - dw)
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now - dw)
if own_m > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now - mw)
end
local function wait(key, window, cap)
  local n = redis.call('ZCARD', key)
  if n < cap then return 0 end
  local e = redis.call('ZRANGE', key, n - cap, n - cap, 'WITHSCORES')
  return math.max(1, tonumber(e[2]) + window - now)
end
local w = 0
local blocked = tonumber(redis.call('GET', KEYS[3]) or '0')
if blocked > now then
  w = blocked - now
else
  w = math.max(wait(KEYS[1], mw, tonumber(ARGV[3])), wait(KEYS[2], dw, tonumber(ARGV[4])))
  if own_m > 0 then
    w = math.max(w, wait(KEYS[5], mw, own_m), wait(KEYS[6], dw, own_d))
  end
end
if w == 0 then
  redis.call('ZADD', KEYS[1], now, ARGV[5])
  redis.call('ZADD', KEYS[2], now, ARGV[5])
  redis.call('PEXPIRE', KEYS[1], mw)
  redis.call('PEXPIRE', KEYS[2], dw)
  if own_m > 0 then
    redis.call('ZADD', KEYS[5], now, ARGV[5])
    redis.call('ZADD', KEYS[6], now, ARGV[5])
    redis.call('PEXPIRE', KEYS[5], mw)
    redis.call('PEXPIRE', KEYS[6], dw)
  end
end
return {w, redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[2]),
        redis.call('GET', KEYS[4]), redis.call('ZCARD', KEYS[6])}
"""
)

# KEYS: blocked-until key. ARGV: milliseconds to block, now.
_BLOCK = (
    _NOW
    + """
local now = now_ms(ARGV[2])
local untl = now + tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if untl > cur then redis.call('SET', KEYS[1], untl, 'PX', tonumber(ARGV[1])) end
return untl
"""
)

# KEYS: replicas zset, epoch key, minute zset, day zset, interactive day zset.
# ARGV: replica id, alive window ms, a new epoch, minute window ms, day window ms, now.
# Returns {replicas seen in the alive window, epoch, minute count, day count, interactive day
# count}. The epoch is set once
# and changes only when Redis lost its data (a restart without persistence, a flush).
_HEARTBEAT = (
    _NOW
    + """
local now = now_ms(ARGV[6])
local alive = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - alive)
redis.call('PEXPIRE', KEYS[1], alive)
local epoch = redis.call('GET', KEYS[2])
if not epoch then
  epoch = ARGV[3]
  redis.call('SET', KEYS[2], epoch)
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[4]))
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - tonumber(ARGV[5]))
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now - tonumber(ARGV[5]))
return {redis.call('ZCARD', KEYS[1]), epoch, redis.call('ZCARD', KEYS[3]),
        redis.call('ZCARD', KEYS[4]), redis.call('ZCARD', KEYS[5])}
"""
)

# KEYS: minute zset, day zset, blocked-until key.
# ARGV: minute window ms, day window ms, ms to block (0: none), member prefix, count of minute
# ages, now, then the ages in ms of sends to record: the minute window's, then the day window's.
_ABSORB = (
    _NOW
    + """
local now = now_ms(ARGV[6])
local mw, dw = tonumber(ARGV[1]), tonumber(ARGV[2])
local last_minute = 6 + tonumber(ARGV[5])
for i = 7, #ARGV do
  local at = now - tonumber(ARGV[i])
  local key, window = KEYS[2], dw
  if i <= last_minute then key, window = KEYS[1], mw end
  if at > now - window then redis.call('ZADD', key, at, ARGV[4] .. i) end
end
redis.call('PEXPIRE', KEYS[1], mw)
redis.call('PEXPIRE', KEYS[2], dw)
local block = tonumber(ARGV[3])
if block > 0 then
  local cur = tonumber(redis.call('GET', KEYS[3]) or '0')
  if now + block > cur then redis.call('SET', KEYS[3], now + block, 'PX', block) end
end
return 1
"""
)


class Usage(NamedTuple):
    """Sends in the shared windows, as of one answer from Redis."""

    minute_used: int
    day_used: int
    # Of the day's, those counted for the interactive caps (as of the last heartbeat).
    interactive_day_used: int = 0


class Heartbeat(NamedTuple):
    """What a replica learns each time it says it is alive."""

    replicas: int
    epoch: str
    usage: Usage


class RedisBudget:
    """The app-wide budget, shared by all replicas."""

    def __init__(
        self,
        redis: Redis,
        limits: BudgetLimits,
        *,
        prefix: str = "whoop:budget",
        sleep: Sleep = asyncio.sleep,
        monotonic: Clock = time.monotonic,
        clock: Clock | None = None,
    ) -> None:
        """`clock`: decide on this clock (seconds) instead of Redis's, for tests on virtual time."""
        self.limits = limits
        self._redis = redis
        self._keys = [f"{prefix}:minute", f"{prefix}:day", f"{prefix}:blocked"]
        self._registry = [f"{prefix}:replicas", f"{prefix}:epoch"]
        self._own_keys = [f"{prefix}:interactive:minute", f"{prefix}:interactive:day"]
        self._acquire = redis.register_script(_ACQUIRE)
        self._block = redis.register_script(_BLOCK)
        self._heartbeat = redis.register_script(_HEARTBEAT)
        self._absorb = redis.register_script(_ABSORB)
        self._sleep = sleep
        self._monotonic = monotonic
        self._clock = clock
        self.granted = 0
        self.usage = Usage(0, 0)
        self.epoch: str | None = None  # as of the last answer

    def _now(self) -> str:
        return "" if self._clock is None else str(int(self._clock() * 1000))

    def _windows_ms(self) -> list[int]:
        return [
            int(self.limits.minute_window_s * 1000),
            int(self.limits.day_window_s * 1000),
        ]

    async def try_acquire(self, priority: Priority) -> float:
        """One attempt: 0 when a slot was taken, else the seconds until one may be free."""
        minute_cap, day_cap = self.limits.caps(priority)
        own = self.limits.own_caps(priority) or (0, 0)
        args: list[Any] = [*self._windows_ms(), minute_cap, day_cap]
        wait_ms, minute, day, epoch, own_day = await self._acquire(
            keys=[*self._keys, self._registry[1], *self._own_keys],
            args=[*args, uuid.uuid4().hex, self._now(), *own],
        )
        self.usage = Usage(int(minute), int(day), int(own_day))
        self.epoch = _text(epoch)
        if int(wait_ms) <= 0:
            self.granted += 1
            return 0.0
        return int(wait_ms) / 1000

    async def acquire(self, priority: Priority, deadline: float | None = None) -> None:
        while True:
            wait_s = await self.try_acquire(priority)
            if wait_s <= 0:
                return
            if deadline is not None and self._monotonic() + wait_s > deadline:
                raise BudgetExhausted(wait_s)
            await self._sleep(wait_s)

    async def block_for(self, seconds: float) -> None:
        await self._block(
            keys=self._keys[2:], args=[max(1, int(seconds * 1000)), self._now()]
        )
        log.warning("whoop.budget.blocked", seconds=round(seconds, 1), backend="redis")

    async def heartbeat(self, replica_id: str, alive_s: float) -> Heartbeat:
        """Say `replica_id` is alive; count the replicas seen in the last `alive_s`."""
        replicas, epoch, minute, day, own_day = await self._heartbeat(
            keys=[*self._registry, *self._keys[:2], self._own_keys[1]],
            args=[
                replica_id,
                int(alive_s * 1000),
                uuid.uuid4().hex,
                *self._windows_ms(),
                self._now(),
            ],
        )
        self.usage = Usage(int(minute), int(day), int(own_day))
        self.epoch = _text(epoch)
        return Heartbeat(int(replicas), self.epoch or "", self.usage)

    async def absorb(
        self,
        minute_ages_s: Sequence[float],
        day_ages_s: Sequence[float],
        blocked_s: float = 0.0,
        *,
        interactive: bool = False,
    ) -> None:
        """Record sends the shared windows never saw (made `*_ages_s` ago), and a block;
        `interactive`: in the windows of the interactive caps instead."""
        ages = [int(a * 1000) for a in (*minute_ages_s, *day_ages_s)]
        await self._absorb(
            keys=[*self._own_keys, self._keys[2]] if interactive else self._keys,
            args=[
                *self._windows_ms(),
                max(0, int(blocked_s * 1000)),
                f"absorbed:{uuid.uuid4().hex}:",
                len(minute_ages_s),
                self._now(),
                *ages,
            ],
        )

    async def record_sent(self) -> None:
        await self.absorb([0.0], [0.0])

    async def ping(self) -> None:
        await self._redis.ping()

    async def status(self) -> dict[str, object]:
        minute, day = await asyncio.gather(
            self._redis.zcard(self._keys[0]), self._redis.zcard(self._keys[1])
        )
        return {
            "backend": "redis",
            "minute_used": int(minute),
            "minute_limit": self.limits.per_minute,
            "day_used": int(day),
            "day_limit": self.limits.per_day,
        }


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)
