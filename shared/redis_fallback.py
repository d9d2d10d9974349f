"""Calls to Redis that give way to an in-process stand-in when Redis fails or hangs.

A failed or slow call costs one `op_timeout_s`, not every request: for the next `retry_s` Redis is
not asked at all (the caller uses its in-process stand-in), then it is tried again. The switch and
the return are logged once each, as `<name>.redis_unavailable` and `<name>.redis_restored`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog
from redis.exceptions import RedisError

log = structlog.get_logger()

T = TypeVar("T")

# What an unreachable, hung or confused Redis raises (or our own time limit on a call).
REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)


class RedisFallback:
    """Whether to ask Redis now, and the call itself, bounded in time."""

    def __init__(
        self,
        name: str,
        *,
        retry_s: float = 5.0,
        op_timeout_s: float = 0.25,
        errors: tuple[type[BaseException], ...] = REDIS_ERRORS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._name = name
        self._retry_s = retry_s
        self._op_timeout_s = op_timeout_s
        self._errors = errors
        self._monotonic = monotonic
        self._down_until: float | None = None  # None: Redis answered last time

    @property
    def available(self) -> bool:
        """False from a failed Redis call until one succeeds again."""
        return self._down_until is None

    async def call(self, make: Callable[[], Awaitable[T]]) -> tuple[bool, T | None]:
        """(True, the result), or (False, None) when Redis failed now or lately (not asked)."""
        if self._down_until is not None and self._monotonic() < self._down_until:
            return False, None
        try:
            async with asyncio.timeout(self._op_timeout_s):
                result = await make()
        except self._errors as exc:
            if self._down_until is None:
                log.warning(
                    f"{self._name}.redis_unavailable",
                    error_type=type(exc).__name__,
                    retry_s=self._retry_s,
                )
            self._down_until = self._monotonic() + self._retry_s
            return False, None
        if self._down_until is not None:
            log.info(f"{self._name}.redis_restored")
            self._down_until = None
        return True, result
