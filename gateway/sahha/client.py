"""SahhaClient: one user's Sahha scores and biomarkers, by local day, behind a short cache.

`fetch_days` never raises for upstream trouble; it answers with a status. When Sahha fails, the
last good answer for the same range (up to the cache's `stale_ttl_s`) is served as stale. Sahha
calls are not retried: the request deadline leaves no room, and the stale cache covers a blip.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final

import httpx2
import structlog

from gateway.sahha import days as day_rules
from gateway.sahha.api_client import SahhaApiClient, SahhaProfile
from gateway.sahha.cache import CachedDays, CacheKey, SahhaCache
from gateway.sahha.days import SahhaDay
from gateway.sahha.errors import SahhaError, SahhaStatus
from gateway.sahha.token import AccountTokens
from shared.time import Clock, utc_now

log = structlog.get_logger()

# A slow cache must not eat the Sahha budget: past this, go on without it.
CACHE_TIMEOUT_S: Final = 0.5

__all__ = ["SahhaClient", "SahhaDay", "SahhaProfile", "SahhaResult", "SahhaStatus"]


@dataclass(frozen=True)
class SahhaResult:
    """The Sahha part of a health answer: every requested day, or why there is none."""

    status: SahhaStatus
    days: dict[date, SahhaDay]
    fetched_at: datetime | None
    stale: bool


class SahhaClient:
    """Sahha's account API at `SAHHA_API_BASE_URL`, with an account token of its own."""

    def __init__(
        self,
        http: httpx2.AsyncClient,
        *,
        client_id: str,
        client_secret: str,
        cache: SahhaCache,
        clock: Clock = utc_now,
        timeout_s: float = 10.0,
    ) -> None:
        tokens = AccountTokens(
            http, client_id=client_id, client_secret=client_secret, clock=clock
        )
        self._api = SahhaApiClient(http, tokens)
        self._cache = cache
        self._clock = clock
        self._timeout_s = timeout_s

    async def fetch_days(
        self,
        external_id: str,
        start_date: date,
        end_date: date,
        *,
        deadline: float | None = None,
        force_refresh: bool = False,
    ) -> SahhaResult:
        """Scores and biomarkers of local days start..end; a fresh cache hit asks Sahha nothing
        (unless `force_refresh`: the cache then serves only when Sahha fails)."""
        if end_date < start_date:
            raise ValueError("end_date is before start_date")
        key = CacheKey(external_id, start_date, end_date)
        cached = await self._cache_get(key, deadline)
        age_s = None if cached is None else self._age_s(cached)
        fresh = age_s is not None and age_s < self._cache.ttl_s
        if cached is not None and fresh and not force_refresh:
            return SahhaResult("ok", cached.days, cached.fetched_at, stale=False)
        try:
            async with self._time_limit(deadline):
                scores, biomarkers = await self._fetch_items(
                    external_id, start_date, end_date
                )
        except TimeoutError:
            failure = SahhaError("timeout", "deadline")
        except SahhaError as exc:
            failure = exc
        else:
            fetched_at = self._clock().astimezone(UTC)
            days = _attribute(scores, biomarkers, start_date, end_date)
            await self._cache_put(key, CachedDays(days, fetched_at), deadline)
            return SahhaResult("ok", days, fetched_at, stale=False)
        return self._failed(failure, cached, age_s)

    async def fetch_profile(
        self, external_id: str, *, deadline: float | None = None
    ) -> SahhaProfile | None:
        """The profile, or None when Sahha knows no such externalId; SahhaError on failure."""
        try:
            async with self._time_limit(deadline):
                return await self._api.fetch_profile(external_id)
        except TimeoutError:
            raise SahhaError("timeout", "deadline") from None
        except SahhaError as exc:
            if exc.status == "not_connected":
                return None
            raise

    def _failed(
        self, failure: SahhaError, cached: CachedDays | None, age_s: float | None
    ) -> SahhaResult:
        # A profile gone at Sahha is news, not an outage: its old data is not served.
        stale = (
            cached
            if failure.status != "not_connected"
            and age_s is not None
            and age_s < self._cache.stale_ttl_s
            else None
        )
        log.warning(
            "sahha.fetch.failed",
            status=failure.status,
            error_type=failure.error_type,
            stale_served=stale is not None,
        )
        if stale is not None:
            return SahhaResult(failure.status, stale.days, stale.fetched_at, True)
        return SahhaResult(failure.status, {}, None, stale=False)

    def _time_limit(self, deadline: float | None) -> asyncio.Timeout:
        limit_s = self._timeout_s
        if deadline is not None:
            limit_s = min(limit_s, deadline - time.monotonic())
        if limit_s <= 0:
            # Already past: expire at once, as a call that never suspends would outrun a timeout.
            raise TimeoutError
        return asyncio.timeout(limit_s)

    async def _fetch_items(
        self, external_id: str, start_date: date, end_date: date
    ) -> tuple[list[Any], list[Any]]:
        try:
            async with asyncio.TaskGroup() as group:
                scores = group.create_task(
                    self._api.fetch_scores(external_id, start_date, end_date)
                )
                biomarkers = group.create_task(
                    self._api.fetch_biomarkers(external_id, start_date, end_date)
                )
        except BaseExceptionGroup as failed:
            # The first call to fail cancels the other, so there is one SahhaError to report.
            first = failed.exceptions[0]
            if isinstance(first, SahhaError):
                raise first from None
            raise
        return scores.result(), biomarkers.result()

    def _age_s(self, cached: CachedDays) -> float:
        return (self._clock() - cached.fetched_at).total_seconds()

    async def _cache_get(
        self, key: CacheKey, deadline: float | None
    ) -> CachedDays | None:
        try:
            async with asyncio.timeout(_cache_limit_s(deadline)):
                return await self._cache.get(key)
        except Exception as exc:
            # Whatever broke (Redis down, a bad entry), it costs the cache, never the answer.
            log.warning("sahha.cache.failed", op="get", error_type=type(exc).__name__)
            return None

    async def _cache_put(
        self, key: CacheKey, value: CachedDays, deadline: float | None
    ) -> None:
        try:
            async with asyncio.timeout(_cache_limit_s(deadline)):
                await self._cache.put(key, value)
        except Exception as exc:
            # Whatever broke, the fresh answer is still good: serve it uncached.
            log.warning("sahha.cache.failed", op="put", error_type=type(exc).__name__)


def _cache_limit_s(deadline: float | None) -> float:
    if deadline is None:
        return CACHE_TIMEOUT_S
    return max(0.0, min(CACHE_TIMEOUT_S, deadline - time.monotonic()))


def _attribute(
    scores: list[Any], biomarkers: list[Any], start_date: date, end_date: date
) -> dict[date, SahhaDay]:
    result = day_rules.to_days(scores, biomarkers, start_date, end_date)
    if result.dropped_scores or result.dropped_biomarkers:
        # Counts only, once per fetch: item values are health data and stay out of logs.
        log.warning(
            "sahha.items.dropped",
            scores=result.dropped_scores,
            biomarkers=result.dropped_biomarkers,
        )
    return result.days
