"""What each kind of job does.

A `*.updated` webhook adds its record to the user's batch, which syncs the announced types together
once the changes settle (one request per type, however many events); a `*.deleted` one deletes at
once. A sync job syncs a user; a batch then fetches by id any named record its window missed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import async_sessionmaker

from shared.time import Clock, utc_now
from whoop_service.db import tables as t
from whoop_service.db.connections import ConnectionRepository
from whoop_service.db.jobs import Job, JobRepository
from whoop_service.db.records import RecordRepository
from whoop_service.domain import DATA_TYPES, ConnectionStatus, granted_types
from whoop_service.errors import WhoopUnavailable
from whoop_service.sync import mapping
from whoop_service.sync.engine import SyncEngine
from whoop_service.sync.plan import plan_window
from whoop_service.whoop.budget import BudgetExhausted
from whoop_service.whoop.client import TokenSource, WhoopClient
from whoop_service.whoop.errors import WhoopError, WhoopNotFound
from whoop_service.whoop.ratelimit import Priority

log = structlog.get_logger()

# What a `*.updated` webhook asks the user's batch to sync. A recovery starts a new cycle and
# closes the last one (its final strain); WHOOP sends no cycle webhooks.
BATCH_TYPES: dict[str, tuple[str, ...]] = {
    "sleep": ("sleep",),
    "recovery": ("recovery", "cycle"),
    "workout": ("workout",),
}
# A record's second event (its score) runs the batch this soon.
REPEAT_SETTLE = timedelta(minutes=2)
# The types whose scopes a by-id fetch needs: a recovery is reached through its sleep.
FETCH_NEEDS: dict[str, tuple[str, ...]] = {
    "sleep": ("sleep",),
    "workout": ("workout",),
    "recovery": ("sleep", "recovery"),
}


class RetryLater(Exception):
    """The job should run again later (the reason is a stable word)."""


class JobHandlers:
    """Runs jobs; returns an outcome word, raises to be retried."""

    def __init__(
        self,
        sessions: async_sessionmaker[Any],
        client: WhoopClient,
        tokens: TokenSource,
        engine: SyncEngine,
        *,
        clock: Clock = utc_now,
        run_limit_s: float = 240.0,
        settle: timedelta = timedelta(hours=1),
    ) -> None:
        self._sessions = sessions
        self._client = client
        self._tokens = tokens
        self._engine = engine
        self._clock = clock
        # A job's WHOOP work ends inside its lease, so no other worker claims it while it runs.
        self._run_limit_s = run_limit_s
        # How long changes announced by webhooks wait, to be fetched together.
        self._settle = settle

    async def run(self, job: Job) -> str:
        # One deadline for all of the job's WHOOP work, so that it ends inside the lease.
        deadline = time.monotonic() + self._run_limit_s
        if job.kind == "webhook":
            return await self._webhook(job.payload)
        if job.kind == "sync" and job.user_id:
            # A batch whose types a read's sync already fetched has none left ([]).
            types = job.payload.get("data_types", DATA_TYPES)
            outcome = await self._sync(
                job.user_id, types, Priority(job.priority), deadline
            )
            if outcome == "synced" and job.payload.get("records"):
                await self._fetch_outside_window(
                    job.user_id, job.payload["records"], deadline
                )
            return outcome
        log.error("jobs.unknown_kind", kind=job.kind)
        return "unknown_kind"

    async def _sync(
        self,
        user_id: str,
        data_types: Sequence[str],
        priority: Priority,
        deadline: float,
    ) -> str:
        async with self._sessions() as session:
            conn = await ConnectionRepository(session).get_connection(user_id)
        if conn is None or conn.status is not ConnectionStatus.CONNECTED:
            return "not_connected"
        report = await self._engine.sync_user(
            user_id, data_types=data_types, priority=priority, deadline=deadline
        )
        if report.status != "success":
            raise RetryLater(f"sync_{report.status}")
        return "synced"

    async def _webhook(self, event: dict[str, Any]) -> str:
        outcome = await self._apply_event(event)
        async with self._sessions() as session:
            await JobRepository(session).finish_event(
                event["trace_id"], outcome, self._clock()
            )
            await session.commit()
        log.info("whoop.webhook.processed", type=event["type"], outcome=outcome)
        return outcome

    async def _apply_event(self, event: dict[str, Any]) -> str:
        async with self._sessions() as session:
            conn = await ConnectionRepository(session).get_connection_by_whoop_user(
                int(event["whoop_user_id"])
            )
        if conn is None:
            # Not ours (or disconnected): acknowledged and dropped.
            return "unknown_user"
        if conn.status is not ConnectionStatus.CONNECTED:
            # Reconciliation catches up after the member reconnects.
            return "needs_reauth"
        kind, _, action = str(event["type"]).partition(".")
        object_id = str(event["object_id"])
        if action == "deleted" and kind in ("sleep", "workout", "recovery"):
            return await self._delete(kind, object_id)
        if action == "updated" and kind in BATCH_TYPES:
            granted = granted_types(conn.scopes)
            types = tuple(k for k in BATCH_TYPES[kind] if k in granted)
            if not types:
                return "not_granted"  # the member did not grant it: never fetched
            async with self._sessions() as session:
                await JobRepository(session).batch_changes(
                    conn.user_id,
                    types,
                    f"{kind}:{object_id}",
                    priority=int(Priority.WEBHOOK),
                    now=self._clock(),
                    settle=self._settle,
                    repeat_settle=min(self._settle, REPEAT_SETTLE),
                )
                await session.commit()
            return "batched"
        return "ignored"

    async def _fetch_outside_window(
        self, user_id: str, records: Sequence[str], deadline: float
    ) -> None:
        """Fetch by id each named record the batch's windowed sync could not have seen: one
        not stored, or older than the window (a member editing last month's sleep). A record
        that fails does not hold up the others; the job runs again for it."""
        now = self._clock()
        async with self._sessions() as session:
            conn = await ConnectionRepository(session).get_connection(user_id)
            granted = set(granted_types(conn.scopes)) if conn else set()
            parsed = [
                (kind, object_id)
                for kind, object_id in (tuple(r.split(":", 1)) for r in records)
                if set(FETCH_NEEDS.get(kind, (kind,))) <= granted
            ]
            repo = RecordRepository(session)
            states = await repo.list_sync_states(user_id)
            starts = {
                kind: await repo.starts_of(
                    kind, user_id, [i for k, i in parsed if k == kind]
                )
                for kind in ("sleep", "workout")
            }
            starts["recovery"] = await repo.starts_of(
                "sleep", user_id, [i for k, i in parsed if k == "recovery"]
            )
        failed = 0
        for kind, object_id in parsed:
            state = states.get(kind)
            start = starts.get(kind, {}).get(object_id)
            if state and state.watermark and start is not None:
                window = plan_window(state.watermark, now, self._engine.policy)
                # A recovery's cycle begins before its sleep: keep a day's margin.
                margin = timedelta(days=1) if kind == "recovery" else timedelta(0)
                if start >= window.start + margin:
                    continue
            try:
                if kind == "recovery":
                    await self._fetch_recovery(user_id, object_id, deadline)
                else:
                    await self._fetch_and_store(user_id, kind, object_id, deadline)
            except (WhoopError, WhoopUnavailable, BudgetExhausted) as exc:
                failed += 1
                log.warning(
                    "whoop.batch.record_failed",
                    user_id=user_id,
                    kind=kind,
                    error_type=type(exc).__name__,
                )
        if failed:
            raise RetryLater("records_failed")

    async def _fetch_and_store(
        self, user_id: str, kind: str, object_id: str, deadline: float
    ) -> str:
        try:
            record = await self._client.fetch_one(
                kind,  # type: ignore[arg-type]
                object_id,
                self._tokens,
                user_id,
                priority=Priority.WEBHOOK,
                deadline=deadline,
            )
        except WhoopNotFound:
            return await self._delete(kind, object_id)  # gone again before we looked
        row = (mapping.sleep_row if kind == "sleep" else mapping.workout_row)(
            record, user_id, self._clock()
        )
        async with self._sessions() as session:
            await RecordRepository(session).upsert(kind, [row])
            await session.commit()
        return "stored"

    async def _fetch_recovery(
        self, user_id: str, sleep_id: str, deadline: float
    ) -> str:
        # v2 recovery events carry the sleep's id: sleep → its cycle → the cycle's recovery.
        try:
            sleep = await self._client.fetch_one(
                "sleep",
                sleep_id,
                self._tokens,
                user_id,
                priority=Priority.WEBHOOK,
                deadline=deadline,
            )
            recovery = await self._client.fetch_one(
                "recovery_for_cycle",
                sleep.cycle_id,
                self._tokens,
                user_id,
                priority=Priority.WEBHOOK,
                deadline=deadline,
            )
        except WhoopNotFound:
            return "not_found"
        now = self._clock()
        async with self._sessions() as session:
            repo = RecordRepository(session)
            await repo.upsert("sleep", [mapping.sleep_row(sleep, user_id, now)])
            await repo.upsert(
                "recovery", [mapping.recovery_row(recovery, user_id, now)]
            )
            await session.commit()
        return "stored"

    async def _delete(self, kind: str, object_id: str) -> str:
        async with self._sessions() as session:
            if kind in ("sleep", "recovery"):
                # A deleted sleep takes its recovery; a recovery event names its sleep.
                await session.execute(
                    delete(t.recoveries).where(t.recoveries.c.sleep_id == object_id)
                )
            if kind in ("sleep", "workout"):
                await RecordRepository(session).delete_ids(kind, [object_id])
            await session.commit()
        return "deleted"
