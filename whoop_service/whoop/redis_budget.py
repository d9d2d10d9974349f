"""The rate budget shared by every replica through Redis (when `REDIS_URL` is set).

One Lua script makes the decision atomically on Redis's own clock, so replicas with skewed clocks
still share one set of windows. The maths are those of `ratelimit.window_wait`: two sorted sets hold
the send times of the minute and the day; a priority's caps decide whether one more fits.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import structlog
from redis.asyncio import Redis

from whoop_service.whoop.budget import BudgetExhausted, Clock, Sleep
from whoop_service.whoop.ratelimit import BudgetLimits, Priority

log = structlog.get_logger()

# KEYS: minute zset, day zset, blocked-until key.
# ARGV: minute window ms, day window ms, minute cap, day cap, member.
# Returns 0 when a slot was taken, else the milliseconds until one may be free.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local blocked = tonumber(redis.call('GET', KEYS[3]) or '0')
if blocked > now then return blocked - now end
local mw, dw = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - mw)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - dw)
local function wait(key, window, cap)
  local n = redis.call('ZCARD', key)
  if n < cap then return 0 end
  local e = redis.call('ZRANGE', key, n - cap, n - cap, 'WITHSCORES')
  return math.max(1, tonumber(e[2]) + window - now)
end
local w = math.max(wait(KEYS[1], mw, tonumber(ARGV[3])), wait(KEYS[2], dw, tonumber(ARGV[4])))
if w > 0 then return w end
redis.call('ZADD', KEYS[1], now, ARGV[5])
redis.call('ZADD', KEYS[2], now, ARGV[5])
redis.call('PEXPIRE', KEYS[1], mw)
redis.call('PEXPIRE', KEYS[2], dw)
return 0
"""

# KEYS: blocked-until key. ARGV: milliseconds to block.
_BLOCK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local untl = now + tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if untl > cur then redis.call('SET', KEYS[1], untl, 'PX', tonumber(ARGV[1])) end
return untl
"""


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
    ) -> None:
        self.limits = limits
        self._redis = redis
        self._keys = [f"{prefix}:minute", f"{prefix}:day", f"{prefix}:blocked"]
        self._acquire = redis.register_script(_ACQUIRE)
        self._block = redis.register_script(_BLOCK)
        self._sleep = sleep
        self._monotonic = monotonic
        self.granted = 0

    async def acquire(self, priority: Priority, deadline: float | None = None) -> None:
        minute_cap, day_cap = self.limits.caps(priority)
        args: list[Any] = [
            int(self.limits.minute_window_s * 1000),
            int(self.limits.day_window_s * 1000),
            minute_cap,
            day_cap,
        ]
        while True:
            wait_ms = int(
                await self._acquire(keys=self._keys, args=[*args, uuid.uuid4().hex])
            )
            if wait_ms <= 0:
                self.granted += 1
                return
            wait_s = wait_ms / 1000
            if deadline is not None and self._monotonic() + wait_s > deadline:
                raise BudgetExhausted(wait_s)
            await self._sleep(wait_s)

    async def block_for(self, seconds: float) -> None:
        await self._block(keys=self._keys[2:], args=[max(1, int(seconds * 1000))])
        log.warning("whoop.budget.blocked", seconds=round(seconds, 1), backend="redis")

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
