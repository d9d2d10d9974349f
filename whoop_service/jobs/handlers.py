"""What each kind of job does. Webhook jobs fetch the one record by id; sync jobs sync a user."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import structlog
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import async_sessionmaker

from shared.time import Clock, utc_now
from whoop_service.db import tables as t
from whoop_service.db.connections import ConnectionRepository
from whoop_service.db.jobs import Job, JobRepository
from whoop_service.db.records import RecordRepository
from whoop_service.domain import DATA_TYPES, ConnectionStatus
from whoop_service.sync import mapping
from whoop_service.sync.engine import SyncEngine
from whoop_service.whoop.client import TokenSource, WhoopClient
from whoop_service.whoop.errors import WhoopNotFound
from whoop_service.whoop.ratelimit import Priority

log = structlog.get_logger()


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
    ) -> None:
        self._sessions = sessions
        self._client = client
        self._tokens = tokens
        self._engine = engine
        self._clock = clock
        # A job's WHOOP work ends inside its lease, so no other worker claims it while it runs.
        self._run_limit_s = run_limit_s

    def _deadline(self) -> float:
        return time.monotonic() + self._run_limit_s

    async def run(self, job: Job) -> str:
        if job.kind == "webhook":
            return await self._webhook(job.payload)
        if job.kind == "sync" and job.user_id:
            types = job.payload.get("data_types") or DATA_TYPES
            return await self._sync(job.user_id, types, Priority(job.priority))
        log.error("jobs.unknown_kind", kind=job.kind)
        return "unknown_kind"

    async def _sync(
        self, user_id: str, data_types: Sequence[str], priority: Priority
    ) -> str:
        async with self._sessions() as session:
            conn = await ConnectionRepository(session).get_connection(user_id)
        if conn is None or conn.status is not ConnectionStatus.CONNECTED:
            return "not_connected"
        report = await self._engine.sync_user(
            user_id, data_types=data_types, priority=priority, deadline=self._deadline()
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
            return (
                "unknown_user"  # not ours (or disconnected): acknowledged and dropped
            )
        if conn.status is not ConnectionStatus.CONNECTED:
            return (
                "needs_reauth"  # reconciliation catches up after the member reconnects
            )
        kind, _, action = str(event["type"]).partition(".")
        object_id = str(event["object_id"])
        if action == "deleted" and kind in ("sleep", "workout", "recovery"):
            return await self._delete(kind, object_id)
        if action == "updated" and kind in ("sleep", "workout"):
            return await self._fetch_and_store(conn.user_id, kind, object_id)
        if action == "updated" and kind == "recovery":
            return await self._fetch_recovery(conn.user_id, object_id)
        return "ignored"

    async def _fetch_and_store(self, user_id: str, kind: str, object_id: str) -> str:
        try:
            record = await self._client.fetch_one(
                kind,  # type: ignore[arg-type]
                object_id,
                self._tokens,
                user_id,
                priority=Priority.WEBHOOK,
                deadline=self._deadline(),
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

    async def _fetch_recovery(self, user_id: str, sleep_id: str) -> str:
        # v2 recovery events carry the sleep's id: sleep → its cycle → the cycle's recovery.
        try:
            sleep = await self._client.fetch_one(
                "sleep",
                sleep_id,
                self._tokens,
                user_id,
                priority=Priority.WEBHOOK,
                deadline=self._deadline(),
            )
            recovery = await self._client.fetch_one(
                "recovery_for_cycle",
                sleep.cycle_id,
                self._tokens,
                user_id,
                priority=Priority.WEBHOOK,
                deadline=self._deadline(),
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
