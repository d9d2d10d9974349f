"""The per-user limit on the public API (CONTRACT.md §9): `PUBLIC_RATE_LIMIT_PER_MINUTE` requests
per user (`sub`) per minute, counted after authentication.

Counted with `limits`' sliding-window counter: two counters per user, in Redis when the gateway has
`REDIS_URL` (one limit across replicas), in-process otherwise. The sliding window weighs the last
minute's count by how much of it is still inside the window, so a burst at a minute's edge does not
get two minutes' worth. A Redis that fails or hangs past `op_timeout_s` costs one call, not every
request: for the next `retry_s` this replica counts in-process (its own share is then the whole
limit), and the switch is logged once, as the Sahha cache does.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Final

import structlog
from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from redis.asyncio import Redis

from shared.errors import TooManyRequests
from shared.redis_fallback import REDIS_ERRORS, RedisFallback

log = structlog.get_logger()

KEY_PREFIX: Final = "gateway:ratelimit"
WINDOW_S: Final = 60


class RateLimited(TooManyRequests):
    """Too many requests from one user (429 `rate_limited` with `Retry-After`)."""


class PublicRateLimiter:
    """Counts each user's requests; `check` raises `RateLimited` past the limit."""

    def __init__(
        self,
        per_minute: int,
        *,
        redis: Redis | None = None,
        key_prefix: str = KEY_PREFIX,
        retry_s: float = 5.0,
        op_timeout_s: float = 0.5,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be >= 1")
        self._item: RateLimitItem = RateLimitItemPerMinute(per_minute)
        self._local = SlidingWindowCounterRateLimiter(MemoryStorage())
        self._shared: SlidingWindowCounterRateLimiter | None = None
        if redis is not None:
            # The gateway's own pool: one set of connections, closed with the app's client.
            storage = RedisStorage(
                "async+redis://",
                implementation="redispy",
                wrap_exceptions=True,
                key_prefix=key_prefix,
                # limits types its pass-through options as scalars; redis-py takes the pool.
                connection_pool=redis.connection_pool,  # type: ignore[arg-type]
            )
            self._shared = SlidingWindowCounterRateLimiter(storage)
        self._redis_guard = RedisFallback(
            "gateway.rate_limit",
            retry_s=retry_s,
            op_timeout_s=op_timeout_s,
            errors=(StorageError, *REDIS_ERRORS),
            monotonic=monotonic,
        )

    @property
    def per_minute(self) -> int:
        """Requests allowed per user per minute."""
        return self._item.amount

    @property
    def redis_available(self) -> bool:
        """False from a failed Redis call until one succeeds again."""
        return self._redis_guard.available

    async def check(self, user_id: str) -> None:
        """Count one request of `user_id`; raise `RateLimited` when it is over the limit."""
        retry_after_s = await self._hit(user_id)
        if retry_after_s is None:
            return
        log.info("gateway.rate_limited", user_id=user_id, retry_after_s=retry_after_s)
        raise RateLimited(
            f"More than {self._item.amount} requests in a minute; try again later.",
            headers={"Retry-After": str(retry_after_s)},
        )

    async def _hit(self, user_id: str) -> int | None:
        """None when allowed, else the seconds until the next request would be."""
        shared = self._shared
        if shared is not None:
            answered, result = await self._redis_guard.call(
                lambda: self._hit_with(shared, user_id)
            )
            if answered:
                return result
        return await self._hit_with(self._local, user_id)

    async def _hit_with(
        self, limiter: SlidingWindowCounterRateLimiter, user_id: str
    ) -> int | None:
        if await limiter.hit(self._item, user_id):
            return None
        stats = await limiter.get_window_stats(self._item, user_id)
        wait_s = math.ceil(stats.reset_time - time.time())
        return min(max(wait_s, 1), WINDOW_S)
