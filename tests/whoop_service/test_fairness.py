"""CONTRACT.md §9 at the WHOOP service: a user's interactive syncs have a cooldown and a daily
quota of WHOOP requests; inside them the stored data answers. SQLite and PostgreSQL."""

import asyncio
import time
import uuid
from contextlib import AsyncExitStack

import pytest

from tests.whoop_service.harness import make_harness
from whoop_service.whoop.ratelimit import Priority


def data_requests(harness) -> int:
    return harness.whoop.count_requests("/developer")


async def connect(harness, user_id: str = "user-1") -> int:
    whoop_user = harness.whoop.add_user(history_days=10).user_id
    resp = await harness.connect(user_id, sandbox_user_id=str(whoop_user))
    assert resp.status_code == 200, resp.text
    await harness.app.state.worker.wait_idle()  # the first backfill: not interactive
    harness.whoop.reset_counters()
    return whoop_user


async def read_days(
    client,
    user_id: str = "user-1",
    *,
    start: str = "2026-11-19",
    end: str = "2026-11-20",
    force: bool = False,
    headers: dict[str, str] | None = None,
):
    """The WHOOP part of the user's days, as the gateway asks for it."""
    params = {"start_date": start, "end_date": end}
    if force:
        params["force_refresh"] = "true"
    return await client.get(
        f"/internal/data/daily/{user_id}", params=params, headers=headers or {}
    )


def assert_429(resp, code: str, *, wait_between: tuple[int, int]) -> None:
    assert resp.status_code == 429, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["code"] == code
    assert wait_between[0] <= int(resp.headers["retry-after"]) <= wait_between[1]


@pytest.fixture
async def limited(database_url, tmp_path):
    """The service with a small daily quota and no cooldown."""
    async with AsyncExitStack() as stack:
        yield await make_harness(
            stack,
            database_url,
            tmp_path,
            service_overrides={
                "user_sync_cooldown_s": 0,
                "user_whoop_requests_per_day": 3,
            },
        )


async def test_a_second_pull_to_refresh_within_the_cooldown_is_429(harness):
    await connect(harness)
    first = await harness.client.post("/internal/sync/user-1")
    assert first.status_code == 200, first.text
    calls = data_requests(harness)
    assert calls == first.json()["api_calls"] > 0
    again = await harness.client.post("/internal/sync/user-1")
    assert_429(again, "sync_cooldown", wait_between=(59, 60))
    assert data_requests(harness) == calls
    harness.clock.advance(seconds=61)
    assert (await harness.client.post("/internal/sync/user-1")).status_code == 200


async def test_force_refresh_reads_inside_the_cooldown_answer_from_the_database(
    harness,
):
    await connect(harness)
    assert (await harness.client.post("/internal/sync/user-1")).status_code == 200
    calls = data_requests(harness)
    for _ in range(5):
        read = await read_days(harness.client, start="2026-11-18", force=True)
        assert read.status_code == 200
        body = read.json()
        assert body["data_source"] == "database"
        assert body["stale"] is False
        assert any(day["cycle"] for day in body["days"])
    assert data_requests(harness) == calls


async def test_the_daily_quota_stops_interactive_requests_until_tomorrow(limited):
    whoop_user = await connect(limited)
    first = await limited.client.post("/internal/sync/user-1")
    # Four types, one request each, but three allowed: the last type is refused.
    assert first.json()["status"] == "partial"
    assert first.json()["errors"] == {"workout": "user_quota_exceeded"}
    assert data_requests(limited) == 3
    spent = await limited.client.post("/internal/sync/user-1")
    # The harness clock stands at 12:00 UTC: twelve hours to the next UTC day.
    assert_429(spent, "user_quota_exceeded", wait_between=(43_200, 43_200))
    read = await read_days(limited.client, force=True)
    assert read.status_code == 200
    assert read.json()["data_source"] == "database"
    assert data_requests(limited) == 3
    # Webhooks are not the user's quota: an announced workout is still fetched.
    workout = limited.whoop.records("workout", whoop_user)[0]
    await limited.whoop.send_webhook(whoop_user, "workout.updated", workout["id"])
    await limited.app.state.worker.wait_idle()
    assert data_requests(limited) == 4
    # A new UTC day, a new quota.
    limited.clock.advance(hours=12)
    assert (await limited.client.post("/internal/sync/user-1")).status_code == 200


