"""JobRepository: webhook events, the job table and leases. Flushes, never commits.

Jobs are claimed with `FOR UPDATE SKIP LOCKED` on PostgreSQL, so replicas never take the same job;
SQLite serialises writers, so the same statement without it is safe there. A claim is a lease: a
job whose worker died is claimed again once `locked_until` has passed.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from whoop_service.db import tables as t
from whoop_service.db.session import select_for_update

# A batch names at most this many records (a bulk import is synced by window, not by id).
MAX_BATCH_RECORDS = 100
# Tries to join or start a user's batch before giving up (each lost only to a batch that was
# created and claimed in between).
BATCH_ROUNDS = 4


class BatchContended(Exception):
    """The user's batch kept being claimed before a change could join it; try again later."""


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed job."""

    id: int
    kind: str
    user_id: str | None
    payload: dict[str, Any]
    priority: int
    attempts: int
    max_attempts: int


class JobRepository:
    """Data access for jobs, webhook events and leases, inside the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._dialect = session.get_bind().dialect.name

    def _insert(self) -> Any:
        return postgresql.insert if self._dialect == "postgresql" else sqlite.insert

    async def add_event(
        self,
        trace_id: str,
        whoop_user_id: int,
        event_type: str,
        object_id: str,
        now: datetime,
    ) -> bool:
        """Store a webhook event; False when its `trace_id` was seen before."""
        stmt = (
            self._insert()(t.webhook_events)
            .values(
                trace_id=trace_id,
                whoop_user_id=whoop_user_id,
                event_type=event_type,
                object_id=object_id,
                received_at=now,
            )
            .on_conflict_do_nothing(index_elements=["trace_id"])
        )
        result = await self._session.execute(stmt)
        return bool(getattr(result, "rowcount", 0))

    async def finish_event(self, trace_id: str, outcome: str, now: datetime) -> None:
        await self._session.execute(
            update(t.webhook_events)
            .where(t.webhook_events.c.trace_id == trace_id)
            .values(processed_at=now, outcome=outcome[:32])
        )

    async def enqueue(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        priority: int,
        now: datetime,
        run_after: datetime | None = None,
        user_id: str | None = None,
        dedupe_key: str | None = None,
        max_attempts: int = 5,
    ) -> bool:
        """Add a job; False when a job with the same `dedupe_key` exists."""
        stmt = self._insert()(t.jobs).values(
            kind=kind,
            user_id=user_id,
            payload=payload,
            priority=priority,
            status="queued",
            attempts=0,
            max_attempts=max_attempts,
            run_after=run_after or now,
            dedupe_key=dedupe_key,
            created_at=now,
            updated_at=now,
        )
        if dedupe_key is not None:
            stmt = stmt.on_conflict_do_nothing(index_elements=["dedupe_key"])
        result = await self._session.execute(stmt)
        return bool(getattr(result, "rowcount", 0))

    async def batch_changes(
        self,
        user_id: str,
        data_types: Sequence[str],
        record: str,
        *,
        priority: int,
        now: datetime,
        settle: timedelta,
        repeat_settle: timedelta,
    ) -> None:
        """Add a change to the user's queued batch sync, or start one that runs after `settle`.

        WHOOP announces a record when it is created and again when it is scored; a second event
        for a record already in the batch means its final version is there, so the batch runs
        `repeat_settle` after it instead. One batch is queued per user (its `dedupe_key`); once it
        runs, the key passes to the next batch.
        """
        key = f"changes:{user_id}"
        batch = t.jobs.c.dedupe_key == key
        for _ in range(BATCH_ROUNDS):
            pick = select(t.jobs.c.id, t.jobs.c.payload, t.jobs.c.run_after).where(
                batch, t.jobs.c.status == "queued"
            )
            row = (await select_for_update(self._session, pick, t.jobs, batch)).first()
            if row is not None:
                payload = dict(row.payload)
                records = list(payload.get("records", []))
                wait = repeat_settle if record in records else settle
                payload["data_types"] = sorted(
                    {*payload.get("data_types", []), *data_types}
                )
                if record not in records and len(records) < MAX_BATCH_RECORDS:
                    records.append(record)
                payload["records"] = records
                await self._session.execute(
                    update(t.jobs)
                    .where(t.jobs.c.id == row.id)
                    .values(
                        payload=payload,
                        run_after=min(row.run_after, now + wait),
                        updated_at=now,
                    )
                )
                return
            # The previous batch is running or finished: the key moves to a new one.
            await self._session.execute(
                update(t.jobs)
                .where(t.jobs.c.dedupe_key == key, t.jobs.c.status != "queued")
                .values(dedupe_key=None)
            )
            created = await self.enqueue(
                "sync",
                {"data_types": sorted(set(data_types)), "records": [record]},
                priority=priority,
                now=now,
                run_after=now + settle,
                user_id=user_id,
                dedupe_key=key,
            )
            if created:
                return
            # Another worker created the batch in the meantime: join it.
        # Each round, another batch was created and then claimed before this one could join:
        # the caller's job runs again rather than drop the change.
        raise BatchContended(user_id)

    async def batch_types(self, user_id: str) -> list[str]:
        """The types the user's queued webhook batch has yet to fetch."""
        stmt = select(t.jobs.c.payload).where(
            t.jobs.c.dedupe_key == f"changes:{user_id}", t.jobs.c.status == "queued"
        )
        payload = (await self._session.execute(stmt)).scalar_one_or_none()
        return list(payload.get("data_types", [])) if payload else []

    async def cover_batch(
        self, user_id: str, data_types: Collection[str], synced_from: datetime
    ) -> None:
        """A sync that began at `synced_from` fetched `data_types`: the queued batch need not,
        as long as nothing was added to it after that sync began."""
        batch = t.jobs.c.dedupe_key == f"changes:{user_id}"
        pick = select(t.jobs.c.id, t.jobs.c.payload).where(
            batch, t.jobs.c.status == "queued", t.jobs.c.updated_at <= synced_from
        )
        result = await select_for_update(
            self._session, pick, t.jobs, batch, skip_locked=True
        )
        row = result.first()
        if row is None:
            return
        # The batch still runs: a named record outside the synced window is fetched by id then.
        left = sorted(set(row.payload.get("data_types", [])) - set(data_types))
        await self._session.execute(
            update(t.jobs)
            .where(t.jobs.c.id == row.id)
            .values(payload={**row.payload, "data_types": left})
        )

    async def claim(
        self, worker: str, now: datetime, lease_until: datetime, limit: int = 1
    ) -> list[Job]:
        """Take due jobs (and jobs whose worker's lease expired), most urgent first."""
        due = or_(
            and_(t.jobs.c.status == "queued", t.jobs.c.run_after <= now),
            and_(t.jobs.c.status == "running", t.jobs.c.locked_until < now),
        )
        pick = (
            select(t.jobs.c.id)
            .where(due)
            .order_by(t.jobs.c.priority, t.jobs.c.run_after)
            .limit(limit)
        )
        if self._dialect == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        stmt = (
            update(t.jobs)
            .where(t.jobs.c.id.in_(pick.scalar_subquery()))
            .values(
                status="running",
                locked_by=worker,
                locked_until=lease_until,
                attempts=t.jobs.c.attempts + 1,
                updated_at=now,
            )
            .returning(
                t.jobs.c.id,
                t.jobs.c.kind,
                t.jobs.c.user_id,
                t.jobs.c.payload,
                t.jobs.c.priority,
                t.jobs.c.attempts,
                t.jobs.c.max_attempts,
            )
        )
        rows = (await self._session.execute(stmt)).mappings().all()
        return [Job(**dict(r)) for r in rows]

    async def complete(self, job_id: int, worker: str, now: datetime) -> bool:
        """Mark done; False if the lease was lost (another worker took the job over)."""
        result = await self._session.execute(
            update(t.jobs)
            .where(
                t.jobs.c.id == job_id,
                t.jobs.c.locked_by == worker,
                t.jobs.c.status == "running",
            )
            .values(
                status="done",
                locked_by=None,
                locked_until=None,
                last_error=None,
                updated_at=now,
            )
        )
        return bool(getattr(result, "rowcount", 0))

    async def fail(
        self,
        job: Job,
        worker: str,
        error: str,
        now: datetime,
        retry_at: datetime | None,
    ) -> None:
        """Back to the queue at `retry_at`, or `dead` when there is none."""
        await self._session.execute(
            update(t.jobs)
            .where(t.jobs.c.id == job.id, t.jobs.c.locked_by == worker)
            .values(
                status="queued" if retry_at else "dead",
                run_after=retry_at or now,
                locked_by=None,
                locked_until=None,
                last_error=error[:255],
                updated_at=now,
            )
        )

    async def counts(self, user_id: str | None = None) -> dict[str, int]:
        """Jobs per status (of one user, if given)."""
        stmt = select(t.jobs.c.status, func.count()).group_by(t.jobs.c.status)
        if user_id is not None:
            stmt = stmt.where(t.jobs.c.user_id == user_id)
        return {
            status: int(n) for status, n in (await self._session.execute(stmt)).all()
        }

    async def pending_now(self, now: datetime) -> int:
        """Jobs due now or running (retries waiting for a later time do not count)."""
        stmt = select(func.count()).where(
            or_(
                and_(t.jobs.c.status == "queued", t.jobs.c.run_after <= now),
                t.jobs.c.status == "running",
            )
        )
        return int((await self._session.execute(stmt)).scalar_one())

    async def take_lease(
        self, name: str, holder: str, now: datetime, until: datetime
    ) -> bool:
        """Hold `name` until `until` unless someone else holds it now; True when we do."""
        insert = self._insert()(t.leases).values(
            name=name, holder=holder, expires_at=until
        )
        stmt = insert.on_conflict_do_update(
            index_elements=["name"],
            set_={"holder": holder, "expires_at": until},
            where=or_(t.leases.c.expires_at < now, t.leases.c.holder == holder),
        )
        result = await self._session.execute(stmt)
        return bool(getattr(result, "rowcount", 0))
