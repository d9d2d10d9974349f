"""Scheduled reconciliation: at each `SYNC_SCHEDULE` slot (UTC), one replica queues a sync per user.

The slot is claimed through a lease row, so N replicas queue the work once. Each user's job runs at
a moment spread over `spread`, at scheduled priority, so the slot never bursts the rate budget.
A slot syncs only the types whose last successful sync is older than `RECONCILE_AFTER`. Webhook
batches keep sleeps, recoveries and workouts fresh, so for a member whose webhooks arrive a slot
mostly refreshes the cycle (today's strain: WHOOP sends no cycle webhooks); a member whose webhooks
stopped gets every type once a day, which also catches the webhooks WHOOP gave up on.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, time, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import async_sessionmaker

from shared.time import Clock, utc_now
from whoop_service.db.connections import ConnectionRepository
from whoop_service.db.jobs import JobRepository
from whoop_service.db.records import RecordRepository
from whoop_service.domain import DATA_TYPES, granted_types
from whoop_service.whoop.ratelimit import Priority

log = structlog.get_logger()

RECONCILE_AFTER = {
    "cycle": timedelta(hours=12),
    "recovery": timedelta(hours=30),
    "sleep": timedelta(hours=30),
    "workout": timedelta(hours=30),
}


def due_types(last_success: dict[str, datetime | None], now: datetime) -> list[str]:
    """Pure: the types a slot syncs for a user, given when each last synced successfully."""
    return [
        kind
        for kind in DATA_TYPES
        if (at := last_success.get(kind)) is None or now - at >= RECONCILE_AFTER[kind]
    ]


def due_slots(slots: Sequence[str], now: datetime, grace: timedelta) -> list[datetime]:
    """Pure: the slot instants that have begun within the last `grace` (yesterday's included)."""
    out = []
    for day in (now.date() - timedelta(days=1), now.date()):
        for slot in slots:
            hh, mm = (int(x) for x in slot.split(":"))
            at = datetime.combine(day, time(hh, mm), tzinfo=now.tzinfo)
            if at <= now < at + grace:
                out.append(at)
    return out


class Scheduler:
    """Queues reconciliation syncs once per slot across every replica."""

    def __init__(
        self,
        sessions: async_sessionmaker[Any],
        slots: Sequence[str],
        *,
        clock: Clock = utc_now,
        spread: timedelta = timedelta(minutes=30),
        grace: timedelta = timedelta(minutes=50),
        on_queued: Callable[[], None] | None = None,
        poll_everything: bool = False,
    ) -> None:
        self._sessions = sessions
        self._slots = list(slots)
        self._clock = clock
        self._spread = spread
        self._grace = grace
        self._on_queued = on_queued
        # Every type for every user at every slot: the seed design, kept for the benchmark.
        self.poll_everything = poll_everything
        self.holder = f"{socket.gethostname()[:40]}:{uuid.uuid4().hex[:8]}"

    async def tick(self) -> int:
        """Queue the work of every due slot this replica wins; the number of jobs queued."""
        now = self._clock()
        queued = 0
        for slot in due_slots(self._slots, now, self._grace):
            queued += await self._run_slot(slot, now)
        if queued and self._on_queued:
            self._on_queued()
        return queued

    async def _run_slot(self, slot: datetime, now: datetime) -> int:
        name = f"reconcile:{slot.isoformat()}"
        async with self._sessions() as session:
            jobs = JobRepository(session)
            if not await jobs.take_lease(
                name, self.holder, now, slot + timedelta(days=2)
            ):
                return 0  # another replica has this slot
            scopes = await ConnectionRepository(session).list_connected_scopes()
            users = sorted(scopes)
            synced = await RecordRepository(session).last_successes()
            queued = 0
            for i, user_id in enumerate(users):
                types = (
                    list(DATA_TYPES)
                    if self.poll_everything
                    else due_types(synced.get(user_id, {}), now)
                )
                # A type the member did not grant is never requested.
                granted = granted_types(scopes[user_id])
                types = [k for k in types if k in granted]
                if not types:
                    continue
                queued += await jobs.enqueue(
                    "sync",
                    {"data_types": types},
                    priority=int(Priority.SCHEDULED),
                    now=now,
                    run_after=slot + self._spread * (i / max(1, len(users))),
                    user_id=user_id,
                    dedupe_key=f"{name}:{user_id}",
                )
            await session.commit()
        log.info(
            "jobs.slot_queued", slot=slot.isoformat(), users=len(users), queued=queued
        )
        return queued

    async def run_forever(self, stop: asyncio.Event, every_s: float = 30.0) -> None:
        while not stop.is_set():
            try:
                await self.tick()
            except Exception as exc:  # a missed tick is retried at the next one
                log.warning("jobs.tick_failed", error_type=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every_s)
