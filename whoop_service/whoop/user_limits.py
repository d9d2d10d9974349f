"""Per-user limits on interactive WHOOP work (CONTRACT.md §9): one user never spends what all share.

- A cooldown: at most one interactive sync (pull-to-refresh, a `force_refresh` read, a read's own
  sync) per user per `USER_SYNC_COOLDOWN_S`.
- A daily quota: a user's interactive WHOOP data requests per UTC day stop at
  `USER_WHOOP_REQUESTS_PER_DAY` (token calls are not counted).
- Connect flows per UTC day: each approved flow costs calls every user shares (the code exchange,
  the profile, the first backfill, a revoke), so a user looping connect and disconnect is bounded.

With Redis they are shared by every replica (a key with a TTL for the cooldown, a counter per UTC
day for the others). When Redis fails, each replica keeps an equal share of them in-process until
Redis answers again, as the rate budget does (`replicas` tells how many replicas share): the
quotas divided by the replicas, the cooldown multiplied by them. What was counted in Redis before
the outage is not known to the shares, so a user may get up to one more day's quota in all; the
app-wide budget, whose interactive caps hold regardless, bounds that.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from datetime import date, datetime, timedelta

import structlog
from redis.asyncio import Redis

from shared.redis_fallback import REDIS_ERRORS
from shared.time import Clock, utc_now
from whoop_service.whoop.budget import BudgetExhausted

log = structlog.get_logger()

# A day's counter outlives its day by one, for replicas whose clocks disagree a little.
_DAY_KEY_TTL_S = 2 * 86_400
# Local cooldowns are swept once this many accumulate (they are short-lived anyway).
_SWEEP_AT = 10_000

# KEYS: the user's counter for a fixed window. ARGV: the cap, the window in ms.
# Returns {the count after this one, 0}, or {-1, ms until the window ends} when it was full.
_WINDOW = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then return {-1, redis.call('PTTL', KEYS[1])} end
n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2])) end
return {n, 0}
"""

# KEYS: the user's counter for the day. ARGV: the quota, the key's TTL in seconds.
# Returns the count after this request, or -1 when the quota was already spent (not counted).
_SPEND = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then return -1 end
n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2])) end
return n
"""


class UserQuotaExceeded(BudgetExhausted):
    """The user's interactive WHOOP requests for today are spent; `wait_s` to the next UTC day."""


def seconds_to_next_utc_day(now: datetime) -> float:
    tomorrow = datetime.combine(now.date() + timedelta(days=1), datetime.min.time())
    return (tomorrow.replace(tzinfo=now.tzinfo) - now).total_seconds()


