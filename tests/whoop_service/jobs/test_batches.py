"""Webhook batches: a user's announced changes wait to be fetched together, one request per type.

The service runs with the production wait (`webhook_settle_s` = 1 h) and no background worker: the
tests move the clock and run what is due, and count what reached the WHOOP emulator.
"""

import asyncio
from contextlib import AsyncExitStack
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.whoop_service.harness import make_harness
from tests.whoop_service.sync.test_sync import stored
from whoop_service.db import tables as t
from whoop_service.db.jobs import JobRepository
from whoop_service.jobs.scheduler import RECONCILE_AFTER, Scheduler, due_types

SETTLE = timedelta(hours=1)


@pytest.fixture
async def harness(database_url, tmp_path):
    async with AsyncExitStack() as stack:
        yield await make_harness(
            stack,
            database_url,
            tmp_path,
            service_overrides={
                "webhook_settle_s": int(SETTLE.total_seconds()),
                "worker_enabled": False,
            },
        )


async def connect(harness, user_id="user-1") -> int:
    whoop_user = harness.whoop.add_user(tz_offset="+02:00", history_days=20).user_id
    resp = await harness.connect(user_id, sandbox_user_id=str(whoop_user))
    assert resp.status_code == 200, resp.text
    await harness.app.state.worker.run_once()
    harness.whoop.reset_counters()
    return whoop_user


async def run_due(harness) -> int:
    return await harness.app.state.worker.run_once()


async def announce(harness, whoop_user: int, *events: tuple[str, str]) -> None:
    """WHOOP sends these (type, object id) webhooks; the service takes each in."""
    for event_type, object_id in events:
        await harness.whoop.send_webhook(whoop_user, event_type, object_id)
    await run_due(harness)


async def queued_batches(harness) -> list[dict]:
    async with harness.app.state.sessions() as session:
        rows = await session.execute(
            select(t.jobs).where(
                t.jobs.c.dedupe_key.like("changes:%"), t.jobs.c.status == "queued"
            )
        )
        return [dict(r) for r in rows.mappings()]


def data_requests(harness) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in harness.whoop.request_log:
        if r.path.startswith("/developer"):
            out[r.path.removeprefix("/developer/v2")] = (
                out.get(r.path.removeprefix("/developer/v2"), 0) + 1
            )
    return out


async def test_a_records_creation_and_score_events_are_fetched_once(harness):
    whoop_user = await connect(harness)
    recovery = harness.whoop.records("recovery", whoop_user)[0]
    sleep_id = recovery["sleep_id"]
    t0 = harness.clock.now
    # Created: both events arrive at once; nothing is fetched yet.
    await announce(
        harness, whoop_user, ("sleep.updated", sleep_id), ("recovery.updated", sleep_id)
    )
    [batch] = await queued_batches(harness)
    assert batch["payload"]["data_types"] == ["cycle", "recovery", "sleep"]
    assert batch["run_after"] == t0 + SETTLE
    assert data_requests(harness) == {}

    # Scored 45 min later: the second event for the same records runs the batch 2 min after it.
    harness.clock.advance(minutes=45)
    harness.whoop.rescore("sleep", sleep_id, sleep_performance_percentage=41.0)
    harness.whoop.rescore("recovery", recovery["cycle_id"], recovery_score=17.0)
    await announce(
        harness, whoop_user, ("sleep.updated", sleep_id), ("recovery.updated", sleep_id)
    )
    [batch] = await queued_batches(harness)
    assert batch["run_after"] == t0 + timedelta(minutes=47)
    assert data_requests(harness) == {}

    harness.clock.advance(minutes=2)
    await run_due(harness)
    assert data_requests(harness) == {
        "/activity/sleep": 1,
        "/recovery": 1,
        "/cycle": 1,
    }
    sleeps = {r["id"]: r for r in await stored(harness, "sleep")}
    recoveries = {r["cycle_id"]: r for r in await stored(harness, "recovery")}
    assert sleeps[sleep_id]["sleep_performance_percentage"] == 41.0
    assert recoveries[recovery["cycle_id"]]["recovery_score"] == 17.0
    assert await queued_batches(harness) == []


async def test_an_event_after_the_batch_ran_starts_the_next_batch(harness):
    whoop_user = await connect(harness)
    workout = harness.whoop.records("workout", whoop_user)[0]
    await announce(harness, whoop_user, ("workout.updated", workout["id"]))
    harness.clock.advance(seconds=SETTLE.total_seconds())
    await run_due(harness)
    assert data_requests(harness) == {"/activity/workout": 1}
    await announce(harness, whoop_user, ("workout.updated", workout["id"]))
    [batch] = await queued_batches(harness)
    # A new batch: the record is not a repeat within it, so the full wait applies again.
    assert batch["run_after"] == harness.clock.now + SETTLE


