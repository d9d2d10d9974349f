"""The short Sahha cache per (user, range): in-process, or shared through Redis.

Entries younger than `ttl_s` are served without asking Sahha; older ones, until `stale_ttl_s`, only
when Sahha fails (stale-if-error). Entries are JSON in both caches, so a caller can never change a
cached value by mutating what it was given, and an in-process entry stays compact. While Redis is
unreachable, the Redis cache keeps entries in-process and tries Redis again every few seconds.

What one user can make the gateway hold is bounded (§9): the in-process cache by the bytes of its
entries (`SAHHA_CACHE_MAX_BYTES`, least recently used out first), and in both caches an answer
larger than one entry's share is not kept at all; every Redis key expires.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final, Protocol, TypeVar
from urllib.parse import quote

import structlog
from redis.asyncio import Redis

from gateway.sahha.days import SahhaDay
from shared.redis_fallback import RedisFallback
from shared.time import Clock, require_aware, utc_now

log = structlog.get_logger()
T = TypeVar("T")

DEFAULT_TTL_S: Final = 60.0
DEFAULT_STALE_TTL_S: Final = 86_400.0
DEFAULT_MAX_BYTES: Final = 64 * 1024 * 1024
# One entry's share: 31 days of a member's scores and biomarkers are tens of KiB.
MAX_ENTRY_BYTES: Final = 1024 * 1024
# What an in-process entry costs besides its JSON: key, dates, tuple and the dict's slot, roughly.
ENTRY_OVERHEAD_BYTES: Final = 512
# Bump when the JSON shape changes; older entries then read as misses.
_FORMAT: Final = 1


@dataclass(frozen=True)
class CacheKey:
    """One user's requested range."""

    external_id: str
    start_date: date
    end_date: date


@dataclass(frozen=True)
class CachedDays:
    """A successful fetch: its days and when they were fetched from Sahha."""

    days: dict[date, SahhaDay]
    fetched_at: datetime


class SahhaCache(Protocol):
    """Where fetched days are kept; `get` answers None once an entry is past `stale_ttl_s`."""

    @property
    def ttl_s(self) -> float: ...

    @property
    def stale_ttl_s(self) -> float: ...

    async def get(self, key: CacheKey) -> CachedDays | None: ...

    async def put(self, key: CacheKey, value: CachedDays) -> None: ...


def dump_cached(value: CachedDays) -> str:
    """The JSON form of an entry (dates and datetimes as ISO strings)."""
    return json.dumps(
        {
            "format": _FORMAT,
            "fetched_at": require_aware(value.fetched_at).isoformat(),
            "days": [
                {
                    "date": day.date.isoformat(),
                    "scores": day.scores,
                    "biomarkers": day.biomarkers,
                }
                for day in value.days.values()
            ],
        },
        separators=(",", ":"),
    )


def load_cached(text: str | bytes) -> CachedDays | None:
    """An entry from its JSON form; None when written in another format."""
    body: Any = json.loads(text)
    if not isinstance(body, dict) or body.get("format") != _FORMAT:
        return None
    days = [
        SahhaDay(date.fromisoformat(d["date"]), d["scores"], d["biomarkers"])
        for d in body["days"]
    ]
    fetched_at = require_aware(datetime.fromisoformat(body["fetched_at"]))
    return CachedDays({day.date: day for day in days}, fetched_at)


