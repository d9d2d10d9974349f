"""One user's trouble stays that user's (CONTRACT.md §9): a slow token refresh ends within the
caller's deadline, an unreadable token means `needs_reauth`, a scope not granted is never
requested, and a type that failed backs off instead of costing WHOOP calls on every read."""

import time
from contextlib import AsyncExitStack
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from tests.whoop_service.harness import make_harness
from whoop_service.db import tables as t

WORKOUTS = "/developer/v2/activity/workout"
CYCLES = "/developer/v2/cycle"


@pytest.fixture
async def harness(database_url, tmp_path):
    """Without the per-user sync cooldown: these tests look at what each read and each
    pull-to-refresh costs; the cooldown has tests of its own (test_fairness.py)."""
    async with AsyncExitStack() as stack:
        yield await make_harness(
            stack, database_url, tmp_path, {"user_sync_cooldown_s": 0}
        )


async def connected(harness, user_id: str = "user-1", **browser) -> int:
    resp = await harness.connect(user_id, **browser)
    assert resp.status_code == 200, resp.text
    await harness.app.state.worker.wait_idle()  # the first sync is done
    return resp.json()["whoop_user_id"]


async def read(harness, user_id: str = "user-1", deadline_ms: int | None = None):
    today = harness.clock().date().isoformat()
    headers = {} if deadline_ms is None else {"X-Request-Deadline-Ms": str(deadline_ms)}
    started = time.monotonic()
    resp = await harness.client.get(
        f"/internal/data/daily/{user_id}",
        params={"start_date": today},
        headers=headers,
    )
    return resp, time.monotonic() - started


async def status(harness, user_id: str = "user-1") -> dict:
    resp = await harness.client.get(f"/internal/auth/status/{user_id}")
    assert resp.status_code == 200, resp.text
    return resp.json()


async def set_connection(harness, user_id: str, **values) -> None:
    async with harness.app.state.sessions() as session:
        await session.execute(
            update(t.connections)
            .where(t.connections.c.user_id == user_id)
            .values(**values)
        )
        await session.commit()


async def test_a_slow_token_refresh_ends_within_the_read_deadline_and_finishes_later(
    harness,
):
    whoop_user = await connected(harness)
    harness.clock.advance(hours=3)  # every type is stale and the access token expired
    harness.whoop.expire_access_tokens(whoop_user)
    harness.whoop.fail_next("/oauth/oauth2/token", status=200, delay_s=4.0, count=5)
    for _ in range(2):
        resp, elapsed = await read(harness, deadline_ms=1500)
        assert resp.status_code == 200, resp.text
        # Well under the refresh's 4 s: the read did not wait for it (the margin past the
        # 1.5 s deadline is for a busy machine's scheduling, not for waiting).
        assert elapsed < 3.0, f"the read waited {elapsed:.2f} s for the refresh"
        body = resp.json()
        assert body["connection"] == "connected"
        assert (body["data_source"], body["stale"]) == ("database", True)
        assert "refresh" in body["warning"]
    assert harness.app.state.tokens.refresh_count == 1, "one refresh, joined"
    started = time.monotonic()
    pulled = await harness.client.post(
        "/internal/sync/user-1", headers={"X-Request-Deadline-Ms": "1500"}
    )
    assert time.monotonic() - started < 3.0  # the refresh takes 4 s
    assert pulled.json()["errors"] == dict.fromkeys(
        ("cycle", "recovery", "sleep", "workout"), "token_refresh_pending"
    )
    states = (await status(harness))["sync"]
    assert {s["status"] for s in states.values()} == {"success"}, (
        "nothing failed at WHOOP: no type is marked failed"
    )
    await harness.app.state.tokens.settle()  # the refresh finished in the background
    assert harness.whoop.tokens_issued["refresh_token"] == 1
    resp, _ = await read(harness, deadline_ms=5000)
    assert resp.json()["data_source"] == "whoop_api"
    assert harness.whoop.token_requests["refresh_token"] == 1, "its token was kept"
    assert harness.app.state.tokens.refresh_count == 1


async def test_an_unreadable_token_is_that_users_needs_reauth_and_costs_no_whoop_call(
    harness,
):
    await connected(harness, "user-1")
    await connected(harness, "user-2")
    harness.clock.advance(hours=3)
    await set_connection(
        harness,
        "user-1",
        access_token_enc="not-a-fernet-token",
        access_expires_at=harness.clock() + timedelta(hours=1),
    )
    before = harness.whoop.count_requests("/developer")
    resp, _ = await read(harness, "user-1")
    assert resp.status_code == 200, resp.text
    assert resp.json()["connection"] == "needs_reauth"
    assert resp.json()["days"], "stored data is still served"
    assert harness.whoop.count_requests("/developer") == before
    answer = await status(harness, "user-1")
    assert (answer["status"], answer["reauth_reason"]) == (
        "needs_reauth",
        "token_unreadable",
    )
    sync = await harness.client.post("/internal/sync/user-1")
    assert (sync.status_code, sync.json()["code"]) == (409, "needs_reauth")
    for _ in range(3):
        resp, _ = await read(harness, "user-1")
        assert resp.json()["connection"] == "needs_reauth"
    assert harness.whoop.count_requests("/developer") == before
    other, _ = await read(harness, "user-2")
    assert (other.json()["connection"], other.json()["data_source"]) == (
        "connected",
        "whoop_api",
    )