async def test_an_edit_to_an_old_record_is_fetched_by_id(harness):
    whoop_user = await connect(harness)
    old = harness.whoop.records("sleep", whoop_user)[12]  # far outside the sync window
    harness.whoop.rescore("sleep", old["id"], sleep_performance_percentage=12.0)
    await announce(harness, whoop_user, ("sleep.updated", old["id"]))
    harness.clock.advance(seconds=SETTLE.total_seconds())
    await run_due(harness)
    requests = data_requests(harness)
    assert requests.pop("/activity/sleep") == 1  # the window
    assert requests == {f"/activity/sleep/{old['id']}": 1}  # and the one record
    rows = {r["id"]: r for r in await stored(harness, "sleep")}
    assert rows[old["id"]]["sleep_performance_percentage"] == 12.0


async def test_an_old_record_that_fails_holds_up_neither_the_others_nor_itself(harness):
    whoop_user = await connect(harness)
    sleeps = harness.whoop.records("sleep", whoop_user)
    failing, fine = sleeps[12]["id"], sleeps[14]["id"]  # both far outside the window
    for sleep_id, score in ((failing, 12.0), (fine, 14.0)):
        harness.whoop.rescore("sleep", sleep_id, sleep_performance_percentage=score)
        await announce(harness, whoop_user, ("sleep.updated", sleep_id))
    harness.whoop.fail_next(f"/v2/activity/sleep/{failing}", 500, count=100)
    harness.clock.advance(seconds=SETTLE.total_seconds())
    await run_due(harness)
    rows = {r["id"]: r for r in await stored(harness, "sleep")}
    assert rows[fine]["sleep_performance_percentage"] == 14.0
    assert rows[failing]["sleep_performance_percentage"] != 12.0
    async with harness.app.state.sessions() as session:
        job = (
            await session.execute(
                select(t.jobs).where(t.jobs.c.dedupe_key == "changes:user-1")
            )
        ).one()
    assert (job.status, job.attempts, job.last_error) == ("queued", 1, "records_failed")

    harness.whoop.faults.clear()
    harness.clock.now = job.run_after
    await run_due(harness)
    rows = {r["id"]: r for r in await stored(harness, "sleep")}
    assert rows[failing]["sleep_performance_percentage"] == 12.0


async def test_a_sync_that_ran_meanwhile_covers_the_batch(harness):
    whoop_user = await connect(harness)
    recovery = harness.whoop.records("recovery", whoop_user)[0]
    await announce(harness, whoop_user, ("recovery.updated", recovery["sleep_id"]))
    harness.clock.advance(minutes=5)
    pulled = await harness.client.post("/internal/sync/user-1")  # pull to refresh
    assert pulled.status_code == 200, pulled.text
    after_pull = sum(data_requests(harness).values())
    assert after_pull == 4  # one per type
    [batch] = await queued_batches(harness)
    assert batch["payload"]["data_types"] == []
    harness.clock.advance(seconds=SETTLE.total_seconds())
    await run_due(harness)
    assert sum(data_requests(harness).values()) == after_pull
    assert await queued_batches(harness) == []


async def test_an_event_during_a_sync_is_not_covered_by_it(harness):
    whoop_user = await connect(harness)
    workout = harness.whoop.records("workout", whoop_user)[0]
    await announce(harness, whoop_user, ("workout.updated", workout["id"]))
    async with harness.app.state.sessions() as session:
        # A sync that began before the batch last changed fetched too early to count.
        await JobRepository(session).cover_batch(
            "user-1", ["workout"], harness.clock.now - timedelta(seconds=1)
        )
        await session.commit()
    [batch] = await queued_batches(harness)
    assert batch["payload"]["data_types"] == ["workout"]


@pytest.mark.postgres
async def test_concurrent_events_of_one_user_join_one_batch(postgres_url, tmp_path):
    async with AsyncExitStack() as stack:
        harness = await make_harness(
            stack,
            postgres_url,
            tmp_path,
            service_overrides={"webhook_settle_s": 3600, "worker_enabled": False},
        )
        sessions, now = harness.app.state.sessions, harness.clock.now

        async def add(record: str) -> None:
            async with sessions() as session:
                await JobRepository(session).batch_changes(
                    "user-1",
                    ["sleep"],
                    record,
                    priority=1,
                    now=now,
                    settle=SETTLE,
                    repeat_settle=timedelta(minutes=2),
                )
                await session.commit()

        await asyncio.gather(*(add(f"sleep:{i}") for i in range(12)))
        [batch] = await queued_batches(harness)
        assert sorted(batch["payload"]["records"]) == sorted(
            f"sleep:{i}" for i in range(12)
        )


