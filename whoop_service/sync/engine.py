"""SyncEngine: the only place where the WHOOP client and the repository meet; it owns the commits.

Each page is committed as it arrives (progress survives a failure); the watermark moves only when
a type's whole window is stored, so a failure mid-pagination leaves it where it was and the next
sync fetches the window again (upserts make that harmless). Syncs of one user run one at a time in
a process; across processes the upsert keys keep the rows single.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import async_sessionmaker

from shared.time import Clock, utc_now
from whoop_service.db.connections import ConnectionRepository
from whoop_service.db.jobs import JobRepository
from whoop_service.db.records import RecordRepository
from whoop_service.domain import DATA_TYPES, ConnectionStatus, SyncState, granted_types
from whoop_service.errors import (
    TokenRefreshPending,
    WhoopNeedsReauth,
    WhoopNotConnected,
    WhoopUnavailable,
    error_code,
)
from whoop_service.sync import mapping
from whoop_service.sync.plan import SyncPolicy, Window, plan_window
from whoop_service.whoop.budget import BudgetExhausted
from whoop_service.whoop.client import TokenSource, WhoopClient
from whoop_service.whoop.errors import WhoopError
from whoop_service.whoop.ratelimit import Priority

log = structlog.get_logger()

MAPPERS: dict[str, Callable[[Any, str, datetime], dict[str, Any]]] = {
    "cycle": mapping.cycle_row,
    "recovery": mapping.recovery_row,
    "sleep": mapping.sleep_row,
    "workout": mapping.workout_row,
}
KEYS = {"cycle": "id", "recovery": "cycle_id", "sleep": "id", "workout": "id"}


@dataclass
class TypeResult:
    """What syncing one data type did."""

    status: str = "success"  # success | partial | failed
    records: int = 0
    api_calls: int = 0
    error: str | None = None


@dataclass
class SyncReport:
    """What one sync of a user did, per data type; `not_granted` lists the asked-for types
    whose scope the member did not grant (never requested, not a failure)."""

    user_id: str
    types: dict[str, TypeResult] = field(default_factory=dict)
    not_granted: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        states = {r.status for r in self.types.values()}
        if states <= {"success"}:
            return "success"
        return "failed" if states == {"failed"} else "partial"

    @property
    def api_calls(self) -> int:
        return sum(r.api_calls for r in self.types.values())


def counts_as_failure(exc: BaseException) -> bool:
    """Whether WHOOP failed (reads back off), rather than our own budget or deadline."""
    return not isinstance(exc, BudgetExhausted | TokenRefreshPending)


class SyncEngine:
    """Incremental, database-first sync of a user's WHOOP records."""

    def __init__(
        self,
        sessions: async_sessionmaker[Any],
        client: WhoopClient,
        tokens: TokenSource,
        *,
        clock: Clock = utc_now,
        policy: SyncPolicy | None = None,
    ) -> None:
        self._sessions = sessions
        self.sessions = sessions
        self._client = client
        self._tokens = tokens
        self.clock = clock  # the service's clock, also for callers that judge freshness
        self.policy = policy or SyncPolicy()
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    def is_syncing(self, user_id: str) -> bool:
        """Whether a sync of the user is running in this process (a job, another request)."""
        lock = self._locks.get(user_id)
        return lock is not None and lock.locked()

    async def sync_user(
        self,
        user_id: str,
        *,
        data_types: Sequence[str] = DATA_TYPES,
        start: datetime | None = None,
        end: datetime | None = None,
        priority: Priority = Priority.INTERACTIVE,
        deadline: float | None = None,
        wait_for_others: bool = True,
    ) -> SyncReport:
        """Sync the given types the member granted.

        WhoopNotConnected/WhoopNeedsReauth end it for every type, and so does
        TokenRefreshPending (a token refresh outlasts the deadline) without marking any type
        failed: nothing failed at WHOOP. Another sync of the user running in this process is
        waited for (until the deadline), or with `wait_for_others=False` is BudgetExhausted at
        once: a read answers from the database rather than wait on a job.
        """
        lock = self._locks.get(user_id)
        if lock is None:
            lock = self._locks[user_id] = asyncio.Lock()
        if not wait_for_others and lock.locked():
            raise BudgetExhausted(0.0)
        wait_s = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            # Another sync of this user (a job waiting on the budget) must not outlast a deadline.
            async with asyncio.timeout(wait_s):
                await lock.acquire()
        except TimeoutError:
            raise BudgetExhausted(wait_s or 0.0) from None
        try:
            began = self.clock()
            report = SyncReport(user_id)
            granted = await self._granted_types(user_id)
            report.not_granted = [k for k in data_types if k not in granted]
            kinds = [k for k in data_types if k in granted]
            token_error = await self._check_token(user_id, deadline) if kinds else None
            for kind in kinds:
                report.types[kind] = await self._sync_type(
                    user_id, kind, start, end, priority, deadline, token_error
                )
            done = [k for k, r in report.types.items() if r.status == "success"]
            if done and start is None and end is None:
                # What this sync fetched, a queued webhook batch need not fetch again.
                async with self._sessions() as session:
                    await JobRepository(session).cover_batch(user_id, done, began)
                    await session.commit()
            log.info(
                "whoop.sync.done",
                user_id=user_id,
                status=report.status,
                api_calls=report.api_calls,
                records={k: r.records for k, r in report.types.items()},
            )
            return report
        finally:
            lock.release()

    async def _granted_types(self, user_id: str) -> tuple[str, ...]:
        """The types the member's grant lets us read; raises unless the user can sync."""
        async with self._sessions() as session:
            conn = await ConnectionRepository(session).get_connection(user_id)
        if conn is None:
            raise WhoopNotConnected("This user has not connected WHOOP.")
        if conn.status is ConnectionStatus.NEEDS_REAUTH:
            raise WhoopNeedsReauth("WHOOP access must be granted again.")
        return granted_types(conn.scopes)

    async def _check_token(
        self, user_id: str, deadline: float | None
    ) -> WhoopUnavailable | None:
        """Have a token before any type: a refresh that cannot finish in time stops the sync
        (TokenRefreshPending); one WHOOP failed is every type's failure, without more tries."""
        try:
            await self._tokens.get_access_token(user_id, deadline=deadline)
        except TokenRefreshPending:
            raise
        except WhoopUnavailable as exc:
            return exc
        return None

    async def _sync_type(
        self,
        user_id: str,
        kind: str,
        start: datetime | None,
        end: datetime | None,
        priority: Priority,
        deadline: float | None,
        token_error: WhoopUnavailable | None = None,
    ) -> TypeResult:
        now = self.clock()
        async with self._sessions() as session:
            repo = RecordRepository(session)
            previous = await repo.get_sync_state(user_id, kind)
            pending = await repo.oldest_pending_start(kind, user_id)
        window = plan_window(
            previous.watermark if previous else None,
            now,
            self.policy,
            oldest_pending=pending,
            requested_start=start,
            requested_end=end,
        )
        result = TypeResult()
        failed_at_whoop = False
        seen: set[Any] = set()
        try:
            if token_error is not None:
                raise token_error
            async for records in self._client.iter_pages(
                kind,  # type: ignore[arg-type]
                self._tokens,
                user_id,
                window.start,
                window.end,
                priority=priority,
                deadline=deadline,
            ):
                result.api_calls += 1
                rows = [MAPPERS[kind](r, user_id, now) for r in records]
                seen.update(row[KEYS[kind]] for row in rows)
                async with self._sessions() as session:
                    result.records += await RecordRepository(session).upsert(kind, rows)
                    await session.commit()
        except (WhoopNotConnected, WhoopNeedsReauth):
            raise
        except (WhoopError, BudgetExhausted, WhoopUnavailable) as exc:
            result.status = "partial" if result.api_calls else "failed"
            result.error = error_code(exc)
            failed_at_whoop = counts_as_failure(exc)
            log.warning(
                "whoop.sync.type_failed", user_id=user_id, kind=kind, error=result.error
            )
        await self._finish(
            user_id, kind, window, previous, result, seen, now, failed_at_whoop
        )
        return result

    async def _finish(
        self,
        user_id: str,
        kind: str,
        window: Window,
        previous: SyncState | None,
        result: TypeResult,
        seen: set[Any],
        now: datetime,
        failed_at_whoop: bool,
    ) -> None:
        watermark = previous.watermark if previous else None
        last_success = previous.last_success_at if previous else None
        failures = previous.failures if previous else 0
        if result.status == "success":
            failures = 0
        elif failed_at_whoop:
            failures += 1
        async with self._sessions() as session:
            repo = RecordRepository(session)
            if result.status == "success":
                last_success = now
                # Recoveries have no start of their own to bound them.
                if kind != "recovery":
                    await repo.delete_missing(
                        kind, user_id, window.start, window.end, seen, stored_before=now
                    )
                if window.incremental:
                    watermark = max(filter(None, (watermark, window.end)))
            await repo.save_sync_state(
                SyncState(
                    user_id=user_id,
                    data_type=kind,
                    watermark=watermark,
                    last_sync_at=now,
                    last_success_at=last_success,
                    status=result.status,
                    records_synced=result.records,
                    error=result.error,
                    failures=failures,
                )
            )
            await session.commit()
