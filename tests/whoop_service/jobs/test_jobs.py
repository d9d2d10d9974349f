"""The job table and the slot scheduler, on SQLite and PostgreSQL."""

import asyncio
from contextlib import AsyncExitStack
from datetime import timedelta

from sqlalchemy import select

from tests.whoop_service.harness import make_harness
from tests.whoop_service.sync.test_sync import connect
from whoop_service.db import tables as t
from whoop_service.db.jobs import JobRepository
from whoop_service.jobs.scheduler import Scheduler, due_slots
from whoop_service.jobs.worker import Worker


async def add_strangers(session, now, n: int) -> None:
    """Webhook jobs for unknown members (no WHOOP call), in the caller's transaction."""
    repo = JobRepository(session)
    for i in range(n):
        trace = f"stranger-{i}"
        await repo.add_event(trace, 900_000 + i, "sleep.updated", "x", now)
        await repo.enqueue(
            "webhook",
            {
                "whoop_user_id": 900_000 + i,
                "object_id": "x",
                "type": "sleep.updated",
                "trace_id": trace,
            },
            priority=1,
            now=now,
        )


async def enqueue_strangers(harness, n: int) -> None:
    async with harness.app.state.sessions() as session:
        await add_strangers(session, harness.clock.now, n)
        await session.commit()


async def jobs(harness) -> list[dict]:
    async with harness.app.state.sessions() as session:
        return [dict(r) for r in (await session.execute(select(t.jobs))).mappings()]


def worker_for(app, harness) -> Worker:
    return Worker(app.state.sessions, app.state.worker._handlers, clock=harness.clock)


async def test_two_workers_on_one_database_run_every_job_once(harness):
    second, _ = await harness.add_instance()
    await enqueue_strangers(harness, 30)
    a, b = worker_for(harness.app, harness), worker_for(second, harness)
    # Both apps' own background workers race these two as well: four workers, two instances.
    await asyncio.gather(a.run_once(), b.run_once())
    for _ in range(100):
        if {j["status"] for j in await jobs(harness)} == {"done"}:
            break
        await asyncio.sleep(0.05)
    rows = await jobs(harness)
    assert len(rows) == 30
    assert {j["status"] for j in rows} == {"done"}
    assert all(j["attempts"] == 1 for j in rows), "each job was claimed exactly once"
    async with harness.app.state.sessions() as session:
        outcomes = (
            (await session.execute(select(t.webhook_events.c.outcome))).scalars().all()
        )
    assert outcomes == ["unknown_user"] * 30


async def test_a_dead_workers_job_is_claimed_again_after_its_lease(harness):
    now = harness.clock.now
    async with harness.app.state.sessions() as session:
        # Queued and claimed in one transaction: the harness's own worker cannot get it first.
        await add_strangers(session, now, 1)
        [job] = await JobRepository(session).claim(
            "crashed-worker", now, now + timedelta(minutes=5)
        )
        await session.commit()
    rescuer = worker_for(harness.app, harness)
    assert await rescuer.run_once() == 0, "the lease still holds"
    harness.clock.advance(minutes=6)
    assert await rescuer.run_once() == 1
    [row] = await jobs(harness)
    assert row["status"] == "done"
    assert row["attempts"] == 2
    async with harness.app.state.sessions() as session:
        assert not await JobRepository(session).complete(
            job.id, "crashed-worker", harness.clock.now
        )


async def test_a_job_that_keeps_failing_ends_dead_and_shows_in_the_sync_status(harness):
    await connect(harness)
    harness.whoop.fail_next("/v2/cycle", status=503, count=1000)
    async with harness.app.state.sessions() as session:
        await JobRepository(session).enqueue(
            "sync",
            {"data_types": ["cycle"]},
            priority=2,
            now=harness.clock.now,
            user_id="user-1",
        )
        await session.commit()
    worker = worker_for(harness.app, harness)
    for _ in range(5):
        await worker.run_once()
        harness.clock.advance(hours=1)  # past any backoff
    [job] = [
        j for j in await jobs(harness) if j["payload"] == {"data_types": ["cycle"]}
    ]
    assert job["status"] == "dead"
    assert job["attempts"] == 5
    assert job["last_error"] == "sync_failed"
    status = (await harness.client.get("/internal/sync/status/user-1")).json()
    assert status["jobs"]["dead"] == 1


