"""DataReader: answers from the database first, refreshing from WHOOP only when it must and can.

A read syncs first when a type is older than its freshness threshold, when a webhook announced a
change that its batch has not fetched yet, when a recent day is missing (no more often than
`min_resync`), or when asked (`force_refresh`), and only if the caller's
deadline leaves time for it. When WHOOP fails the stored rows are served, marked stale, with a
warning. A synced user's read makes no WHOOP call.

One user's trouble stays theirs and costs WHOOP nothing on reads: a type whose scope was not
granted is never synced; a type that just failed at WHOOP is left alone while it backs off
(`plan.retry_at`); a user who must reconnect (`needs_reauth`, an unreadable token) is answered
from the database; a token refresh that cannot finish before the deadline goes on in the
background while this read answers from the database.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.contracts import (
    ConnectionState,
    CycleOut,
    DailyResponse,
    DataSource,
    Freshness,
    RecordsResponse,
    RecoveryOut,
    SleepOut,
    WhoopDayOut,
    WorkoutOut,
)
from shared.time import Clock, utc_now
from whoop_service import days as day_rules
from whoop_service.db.jobs import JobRepository
from whoop_service.db.records import RecordRepository
from whoop_service.domain import DATA_TYPES, SyncState, granted_types
from whoop_service.errors import (
    TokenRefreshPending,
    WhoopNeedsReauth,
    WhoopNotConnected,
)
from whoop_service.sync.engine import SyncEngine
from whoop_service.sync.plan import SyncPolicy, backing_off, stale_types
from whoop_service.whoop.budget import BudgetExhausted
from whoop_service.whoop.ratelimit import Priority
from whoop_service.whoop.user_limits import UserLimits

log = structlog.get_logger()

# Below this much time left, a read does not start WHOOP calls that could not finish.
MIN_SYNC_S = 1.0
SYNC_RUNNING = "A WHOOP refresh is already under way; showing stored data."
QUOTA_SPENT = "Today's WHOOP refreshes for this user are spent; showing stored data."
REAUTH_WARNING = "WHOOP access must be granted again; showing stored data."
OUT_MODELS: dict[str, Any] = {
    "cycle": CycleOut,
    "recovery": RecoveryOut,
    "sleep": SleepOut,
    "workout": WorkoutOut,
}


class DataReader:
    """Database-first reads of a user's WHOOP data."""

    def __init__(
        self,
        sessions: async_sessionmaker[Any],
        engine: SyncEngine,
        *,
        limits: UserLimits | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._sessions = sessions
        self._engine = engine
        # Without limits (tests of the read alone), reads sync whenever they must.
        self._limits = limits or UserLimits(0, 2**31)
        self._clock = clock

    @property
    def policy(self) -> SyncPolicy:
        return self._engine.policy

    async def daily(
        self,
        user_id: str,
        start_date: date,
        end_date: date,
        *,
        force_refresh: bool = False,
        deadline: float | None = None,
    ) -> DailyResponse:
        """The WHOOP part of `days` for local dates [start_date, end_date]."""
        # One session (one pooled connection) for everything a read that needs no sync does.
        async with self._sessions() as session:
            view = await self._user_view(session, user_id)
            found = await self._load_days(session, user_id, start_date, end_date)
        wanted = list(view.granted)
        refresh = self._to_refresh(wanted, view, force_refresh)
        if not refresh and self._recent_day_missing(found, view.states):
            refresh = self._not_backing_off(wanted, view)
        freshness, connection = await self._refresh(user_id, view, refresh, deadline)
        if freshness.data_source == "whoop_api":
            async with self._sessions() as session:
                found = await self._load_days(session, user_id, start_date, end_date)
        return DailyResponse(
            user_id=user_id,
            start_date=start_date,
            end_date=end_date,
            connection=connection,
            days=[_day_out(d) for d in found],
            **freshness.model_dump(),
        )

    async def records(
        self,
        kind: str,
        user_id: str,
        start: datetime,
        end: datetime,
        *,
        force_refresh: bool = False,
        deadline: float | None = None,
    ) -> RecordsResponse:
        """One type's records starting in [start, end) (recoveries: of cycles starting there)."""
        async with self._sessions() as session:
            view = await self._user_view(session, user_id)
        # This answer is about one type: its freshness is that type's.
        view = replace(view, granted=tuple(k for k in view.granted if k == kind))
        refresh = self._to_refresh(view.granted, view, force_refresh)
        freshness, connection = await self._refresh(user_id, view, refresh, deadline)
        rows = await self._load_records(kind, user_id, start, end)
        return RecordsResponse(
            user_id=user_id,
            data_type=kind,
            start=start,
            end=end,
            connection=connection,
            records=[OUT_MODELS[kind].model_validate(dict(r)) for r in rows],
            **freshness.model_dump(),
        )

    async def _user_view(self, session: AsyncSession, user_id: str) -> _UserView:
        """The connection, granted types, each type's sync state, and what a webhook announced
        but no sync has fetched yet (the member looks now: the batch need not wait)."""
        conn, scopes, states = await RecordRepository(
            session
        ).get_grant_and_sync_states(user_id)
        announced = await JobRepository(session).batch_types(user_id)
        status: ConnectionState = "not_connected" if conn is None else conn.value
        return _UserView(status, granted_types(scopes), states, announced)

    def _to_refresh(
        self, kinds: Sequence[str], view: _UserView, force: bool
    ) -> list[str]:
        """Of `kinds` (granted ones), those this read syncs first."""
        if force:
            return list(kinds)
        last = {k: s.last_success_at for k, s in view.states.items()}
        stale = set(stale_types(last, self._clock(), self.policy)) | set(view.announced)
        due = [k for k in DATA_TYPES if k in stale and k in kinds]
        return self._not_backing_off(due, view)

    def _not_backing_off(self, kinds: Sequence[str], view: _UserView) -> list[str]:
        """A type that just failed at WHOOP is not tried again by every read."""
        waiting = backing_off(view.states, self._clock(), self.policy)
        return [k for k in kinds if k not in waiting]

    def _stored(self, view: _UserView, warning: str | None = None) -> Freshness:
        """Answered from the database without trying WHOOP: stale when a granted type is past
        its freshness threshold (CONTRACT.md §5, §9)."""
        last = {k: s.last_success_at for k, s in view.states.items()}
        late = set(stale_types(last, self._clock(), self.policy)) & set(view.granted)
        return Freshness(
            data_source="database",
            last_sync_at=_oldest_success(view.states, view.granted),
            stale=bool(late),
            warning=(warning or "Showing stored WHOOP data.") if late else None,
        )

    def _recent_day_missing(
        self, found: list[day_rules.WhoopDay], states: dict[str, SyncState]
    ) -> bool:
        """A recent day without a cycle, and no sync attempt in the last `min_resync`."""
        now = self._clock()
        attempt = states.get("cycle")
        if (
            attempt
            and attempt.last_sync_at
            and now - attempt.last_sync_at < self.policy.min_resync
        ):
            return False
        oldest = now.date() - timedelta(days=self.policy.recent_days)
        # The latest local date anywhere (UTC+14): a day that has begun somewhere is "recent".
        newest = (now + timedelta(hours=14)).date()
        return any(d.cycle is None and oldest <= d.date <= newest for d in found)

    async def _refresh(
        self,
        user_id: str,
        view: _UserView,
        kinds: list[str],
        deadline: float | None,
    ) -> tuple[Freshness, ConnectionState]:
        """Sync `kinds` first if the deadline allows; the freshness and the connection state."""
        connection = view.connection
        last_sync = _oldest_success(view.states, view.granted)
        if connection == "not_connected":
            return Freshness(
                data_source="database", last_sync_at=last_sync, stale=False
            ), connection
        if not kinds:
            return self._stored(view), connection
        if connection == "needs_reauth":
            # No WHOOP call: only the member reconnecting helps.
            return _stale(last_sync, REAUTH_WARNING), connection
        if deadline is not None and deadline - time.monotonic() < MIN_SYNC_S:
            return _stale(
                last_sync, "No time left to refresh from WHOOP; showing stored data."
            ), connection
        if self._engine.is_syncing(user_id):
            # A job (the first backfill, a webhook batch) is fetching: answer, do not wait.
            return self._stored(view, SYNC_RUNNING), connection
        # CONTRACT.md §9: a user's refreshes are limited; the stored data answers meanwhile.
        if await self._limits.quota_wait_s(user_id) > 0:
            return self._stored(view, QUOTA_SPENT), connection
        if await self._limits.start_sync(user_id) > 0:
            cooling = "Refreshed moments ago; showing stored data."
            return self._stored(view, cooling), connection
        try:
            report = await self._engine.sync_user(
                user_id,
                data_types=kinds,
                priority=Priority.INTERACTIVE,
                deadline=deadline,
                wait_for_others=False,
            )
        except WhoopNotConnected:
            return _stale(last_sync, REAUTH_WARNING), "not_connected"
        except WhoopNeedsReauth:
            return _stale(last_sync, REAUTH_WARNING), "needs_reauth"
        except TokenRefreshPending:
            return self._stored(
                view, "A WHOOP token refresh is under way; showing stored data."
            ), connection
        except BudgetExhausted:
            # A job took the user's sync between the check above and now: it did not run.
            await self._limits.cancel_sync(user_id)
            return self._stored(view, SYNC_RUNNING), connection
        async with self._sessions() as session:
            fresh_states = await RecordRepository(session).list_sync_states(user_id)
        if report.status == "success":
            source: DataSource = "whoop_api"
            return Freshness(
                data_source=source,
                last_sync_at=_oldest_success(fresh_states, view.granted),
                stale=False,
            ), connection
        log.warning("whoop.read.stale", user_id=user_id, status=report.status)
        errors = {r.error for r in report.types.values()}
        return _stale(
            _oldest_success(fresh_states, view.granted),
            QUOTA_SPENT
            if "user_quota_exceeded" in errors
            else "WHOOP is unavailable; showing stored data.",
        ), connection

    async def _load_days(
        self, session: AsyncSession, user_id: str, start: date, end: date
    ) -> list[day_rules.WhoopDay]:
        lo, hi = day_rules.query_window(start, end)
        repo = RecordRepository(session)
        cycles, recoveries = await repo.list_cycles_with_recoveries(user_id, lo, hi)
        sleeps = await repo.list_by_start("sleep", user_id, lo, hi)
        workouts = await repo.list_by_start("workout", user_id, lo, hi)
        return day_rules.attribute(cycles, recoveries, sleeps, workouts, start, end)

    async def _load_records(
        self, kind: str, user_id: str, start: datetime, end: datetime
    ) -> Sequence[Mapping[Any, Any]]:
        async with self._sessions() as session:
            repo = RecordRepository(session)
            if kind != "recovery":
                return await repo.list_by_start(kind, user_id, start, end)
            _, recoveries = await repo.list_cycles_with_recoveries(user_id, start, end)
            return recoveries  # in the order of their cycles


@dataclass(frozen=True, slots=True)
class _UserView:
    """What a read knows of the user before deciding whether to sync."""

    connection: ConnectionState
    granted: tuple[str, ...]
    states: dict[str, SyncState]
    announced: list[str]


def _oldest_success(
    states: dict[str, SyncState], granted: Sequence[str] = DATA_TYPES
) -> datetime | None:
    """The data is at least this fresh: the oldest last success over every granted type."""
    values = [states[t].last_success_at if t in states else None for t in granted]
    if not values or any(v is None for v in values):
        return None
    return min(v for v in values if v)


def _stale(last_sync: datetime | None, warning: str) -> Freshness:
    return Freshness(
        data_source="stale_cache", last_sync_at=last_sync, stale=True, warning=warning
    )


def _day_out(day: day_rules.WhoopDay) -> WhoopDayOut:
    main = day.main_sleep
    return WhoopDayOut(
        date=day.date,
        cycle=CycleOut.model_validate(dict(day.cycle)) if day.cycle else None,
        recovery=RecoveryOut.model_validate(dict(day.recovery))
        if day.recovery
        else None,
        sleeps=[
            SleepOut.model_validate(
                {**dict(s), "main": main is not None and s["id"] == main["id"]}
            )
            for s in day.sleeps
        ],
        workouts=[WorkoutOut.model_validate(dict(w)) for w in day.workouts],
    )