def test_a_slot_syncs_only_what_no_webhook_kept_fresh():
    from datetime import UTC, datetime

    now = datetime(2026, 11, 20, 20, 0, tzinfo=UTC)
    fresh = {k: now - timedelta(hours=1) for k in RECONCILE_AFTER}
    assert due_types(fresh, now) == []
    assert due_types({**fresh, "cycle": now - timedelta(hours=12)}, now) == ["cycle"]
    assert due_types({}, now) == ["cycle", "recovery", "sleep", "workout"]
    a_day_ago = {k: now - timedelta(hours=24) for k in RECONCILE_AFTER}
    # Webhooks arrive about daily, at a varying hour: a day-old sleep is not yet due...
    assert due_types(a_day_ago, now) == ["cycle"]
    # ...but one that webhooks have not refreshed for 30 h is.
    assert "sleep" in due_types({**fresh, "sleep": now - timedelta(hours=30)}, now)


async def test_the_scheduler_queues_per_user_what_is_due(harness):
    await connect(harness, "user-1")
    await connect(harness, "user-2")
    harness.clock.advance(hours=13)  # every cycle is due, nothing else
    slot = harness.clock.now.replace(minute=0, second=0, microsecond=0)
    hhmm = f"{slot:%H:%M}"
    scheduler = Scheduler(harness.app.state.sessions, [hhmm], clock=harness.clock)
    assert await scheduler.tick() == 2
    async with harness.app.state.sessions() as session:
        payloads = (
            (
                await session.execute(
                    select(t.jobs.c.payload).where(
                        t.jobs.c.dedupe_key.like("reconcile:%")
                    )
                )
            )
            .scalars()
            .all()
        )
    assert payloads == [{"data_types": ["cycle"]}] * 2

    seed = Scheduler(
        harness.app.state.sessions,
        [hhmm],
        clock=lambda: harness.clock.now + timedelta(days=1),
        poll_everything=True,
    )
    assert await seed.tick() == 2


async def test_a_read_fetches_what_a_pending_batch_announced(harness):
    whoop_user = await connect(harness)
    sleep = harness.whoop.records("sleep", whoop_user)[0]
    harness.whoop.rescore("sleep", sleep["id"], sleep_performance_percentage=33.0)
    await announce(harness, whoop_user, ("sleep.updated", sleep["id"]))
    day = harness.clock.now.date().isoformat()
    # Within every freshness threshold, yet the member sees the announced change at once.
    resp = await harness.client.get(
        "/internal/data/daily/user-1", params={"start_date": day, "end_date": day}
    )
    assert resp.status_code == 200, resp.text
    assert data_requests(harness) == {"/activity/sleep": 1}
    rows = {r["id"]: r for r in await stored(harness, "sleep")}
    assert rows[sleep["id"]]["sleep_performance_percentage"] == 33.0
    harness.clock.advance(seconds=SETTLE.total_seconds())
    await run_due(harness)
    assert data_requests(harness) == {"/activity/sleep": 1}, (
        "the batch had nothing left"
    )


async def test_a_change_never_lands_in_a_batch_a_worker_claimed_meanwhile(harness):
    """The batch is read and changed under a lock. A worker claiming it in between waits
    (SQLite) or passes it over (PostgreSQL), so the change is in what the worker runs or in the
    queued batch, never written into a job already running without it."""
    sessions = harness.app.state.sessions
    now = harness.clock.now

    async def add(session, record: str) -> None:
        await JobRepository(session).batch_changes(
            "user-1",
            ["sleep"],
            record,
            priority=1,
            now=now,
            settle=SETTLE,
            repeat_settle=SETTLE,
        )
        await session.commit()

    async def claim() -> list:
        async with sessions() as session:
            later = now + 2 * SETTLE
            jobs = await JobRepository(session).claim("w", later, later + SETTLE, 5)
            await session.commit()
            return jobs

    async with sessions() as session:
        await add(session, "sleep:a")
    read, go_on = asyncio.Event(), asyncio.Event()
    async with sessions() as session:
        execute = session.execute

        async def pausing_after_the_read(stmt, *args, **kwargs):
            result = await execute(stmt, *args, **kwargs)
            if stmt.is_select and not read.is_set():
                read.set()
                await go_on.wait()
            return result

        session.execute = pausing_after_the_read
        change = asyncio.create_task(add(session, "sleep:b"))
        await read.wait()
        claimed = asyncio.create_task(claim())
        await asyncio.sleep(0.5)  # without the lock, the claim commits meanwhile
        go_on.set()
        await change
    running = [r for job in await claimed for r in job.payload["records"]]
    async with sessions() as session:
        queued = (
            await session.execute(
                select(t.jobs.c.payload).where(
                    t.jobs.c.dedupe_key == "changes:user-1",
                    t.jobs.c.status == "queued",
                )
            )
        ).scalar_one_or_none()
    waiting = queued["records"] if queued else []
    assert sorted(running + waiting) == ["sleep:a", "sleep:b"]
