"""Disconnect revokes at WHOOP, forgets the tokens and, when asked, every stored record."""

import time
from contextlib import AsyncExitStack
from datetime import UTC, datetime

from sqlalchemy import func, insert, select

from tests.whoop_service.auth.test_tokens import spend_the_minute
from tests.whoop_service.harness import make_harness
from whoop_service.db import tables as t

NOW = datetime(2026, 11, 20, tzinfo=UTC)


async def store_cycle(harness, user_id: str, cycle_id: int) -> None:
    async with harness.app.state.sessions() as session:
        await session.execute(
            insert(t.cycles).values(
                id=cycle_id,
                user_id=user_id,
                whoop_user_id=1,
                score_state="SCORED",
                created_at=NOW,
                updated_at=NOW,
                raw={"id": cycle_id},
                synced_at=NOW,
                start=NOW,
                timezone_offset="+00:00",
            )
        )
        await session.commit()


async def count(harness, table, user_id: str) -> int:
    async with harness.app.state.sessions() as session:
        stmt = select(func.count()).select_from(table).where(table.c.user_id == user_id)
        return (await session.execute(stmt)).scalar_one()


async def test_disconnect_revokes_at_whoop_and_keeps_data_by_default(harness):
    await harness.connect("user-1")
    await harness.app.state.worker.wait_idle()
    stored = await count(harness, t.cycles, "user-1")
    assert stored >= 30, "the first sync stored a month of cycles"
    token = await harness.app.state.tokens.get_access_token("user-1")
    resp = await harness.client.delete("/internal/auth/user-1")
    assert resp.status_code == 200
    body = resp.json()
    assert body["revoked_at_whoop"] is True
    assert body["was_connected"] is True
    assert body["data_deleted"] is False
    assert body["status"] == "not_connected"
    assert harness.whoop.count_requests("/developer/v2/user/access", "DELETE") == 1
    assert not await harness.whoop_accepts(token)
    assert await count(harness, t.connections, "user-1") == 0
    assert await count(harness, t.cycles, "user-1") == stored
    status = (await harness.client.get("/internal/auth/status/user-1")).json()
    assert status["status"] == "not_connected"


async def test_disconnect_with_delete_data_removes_every_record_of_that_user_only(
    harness,
):
    await harness.connect("user-1")
    await harness.connect("user-2")
    await (
        harness.app.state.worker.wait_idle()
    )  # the first syncs stored both users' records
    await store_cycle(harness, "user-1", 10)
    await store_cycle(harness, "user-2", 20)
    tables = {
        "cycle": t.cycles,
        "recovery": t.recoveries,
        "sleep": t.sleeps,
        "workout": t.workouts,
    }
    before = {k: await count(harness, table, "user-1") for k, table in tables.items()}
    others = {k: await count(harness, table, "user-2") for k, table in tables.items()}
    assert before["cycle"] > 1
    resp = await harness.client.delete(
        "/internal/auth/user-1", params={"delete_data": "true"}
    )
    assert resp.json()["records_deleted"] == before
    for kind, table in tables.items():
        assert await count(harness, table, "user-1") == 0
        assert await count(harness, table, "user-2") == others[kind]
    assert await count(harness, t.connections, "user-2") == 1


async def test_revocation_failing_at_whoop_still_forgets_locally_and_says_so(harness):
    await harness.connect("user-1")
    harness.whoop.fail_next("/v2/user/access", status=500, count=10)
    resp = await harness.client.delete("/internal/auth/user-1")
    assert resp.status_code == 200
    assert resp.json()["revoked_at_whoop"] is False
    assert await count(harness, t.connections, "user-1") == 0


async def test_disconnecting_a_stranger_is_harmless(harness):
    resp = await harness.client.delete("/internal/auth/nobody")
    assert resp.status_code == 200
    assert resp.json()["was_connected"] is False
    assert resp.json()["revoked_at_whoop"] is False
    assert harness.whoop.count_requests("/developer") == 0
    bad = await harness.client.delete(
        "/internal/auth/user-1", params={"delete_data": "maybe"}
    )
    assert bad.status_code == 422


async def test_disconnect_with_no_budget_left_forgets_within_the_deadline(
    database_url, tmp_path
):
    """WHOOP's minute is spent: the revoke waits no longer than the caller will, the answer
    says it did not happen, and the tokens are forgotten all the same."""
    async with AsyncExitStack() as stack:
        harness = await make_harness(
            stack, database_url, tmp_path, service_overrides={"worker_enabled": False}
        )
        assert (await harness.connect("user-1")).status_code == 200
        assert await spend_the_minute(harness.app.state.whoop.budget) > 0
        started = time.monotonic()
        resp = await harness.client.delete(
            "/internal/auth/user-1", headers={"X-Request-Deadline-Ms": "500"}
        )
        waited = time.monotonic() - started
        assert resp.status_code == 200, resp.text
        assert resp.json()["revoked_at_whoop"] is False
        assert resp.json()["was_connected"] is True
        assert waited < 5, "no wait for the next minute's slot"
        assert harness.whoop.count_requests("/developer/v2/user/access", "DELETE") == 0
        assert await count(harness, t.connections, "user-1") == 0