class UserLimits:
    """The cooldown and the daily quota of each user's interactive WHOOP work."""

    def __init__(
        self,
        cooldown_s: float,
        per_day: int,
        *,
        connects_per_day: int = 10,
        connects_per_window: int = 5,
        connect_window_s: float = 600.0,
        redis: Redis | None = None,
        prefix: str = "whoop:user",
        clock: Clock = utc_now,
        redis_timeout_s: float = 0.5,
        replicas: Callable[[], int | None] | None = None,
    ) -> None:
        """`replicas`: how many replicas share the limits (the budget's count), for the shares
        kept while Redis is down."""
        self.cooldown_s = cooldown_s
        self.per_day = per_day
        self.connects_per_day = connects_per_day
        self.connects_per_window = connects_per_window
        self.connect_window_s = connect_window_s
        self._redis = redis
        self._spend_script = redis.register_script(_SPEND) if redis else None
        self._window_script = redis.register_script(_WINDOW) if redis else None
        self._prefix = prefix
        self._clock = clock
        self._redis_timeout_s = redis_timeout_s
        self._replicas = replicas
        self._cooldown_until: dict[str, datetime] = {}
        self._windows: dict[
            str, tuple[int, datetime]
        ] = {}  # user: (count, window's end)
        self._spent: dict[str, dict[str, int]] = {}  # per counter, per user, today
        self._spent_day: date | None = None
        self._redis_failing = False

    async def start_sync(self, user_id: str) -> float:
        """Start the user's cooldown: 0 when an interactive sync may run now, else the seconds
        until one may."""
        if self.cooldown_s <= 0:
            return 0.0
        if self._redis is not None:
            try:
                async with asyncio.timeout(self._redis_timeout_s):
                    return await self._start_shared(user_id)
            except REDIS_ERRORS as exc:
                self._fell_back(exc)
        return self._start_local(user_id)

    async def cancel_sync(self, user_id: str) -> None:
        """Give back a cooldown just started for a sync that could not run."""
        self._cooldown_until.pop(user_id, None)
        if self._redis is not None:
            try:
                async with asyncio.timeout(self._redis_timeout_s):
                    await self._redis.delete(self._cooldown_key(user_id))
            except REDIS_ERRORS as exc:
                self._fell_back(exc)

    async def quota_wait_s(self, user_id: str) -> float:
        """0 while the user may still make interactive WHOOP requests today, else the seconds
        until the next UTC day."""
        spent, cap = await self._spent_today(user_id)
        if spent < cap:
            return 0.0
        return seconds_to_next_utc_day(self._clock())

    async def spend(self, user_id: str) -> None:
        """Count one interactive WHOOP data request; UserQuotaExceeded when none is left."""
        await self._count(user_id, "requests", self.per_day)

    async def start_connect(self, user_id: str) -> float:
        """Count one connect flow: 0 when it may start, else the seconds until one may (at most
        `connects_per_window` in `connect_window_s`, and `connects_per_day` a UTC day)."""
        wait_s = await self._window_count(user_id)
        if wait_s > 0:
            return wait_s
        try:
            await self._count(user_id, "connects", self.connects_per_day)
        except UserQuotaExceeded as exc:
            return exc.wait_s
        return 0.0

    async def _window_count(self, user_id: str) -> float:
        cap = self.connects_per_window
        if self._redis is not None and self._window_script is not None:
            try:
                async with asyncio.timeout(self._redis_timeout_s):
                    count, left_ms = await self._window_script(
                        keys=[f"{self._prefix}:{user_id}:connects-window"],
                        args=[cap, max(1, int(self.connect_window_s * 1000))],
                    )
                self._redis_failing = False
                return 0.0 if int(count) >= 0 else max(int(left_ms), 1) / 1000
            except REDIS_ERRORS as exc:
                self._fell_back(exc)
        now = self._clock()
        count, ends = self._windows.get(user_id, (0, now))
        if ends <= now:
            count, ends = 0, now + timedelta(seconds=self.connect_window_s)
        if count >= self._share(cap):
            return max((ends - now).total_seconds(), 0.001)
        if len(self._windows) >= _SWEEP_AT:
            self._windows = {u: w for u, w in self._windows.items() if w[1] > now}
        self._windows[user_id] = (count + 1, ends)
        return 0.0

    async def _count(self, user_id: str, counter: str, cap: int) -> None:
        if self._redis is not None and self._spend_script is not None:
            try:
                async with asyncio.timeout(self._redis_timeout_s):
                    count = await self._spend_script(
                        keys=[self._day_key(user_id, counter)],
                        args=[cap, _DAY_KEY_TTL_S],
                    )
                self._redis_failing = False
                if int(count) < 0:
                    raise UserQuotaExceeded(seconds_to_next_utc_day(self._clock()))
                return
            except REDIS_ERRORS as exc:
                self._fell_back(exc)
        counts = self._today(counter)
        spent = counts.get(user_id, 0)
        if spent >= self._share(cap):
            raise UserQuotaExceeded(seconds_to_next_utc_day(self._clock()))
        counts[user_id] = spent + 1

    # --- Redis --------------------------------------------------------------------------------

    def _cooldown_key(self, user_id: str) -> str:
        return f"{self._prefix}:{user_id}:cooldown"

    def _day_key(self, user_id: str, counter: str = "requests") -> str:
        return f"{self._prefix}:{user_id}:{counter}:{self._clock().date().isoformat()}"

    async def _start_shared(self, user_id: str) -> float:
        assert self._redis is not None
        key = self._cooldown_key(user_id)
        ms = max(1, int(self.cooldown_s * 1000))
        started = await self._redis.set(key, "1", nx=True, px=ms)
        self._redis_failing = False
        if started:
            return 0.0
        left_ms = await self._redis.pttl(key)
        # -2: it just expired, -1: no TTL (cannot happen here): try again in a moment.
        return max(int(left_ms), 1) / 1000

    async def _spent_today(self, user_id: str) -> tuple[int, int]:
        """(requests counted today, the quota they count against)."""
        if self._redis is not None:
            try:
                async with asyncio.timeout(self._redis_timeout_s):
                    value = await self._redis.get(self._day_key(user_id))
                self._redis_failing = False
                return int(value or 0), self.per_day
            except REDIS_ERRORS as exc:
                self._fell_back(exc)
        return self._today("requests").get(user_id, 0), self._share(self.per_day)

    def _fell_back(self, exc: BaseException) -> None:
        if not self._redis_failing:
            self._redis_failing = True
            log.warning(
                "whoop.user_limits.local_fallback", error_type=type(exc).__name__
            )

    # --- in-process ---------------------------------------------------------------------------

    def _sharers(self) -> int:
        """Replicas that share the limits while each keeps them in-process (1 without Redis)."""
        if self._redis is None or self._replicas is None:
            return 1
        return max(1, self._replicas() or 1)

    def _share(self, cap: int) -> int:
        return max(1, math.ceil(cap / self._sharers()))

    def _start_local(self, user_id: str) -> float:
        now = self._clock()
        until = self._cooldown_until.get(user_id)
        if until is not None and until > now:
            return max((until - now).total_seconds(), 0.001)
        if len(self._cooldown_until) >= _SWEEP_AT:
            self._cooldown_until = {
                u: t for u, t in self._cooldown_until.items() if t > now
            }
        cooldown_s = self.cooldown_s * self._sharers()
        self._cooldown_until[user_id] = now + timedelta(seconds=cooldown_s)
        return 0.0

    def _today(self, counter: str) -> dict[str, int]:
        """Today's in-process counts of `counter` per user (a new UTC day starts at zero)."""
        today = self._clock().date()
        if self._spent_day != today:
            self._spent = {}
            self._spent_day = today
        return self._spent.setdefault(counter, {})


def retry_after_header(wait_s: float) -> dict[str, str]:
    """`Retry-After` in whole seconds, never 0 while a wait remains."""
    return {"Retry-After": str(max(1, math.ceil(wait_s)))}