class MemorySahhaCache:
    """An in-process LRU cache bounded in bytes, for one gateway process (no `REDIS_URL`).

    An entry costs its JSON plus `ENTRY_OVERHEAD_BYTES`; past `max_bytes` the least recently used
    go. An entry over `max_entry_bytes` (capped at a sixteenth of `max_bytes`) is not kept, and the
    older answer it replaces is dropped, so a huge answer can neither fill the cache nor leave a
    superseded one served.
    """

    def __init__(
        self,
        ttl_s: float = DEFAULT_TTL_S,
        stale_ttl_s: float = DEFAULT_STALE_TTL_S,
        max_bytes: int = DEFAULT_MAX_BYTES,
        *,
        max_entry_bytes: int = MAX_ENTRY_BYTES,
        clock: Clock = utc_now,
    ) -> None:
        if not 0 <= ttl_s <= stale_ttl_s or max_bytes < 1 or max_entry_bytes < 1:
            raise ValueError("need 0 <= ttl_s <= stale_ttl_s and byte bounds >= 1")
        self._ttl_s = ttl_s
        self._stale_ttl_s = stale_ttl_s
        self._max_bytes = max_bytes
        self._max_entry_bytes = min(max_entry_bytes, max(max_bytes // 16, 1))
        self._clock = clock
        self._entries: OrderedDict[CacheKey, tuple[datetime, str, int]] = OrderedDict()
        self._bytes = 0

    @property
    def ttl_s(self) -> float:
        """Age below which an entry is served without asking Sahha."""
        return self._ttl_s

    @property
    def stale_ttl_s(self) -> float:
        """Age past which an entry is gone."""
        return self._stale_ttl_s

    @property
    def size_bytes(self) -> int:
        """What the entries cost now, counted as they are bounded."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: CacheKey) -> CachedDays | None:
        """The entry, unless missing or past `stale_ttl_s`."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        fetched_at, text, _ = entry
        if (self._clock() - fetched_at).total_seconds() >= self._stale_ttl_s:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return load_cached(text)

    async def put(self, key: CacheKey, value: CachedDays) -> None:
        """Store an entry, evicting the least recently used beyond `max_bytes`."""
        text = dump_cached(value)
        size = len(text) + len(key.external_id) + ENTRY_OVERHEAD_BYTES
        self._drop(key)
        if size > self._max_entry_bytes:
            log.info(
                "sahha.cache.entry_too_large",
                size_bytes=size,
                max_entry_bytes=self._max_entry_bytes,
            )
            return
        self._entries[key] = (value.fetched_at, text, size)
        self._bytes += size
        while self._bytes > self._max_bytes:
            _, (_, _, evicted) = self._entries.popitem(last=False)
            self._bytes -= evicted

    def _drop(self, key: CacheKey) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry[2]


class RedisSahhaCache:
    """A cache shared by every gateway replica (`REDIS_URL`); Redis expires entries itself.

    A Redis that fails or hangs past `op_timeout_s` costs one call, not every request: for the
    next `retry_s` the cache is an in-process one (`fallback`), and the switch is logged once.
    A value over `max_entry_bytes` is not written (the key's older value is deleted), and every
    key is written with its expiry.
    """

    def __init__(
        self,
        redis: Redis,
        prefix: str = "gateway:sahha",
        ttl_s: float = DEFAULT_TTL_S,
        stale_ttl_s: float = DEFAULT_STALE_TTL_S,
        *,
        fallback: MemorySahhaCache | None = None,
        max_entry_bytes: int = MAX_ENTRY_BYTES,
        retry_s: float = 5.0,
        op_timeout_s: float = 0.25,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 <= ttl_s <= stale_ttl_s or stale_ttl_s <= 0:
            raise ValueError("need 0 <= ttl_s <= stale_ttl_s and stale_ttl_s > 0")
        self._redis = redis
        self._prefix = prefix.rstrip(":")
        self._ttl_s = ttl_s
        self._stale_ttl_s = stale_ttl_s
        self._fallback = (
            fallback if fallback is not None else MemorySahhaCache(ttl_s, stale_ttl_s)
        )
        self._max_entry_bytes = max_entry_bytes
        self._redis_guard = RedisFallback(
            "sahha.cache",
            retry_s=retry_s,
            op_timeout_s=op_timeout_s,
            monotonic=monotonic,
        )

    @property
    def ttl_s(self) -> float:
        """Age below which an entry is served without asking Sahha."""
        return self._ttl_s

    @property
    def stale_ttl_s(self) -> float:
        """Age past which Redis drops an entry."""
        return self._stale_ttl_s

    @property
    def redis_available(self) -> bool:
        """False from a failed Redis call until one succeeds again."""
        return self._redis_guard.available

    def key_of(self, key: CacheKey) -> str:
        """The Redis key of an entry (the externalId quoted: keys stay printable and `:`-split)."""
        external_id = quote(key.external_id, safe="")
        return (
            f"{self._prefix}:v{_FORMAT}:{external_id}:"
            f"{key.start_date.isoformat()}:{key.end_date.isoformat()}"
        )

    async def get(self, key: CacheKey) -> CachedDays | None:
        """The entry, unless missing or expired."""
        answered, text = await self._call(lambda: self._redis.get(self.key_of(key)))
        if not answered:
            return await self._fallback.get(key)
        return None if text is None else load_cached(text)

    async def put(self, key: CacheKey, value: CachedDays) -> None:
        """Store an entry until `stale_ttl_s`, unless it is over `max_entry_bytes`."""
        data = dump_cached(value).encode()
        redis_key = self.key_of(key)
        if len(data) > self._max_entry_bytes:
            log.info(
                "sahha.cache.entry_too_large",
                size_bytes=len(data),
                max_entry_bytes=self._max_entry_bytes,
            )
            await self._call(lambda: self._redis.delete(redis_key))
            # The fallback drops its own older copy and keeps nothing.
            await self._fallback.put(key, value)
            return
        px = max(1, int(self._stale_ttl_s * 1000))
        answered, _ = await self._call(lambda: self._redis.set(redis_key, data, px=px))
        if not answered:
            await self._fallback.put(key, value)

    async def _call(self, make: Callable[[], Awaitable[T]]) -> tuple[bool, T | None]:
        """(True, the result), or (False, None) when Redis failed now or lately (not asked)."""
        return await self._redis_guard.call(make)
