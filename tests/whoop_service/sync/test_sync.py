"""Incremental sync against the WHOOP emulator, on SQLite and PostgreSQL."""

import asyncio
from datetime import datetime, timedelta

from sqlalchemy import select

from whoop_service.db import tables as t
from whoop_service.db.records import TABLES

KINDS = ("cycle", "recovery", "sleep", "workout")


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def connect(harness, user_id="user-1", tz="-04:00") -> int:
    """Connect and let the first sync (started by connecting) finish."""
    whoop_user = harness.whoop.add_user(tz_offset=tz, history_days=45).user_id
    resp = await harness.connect(user_id, sandbox_user_id=str(whoop_user))
    assert resp.status_code == 200, resp.text
    await harness.app.state.worker.wait_idle()
    return whoop_user


def expected_ids(harness, whoop_user: int, kind: str, since: datetime) -> set:
    """The emulator's records that a window starting at `since` must hold."""
    if kind == "recovery":
        starts = {
            c["id"]: ts(c["start"]) for c in harness.whoop.records("cycle", whoop_user)
        }
        return {
            r["cycle_id"]
            for r in harness.whoop.records("recovery", whoop_user)
            if starts[r["cycle_id"]] >= since
        }
    return {
        r["id"]
        for r in harness.whoop.records(kind, whoop_user)
        if ts(r["start"]) >= since
    }


async def stored(harness, kind: str, user_id="user-1") -> list[dict]:
    table, _ = TABLES[kind]
    async with harness.app.state.sessions() as session:
        rows = await session.execute(select(table).where(table.c.user_id == user_id))
        return [dict(r) for r in rows.mappings()]


def ids(rows, kind):
    return {r["cycle_id" if kind == "recovery" else "id"] for r in rows}


async def sync(harness, user_id="user-1", **body):
    resp = await harness.client.post(f"/internal/sync/{user_id}", json=body or None)
    assert resp.status_code == 200, resp.text
    return resp.json()


async def test_first_sync_stores_exactly_the_emulators_last_30_days(harness):
    whoop_user = await connect(harness)
    since = harness.clock.now - timedelta(days=30)
    for kind in KINDS:
        rows = await stored(harness, kind)
        assert ids(rows, kind) == expected_ids(harness, whoop_user, kind, since), kind
        assert len(rows) == len(ids(rows, kind))
    status = (await harness.client.get("/internal/sync/status/user-1")).json()["sync"]
    assert {k: v["status"] for k, v in status.items()} == dict.fromkeys(
        KINDS, "success"
    )


async def test_syncing_again_adds_nothing_and_costs_one_request_per_type(harness):
    await connect(harness)
    before = {k: len(await stored(harness, k)) for k in KINDS}
    harness.clock.advance(minutes=5)
    harness.whoop.reset_counters()
    body = await sync(harness)
    assert body["status"] == "success"
    # Only the cycle in progress changes (its strain grows); nothing is added.
    assert body["synced"] == {"cycle": 1, "recovery": 0, "sleep": 0, "workout": 0}
    assert body["api_calls"] <= 4
    assert harness.whoop.count_requests("/developer") <= 4
    assert {k: len(await stored(harness, k)) for k in KINDS} == before


async def test_a_rescored_record_shows_its_new_score_after_the_next_sync(harness):
    whoop_user = await connect(harness)
    recovery = harness.whoop.records("recovery", whoop_user)[2]
    harness.clock.advance(minutes=5)
    harness.whoop.rescore("recovery", recovery["cycle_id"], recovery_score=12.0)
    body = await sync(harness)
    assert body["synced"]["recovery"] == 1
    row = next(
        r
        for r in await stored(harness, "recovery")
        if r["cycle_id"] == recovery["cycle_id"]
    )
    assert row["recovery_score"] == 12.0
    assert row["raw"]["score"]["recovery_score"] == 12.0


async def test_pending_records_become_scored_when_whoop_scores_them(harness):
    whoop_user = await connect(harness)
    pending = [
        r for r in await stored(harness, "sleep") if r["score_state"] == "PENDING_SCORE"
    ]
    if (
        not pending
    ):  # the clock sits where the last night is scored: make a fresh workout
        harness.whoop.add_workout(
            whoop_user,
            start=harness.clock.now - timedelta(minutes=50),
            end=harness.clock.now - timedelta(minutes=10),
        )
        await sync(harness)
        pending = [
            r
            for r in await stored(harness, "workout")
            if r["score_state"] == "PENDING_SCORE"
        ]
        kind = "workout"
    else:
        kind = "sleep"
    assert pending, "a provisional record is stored"
    harness.clock.advance(hours=2)
    await sync(harness)
    rows = {r["id"]: r for r in await stored(harness, kind)}
    for p in pending:
        assert rows[p["id"]]["score_state"] == "SCORED"
        assert rows[p["id"]]["updated_at"] > p["updated_at"]