async def test_stale_data_past_its_threshold_is_marked_when_the_quota_is_spent(limited):
    await connect(limited)
    await limited.client.post("/internal/sync/user-1")
    limited.clock.advance(hours=3)  # past every type's freshness threshold
    read = await read_days(limited.client)
    body = read.json()
    assert read.status_code == 200
    assert body["data_source"] == "database"
    assert body["stale"] is True
    assert "spent" in body["warning"]
    assert data_requests(limited) == 3


@pytest.mark.redis
async def test_two_replicas_on_one_redis_share_the_cooldown(
    database_url, redis_url, tmp_path
):
    user = f"u-{uuid.uuid4().hex[:12]}"
    async with AsyncExitStack() as stack:
        harness = await make_harness(
            stack, database_url, tmp_path, service_overrides={"redis_url": redis_url}
        )
        _, second = await harness.add_instance()
        await connect(harness, user)
        assert (await harness.client.post(f"/internal/sync/{user}")).status_code == 200
        other = await second.post(f"/internal/sync/{user}")
        assert_429(other, "sync_cooldown", wait_between=(58, 60))
        read = await read_days(second, user, force=True)
        assert read.json()["data_source"] == "database"


async def test_requests_the_budget_refused_never_spend_the_users_quota(
    database_url, tmp_path
):
    """Found by review: the quota was charged before the budget granted a slot, so a busy
    budget (other users' load) could use up a user's day with nothing sent."""
    async with AsyncExitStack() as stack:
        harness = await make_harness(
            stack,
            database_url,
            tmp_path,
            service_overrides={
                "user_sync_cooldown_s": 0,
                "user_whoop_requests_per_day": 3,
                # One request a minute for the service: users' work fills it at once.
                "whoop_rate_limit_per_minute": 2,
                "worker_enabled": False,  # the first backfill waits; it is not the point
            },
        )
        whoop_user = harness.whoop.add_user(history_days=3).user_id
        linked = await harness.connect("user-1", sandbox_user_id=str(whoop_user))
        assert linked.status_code == 200, linked.text
        harness.whoop.reset_counters()
        for _ in range(4):
            resp = await harness.client.post("/internal/sync/user-1")
            assert resp.status_code == 200, resp.text
            errors = set(resp.json()["errors"].values())
            assert errors <= {"rate_budget_exhausted"}, errors
        # Whatever got a slot was sent and counted; the refused ones cost nothing.
        assert data_requests(harness) <= 1
        assert await harness.app.state.user_limits.quota_wait_s("user-1") == 0


async def test_a_read_never_waits_for_a_job_syncing_the_same_user(harness):
    """Found by review: a newcomer's read waited on the first backfill for most of its
    deadline; it answers from the database at once, and keeps its cooldown."""
    await connect(harness)
    harness.clock.advance(hours=3)  # every type is due
    harness.whoop.fail_next("/v2/cycle", status=200, delay_s=3.0)  # a slow WHOOP
    job = asyncio.create_task(
        harness.app.state.sync_engine.sync_user("user-1", priority=Priority.BACKFILL)
    )
    await asyncio.sleep(0.2)
    started = time.monotonic()
    read = await read_days(
        harness.client, start="2026-11-20", headers={"X-Request-Deadline-Ms": "4000"}
    )
    elapsed = time.monotonic() - started
    assert elapsed < 1.5, f"the read waited {elapsed:.2f} s"  # the job's call takes 3 s
    assert read.json()["data_source"] == "database"
    assert "under way" in read.json()["warning"]
    await job
    # The cooldown was not spent on a sync that did not run.
    assert (await harness.client.post("/internal/sync/user-1")).status_code == 200