async def test_an_unreadable_refresh_token_is_needs_reauth_too(harness):
    await connected(harness)
    harness.clock.advance(hours=3)  # the access token expired: a refresh is due
    await set_connection(harness, "user-1", refresh_token_enc="garbage")
    resp, _ = await read(harness)
    assert resp.status_code == 200, resp.text
    assert resp.json()["connection"] == "needs_reauth"
    assert harness.whoop.token_requests["refresh_token"] == 0
    assert (await status(harness))["reauth_reason"] == "token_unreadable"


async def test_a_type_whose_scope_was_not_granted_is_never_requested(harness):
    resp = await harness.connect("user-1", sandbox_untick="read:workout")
    assert resp.status_code == 200, resp.text
    assert "read:workout" not in resp.json()["scopes"]
    assert "read:cycles" in resp.json()["scopes"]
    whoop_user = resp.json()["whoop_user_id"]
    await harness.app.state.worker.wait_idle()  # the first sync
    cycles_after_connect = harness.whoop.count_requests(CYCLES)
    assert cycles_after_connect > 0
    for _ in range(10):
        harness.clock.advance(hours=3)  # every granted type stale, the token expired
        got, _ = await read(harness)
        assert got.json()["data_source"] == "whoop_api", got.text
    assert harness.whoop.count_requests(WORKOUTS) == 0
    assert harness.whoop.count_requests(CYCLES) >= cycles_after_connect + 10
    assert harness.whoop.tokens_issued["refresh_token"] == 10
    answer = await status(harness)
    assert "read:workout" not in answer["scopes"], "a refresh keeps the narrower grant"
    assert answer["sync"]["workout"]["status"] == "not_granted"
    assert answer["sync"]["workout"]["needs_sync"] is False
    assert answer["sync"]["cycle"]["status"] == "success"
    sync_status = (await harness.client.get("/internal/sync/status/user-1")).json()
    assert sync_status["sync"]["workout"]["status"] == "not_granted"
    pulled = (await harness.client.post("/internal/sync/user-1")).json()
    assert pulled["errors"] == {"workout": "not_granted"}
    assert pulled["status"] == "success"
    records = await harness.client.get(
        "/internal/data/workouts/user-1", params={"force_refresh": "true"}
    )
    assert records.status_code == 200
    assert records.json()["records"] == []
    # A webhook about a workout is acknowledged and never fetched.
    workout = harness.whoop.add_workout(
        whoop_user,
        start=harness.clock() - timedelta(hours=2),
        end=harness.clock() - timedelta(hours=1),
    )
    sent = await harness.whoop.send_webhook(
        whoop_user, "workout.updated", workout["id"]
    )
    assert sent is not None
    assert sent.status_code in (200, 202, 204), sent.text
    await harness.app.state.worker.wait_idle()
    assert harness.whoop.count_requests(WORKOUTS) == 0


async def test_scheduled_reconciliation_never_queues_a_type_not_granted(harness):
    await connected(harness, "user-1", sandbox_untick="read:workout read:sleep")
    harness.clock.now = harness.clock.now.replace(hour=14, minute=0) + timedelta(days=3)
    assert await harness.app.state.scheduler.tick() == 1
    async with harness.app.state.sessions() as session:
        payloads = (
            await session.execute(
                select(t.jobs.c.payload).where(t.jobs.c.dedupe_key.like("reconcile:%"))
            )
        ).scalars()
        types = [p["data_types"] for p in payloads]
    assert types == [["cycle", "recovery"]]


async def test_a_failing_type_backs_off_instead_of_costing_every_read(harness):
    await connected(harness)
    harness.clock.advance(hours=3)
    harness.whoop.fail_next("/v2/activity/workout", status=500, count=1000)

    async def workouts_after_read(advance_s: float) -> int:
        harness.clock.advance(seconds=advance_s)
        before = harness.whoop.count_requests(WORKOUTS)
        resp, _ = await read(harness)
        assert resp.status_code == 200, resp.text
        return harness.whoop.count_requests(WORKOUTS) - before

    assert await workouts_after_read(0) > 0  # the first failure
    workout = (await status(harness))["sync"]["workout"]
    assert (workout["status"], workout["error"]) == ("failed", "whoop_server_error")
    assert [await workouts_after_read(10) for _ in range(5)] == [0] * 5
    assert await workouts_after_read(20) > 0, "a minute after the failure: tried again"
    assert await workouts_after_read(90) == 0, "two minutes after the second failure"
    assert await workouts_after_read(40) > 0
    harness.whoop.faults.clear()  # WHOOP is back
    harness.clock.advance(minutes=4)
    assert await workouts_after_read(1) > 0
    assert (await status(harness))["sync"]["workout"]["status"] == "success"
    assert await workouts_after_read(10) == 0, "fresh again: nothing to fetch"


async def test_the_callbacks_whoop_calls_end_within_the_deadline(harness):
    query = await harness.authorize("user-1")
    harness.whoop.fail_next("/v2/user/profile/basic", status=200, delay_s=5.0)
    started = time.monotonic()
    resp = await harness.client.post(
        "/internal/auth/callback",
        json={"code": query["code"][0], "state": query["state"][0]},
        headers={"X-Request-Deadline-Ms": "1000"},
    )
    # Cut at the 1 s deadline, far from the profile's 5 s (slack for a busy machine).
    assert time.monotonic() - started < 2.5
    assert (resp.status_code, resp.json()["code"]) == (502, "whoop_unavailable")
    assert "Whoop" not in resp.text, "no internal class name in the answer"