async def test_a_failure_on_page_two_keeps_the_watermark_and_the_next_sync_completes(
    harness,
):
    whoop_user = harness.whoop.add_user(tz_offset="+12:00", history_days=45).user_id
    harness.whoop.fail_next("/v2/activity/sleep", status=500, count=4, on_page=2)
    resp = await harness.connect("user-1", sandbox_user_id=str(whoop_user))
    assert resp.status_code == 200
    await harness.app.state.worker.wait_idle()
    status = (await harness.client.get("/internal/sync/status/user-1")).json()["sync"]
    assert status["sleep"]["status"] == "partial"
    assert status["sleep"]["error"] == "whoop_server_error"
    assert status["sleep"]["needs_sync"] is True
    async with harness.app.state.sessions() as session:
        state = (
            (
                await session.execute(
                    select(t.sync_state).where(t.sync_state.c.data_type == "sleep")
                )
            )
            .mappings()
            .one()
        )
    assert state["watermark"] is None, "the watermark did not move"
    first_page = await stored(harness, "sleep")
    assert 0 < len(first_page) <= 25, "page one was kept"
    body = await sync(harness)
    assert body["status"] == "success"
    rows = await stored(harness, "sleep")
    since = harness.clock.now - timedelta(days=30)
    assert ids(rows, "sleep") == expected_ids(harness, whoop_user, "sleep", since)
    assert len(rows) == len(ids(rows, "sleep")), "no duplicates"


async def test_a_record_deleted_at_whoop_leaves_with_the_next_sync(harness):
    await connect(harness)
    workouts = await stored(harness, "workout")
    gone = max(workouts, key=lambda w: w["start"])
    harness.whoop.delete_record("workout", gone["id"])
    harness.clock.advance(minutes=5)
    await sync(harness)
    assert gone["id"] not in ids(await stored(harness, "workout"), "workout")
    assert len(await stored(harness, "workout")) == len(workouts) - 1


async def test_sync_of_an_unknown_user_is_404_and_bad_bodies_422(harness):
    resp = await harness.client.post("/internal/sync/nobody")
    assert resp.status_code == 404
    assert resp.json()["code"] == "not_connected"
    await connect(harness)
    for body in (
        {"data_types": ["steps"]},
        {"end_date": "2026-11-01"},
        {"bogus": 1},
        {"start_date": "2026-11-10", "end_date": "2026-11-01"},
    ):
        resp = await harness.client.post("/internal/sync/user-1", json=body)
        assert resp.status_code == 422, body


async def test_a_sync_without_time_left_calls_no_whoop_and_marks_nothing_failed(
    harness,
):
    """Found by the fuzzer: `X-Request-Deadline-Ms: 0` used to start calls doomed to time out."""
    await connect(harness)
    before = harness.whoop.count_requests()
    resp = await harness.client.post(
        "/internal/sync/user-1", headers={"X-Request-Deadline-Ms": "0"}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "user_id": "user-1",
        "synced": dict.fromkeys(KINDS, 0),
        "api_calls": 0,
        "status": "failed",
        "errors": dict.fromkeys(KINDS, "no_time_left"),
    }
    assert harness.whoop.count_requests() == before
    status = (await harness.client.get("/internal/sync/status/user-1")).json()["sync"]
    assert {k: v["status"] for k, v in status.items()} == dict.fromkeys(
        KINDS, "success"
    )


async def test_a_sync_while_another_of_the_user_runs_past_the_deadline_is_409(harness):
    """A pull to refresh during a long job sync of the same user used to answer 500."""
    await connect(harness)
    engine = harness.app.state.sync_engine
    running = engine._locks["user-1"] = asyncio.Lock()  # the sync under way holds it
    async with running:
        resp = await harness.client.post(
            "/internal/sync/user-1", headers={"X-Request-Deadline-Ms": "1500"}
        )
    assert resp.status_code == 409, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["code"] == "sync_in_progress"


async def test_an_explicit_range_syncs_only_that_range(harness):
    whoop_user = await connect(harness)
    body = await sync(
        harness,
        data_types=["cycle"],
        start_date=(harness.clock.now - timedelta(days=44)).date().isoformat(),
        end_date=(harness.clock.now - timedelta(days=40)).date().isoformat(),
    )
    assert body["status"] == "success"
    assert body["synced"]["cycle"] >= 4  # older than the first 30 days: new rows
    assert set(body["synced"]) == {"cycle"}
    assert (
        len(await stored(harness, "cycle"))
        == len(
            expected_ids(
                harness, whoop_user, "cycle", harness.clock.now - timedelta(days=30)
            )
        )
        + body["synced"]["cycle"]
    )


async def test_rows_stored_after_a_sync_began_are_not_deleted_by_it(harness):
    from whoop_service.db.records import RecordRepository

    await connect(harness)
    sync_start = harness.clock.now + timedelta(minutes=1)  # a later sync than the first
    rows = await stored(harness, "workout")
    newer = {
        **rows[0],
        "id": "00000000-0000-4000-8000-00000000beef",
        "synced_at": sync_start + timedelta(seconds=1),
    }
    async with harness.app.state.sessions() as session:
        repo = RecordRepository(session)
        await repo.upsert("workout", [newer])
        deleted = await repo.delete_missing(
            "workout",
            "user-1",
            sync_start - timedelta(days=30),
            sync_start + timedelta(days=1),
            keep=set(),
            stored_before=sync_start,
        )
        await session.commit()
    assert deleted == len(rows), "every older row not seen went"
    assert [r["id"] for r in await stored(harness, "workout")] == [newer["id"]]


async def test_the_sync_status_judges_freshness_by_the_service_clock(harness):
    await connect(harness)
    fresh = (await harness.client.get("/internal/sync/status/user-1")).json()["sync"]
    assert not any(s["needs_sync"] for s in fresh.values())
    harness.clock.advance(days=1)  # the service's clock, not the wall clock
    stale = (await harness.client.get("/internal/sync/status/user-1")).json()["sync"]
    assert all(s["needs_sync"] for s in stale.values())