def test_due_slots_cover_a_grace_period_and_midnight():
    from datetime import UTC, datetime

    at = datetime(2026, 11, 21, 0, 10, tzinfo=UTC)
    assert due_slots(["23:00"], at, timedelta(minutes=50)) == []
    assert due_slots(["23:30"], at, timedelta(minutes=50)) == [
        datetime(2026, 11, 20, 23, 30, tzinfo=UTC)
    ]
    assert due_slots(["00:00", "08:00"], at, timedelta(minutes=50)) == [
        datetime(2026, 11, 21, 0, 0, tzinfo=UTC)
    ]


async def test_a_slot_is_queued_once_across_replicas_and_spread(harness):
    second, _ = await harness.add_instance()
    await connect(harness, "user-1")
    await connect(harness, "user-2")
    harness.clock.advance(hours=31)
    # A webhook batch (fetched at once in tests) keeps user-1's workouts fresh.
    await harness.whoop.send_webhook(
        100001, "workout.updated", harness.whoop.records("workout", 100001)[0]["id"]
    )
    await harness.app.state.worker.wait_idle()
    slot = harness.clock.now.strftime("%H:%M")
    schedulers = [
        Scheduler(app.state.sessions, [slot], clock=harness.clock)
        for app in (harness.app, second)
    ]
    queued = await asyncio.gather(*(s.tick() for s in schedulers))
    assert sorted(queued) == [0, 2], "one replica queued the slot, the other nothing"
    assert await schedulers[0].tick() == 0, "the same slot is never queued twice"
    sync_jobs = sorted(
        (j for j in await jobs(harness) if j["kind"] == "sync" and j["priority"] == 2),
        key=lambda j: j["user_id"],
    )
    assert [j["priority"] for j in sync_jobs] == [2, 2]
    assert sync_jobs[0]["run_after"] != sync_jobs[1]["run_after"], (
        "spread over the slot"
    )
    assert all(
        j["run_after"] <= harness.clock.now + timedelta(minutes=30) for j in sync_jobs
    )
    by_user = {j["user_id"]: j["payload"]["data_types"] for j in sync_jobs}
    assert by_user["user-1"] == ["cycle", "recovery", "sleep"], (
        "user-1's workouts came with a webhook: not polled"
    )
    assert by_user["user-2"] == ["cycle", "recovery", "sleep", "workout"]


async def test_an_outcome_is_recorded_once_the_database_is_back(database_url, tmp_path):
    """A job that finished while the database was away is not left `running` until its lease."""
    async with AsyncExitStack() as stack:
        harness = await make_harness(
            stack, database_url, tmp_path, service_overrides={"worker_enabled": False}
        )
        await _outcome_recorded_after_outage(harness)


async def _outcome_recorded_after_outage(harness) -> None:
    sessions = harness.app.state.sessions
    away = {"calls": 0}

    def flaky_sessions():
        if away["calls"] > 0:
            away["calls"] -= 1
            raise ConnectionRefusedError("the database went away")
        return sessions()

    class Handlers:
        ran = 0

        async def run(self, job):
            Handlers.ran += 1
            away["calls"] = 2  # the next two writes fail
            return "ran"

    async with sessions() as session:
        await JobRepository(session).enqueue(
            "sync", {}, priority=1, now=harness.clock.now, user_id="nobody"
        )
        await session.commit()
    worker = Worker(
        flaky_sessions, Handlers(), clock=harness.clock, record_retry_s=0.01
    )
    await worker.run_once()
    [row] = [j for j in await jobs(harness) if j["user_id"] == "nobody"]
    assert Handlers.ran == 1
    assert row["status"] == "done"
    assert row["attempts"] == 1
    assert away["calls"] == 0, "both failed writes were retried"
