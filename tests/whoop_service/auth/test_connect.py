"""The connection lifecycle against the WHOOP emulator, on SQLite and PostgreSQL."""

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from whoop_service.db import tables as t
from whoop_service.errors import WhoopNeedsReauth


async def count_connections(harness) -> int:
    async with harness.app.state.sessions() as session:
        return (
            await session.execute(select(func.count()).select_from(t.connections))
        ).scalar_one()


async def test_connect_builds_an_authorization_url_with_state_and_pkce(harness):
    resp = await harness.client.post("/internal/auth/connect/user-1")
    assert resp.status_code == 200
    body = resp.json()
    url = urlsplit(body["authorization_url"])
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert url.path == "/oauth/oauth2/auth"
    assert query["client_id"] == "test-client"
    assert query["redirect_uri"] == "http://127.0.0.1:8000/api/v1/whoop/callback"
    assert "offline" in query["scope"].split()
    assert query["state"] == body["state"]
    assert len(body["state"]) >= 32
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43
    again = (await harness.client.post("/internal/auth/connect/user-1")).json()
    assert again["state"] != body["state"]


async def test_full_flow_connects_once_even_when_repeated(harness):
    first = await harness.connect("user-1")
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["user_id"] == "user-1"
    assert body["status"] == "connected"
    assert "read:recovery" in body["scopes"]
    second = await harness.connect("user-1", sandbox_user_id=str(body["whoop_user_id"]))
    assert second.status_code == 200, second.text
    assert await count_connections(harness) == 1
    await harness.app.state.worker.wait_idle()  # connecting started the first sync
    status = (await harness.client.get("/internal/auth/status/user-1")).json()
    assert status["status"] == "connected"
    assert status["whoop_user_id"] == body["whoop_user_id"]
    assert set(status["sync"]) == {"cycle", "recovery", "sleep", "workout"}
    for sync in status["sync"].values():
        assert sync["status"] == "success"
        assert sync["needs_sync"] is False
    async with harness.app.state.sessions() as session:
        cycles = await session.execute(select(func.count()).select_from(t.cycles))
        assert cycles.scalar_one() >= 30


async def test_a_whoop_account_linked_to_another_user_is_refused(harness):
    first = (await harness.connect("user-a")).json()
    taken = await harness.connect("user-b", sandbox_user_id=str(first["whoop_user_id"]))
    assert taken.status_code == 409
    assert taken.json()["code"] == "whoop_account_linked"
    b = (await harness.client.get("/internal/auth/status/user-b")).json()
    assert b["status"] == "not_connected"
    a = (await harness.client.get("/internal/auth/status/user-a")).json()
    assert a["status"] == "connected"


async def test_a_dead_link_can_be_taken_over(harness):
    first = (await harness.connect("user-a")).json()
    harness.whoop.revoke_user(first["whoop_user_id"])
    harness.whoop.expire_access_tokens(first["whoop_user_id"])
    harness.clock.advance(hours=2)
    with pytest.raises(WhoopNeedsReauth):
        await harness.app.state.tokens.get_access_token("user-a")
    taken = await harness.connect("user-b", sandbox_user_id=str(first["whoop_user_id"]))
    assert taken.status_code == 200, taken.text
    a = (await harness.client.get("/internal/auth/status/user-a")).json()
    assert a["status"] == "not_connected"


async def test_replayed_state_is_refused_without_side_effects(harness):
    query = await harness.authorize("user-1")
    body = {"code": query["code"][0], "state": query["state"][0]}
    assert (
        await harness.client.post("/internal/auth/callback", json=body)
    ).status_code == 200
    exchanges = harness.whoop.token_requests["authorization_code"]
    replay = await harness.client.post("/internal/auth/callback", json=body)
    assert replay.status_code == 400
    assert replay.json()["code"] == "state_used"
    assert harness.whoop.token_requests["authorization_code"] == exchanges


async def test_unknown_state_is_refused(harness):
    resp = await harness.client.post(
        "/internal/auth/callback",
        json={"code": "x", "state": "never-issued-state-value"},
    )
    assert resp.status_code == 400
    assert resp.json()["code"] == "invalid_state"
    assert harness.whoop.token_requests["authorization_code"] == 0


async def test_expired_state_is_refused(harness):
    query = await harness.authorize("user-1")
    harness.clock.advance(minutes=10, seconds=1)
    resp = await harness.client.post(
        "/internal/auth/callback",
        json={"code": query["code"][0], "state": query["state"][0]},
    )
    assert resp.status_code == 400
    assert resp.json()["code"] == "state_expired"
    assert await count_connections(harness) == 0
    assert harness.whoop.token_requests["authorization_code"] == 0


async def test_state_of_another_user_is_refused_and_stays_usable(harness):
    query = await harness.authorize("user-1")
    body = {"code": query["code"][0], "state": query["state"][0]}
    wrong = await harness.client.post(
        "/internal/auth/callback", json={**body, "user_id": "user-2"}
    )
    assert wrong.status_code == 400
    assert wrong.json()["code"] == "state_user_mismatch"
    right = await harness.client.post(
        "/internal/auth/callback", json={**body, "user_id": "user-1"}
    )
    assert right.status_code == 200
    assert "completion" in right.json()


async def test_access_denied_uses_up_the_state(harness):
    query = await harness.authorize("user-1", sandbox_action="deny")
    assert query["error"] == ["access_denied"]
    state = query["state"][0]
    denied = await harness.client.post(
        "/internal/auth/callback", json={"error": "access_denied", "state": state}
    )
    assert denied.status_code == 400
    assert denied.json()["code"] == "access_denied"
    again = await harness.client.post(
        "/internal/auth/callback", json={"code": "c", "state": state}
    )
    assert again.json()["code"] == "state_used"
    assert await count_connections(harness) == 0


async def test_failing_token_endpoint_stores_nothing(harness):
    query = await harness.authorize("user-1")
    harness.whoop.fail_next("/oauth/oauth2/token", status=500)
    resp = await harness.client.post(
        "/internal/auth/callback",
        json={"code": query["code"][0], "state": query["state"][0]},
    )
    assert resp.status_code == 502
    assert resp.json()["code"] == "whoop_unavailable"
    assert "An internal" not in resp.text
    assert await count_connections(harness) == 0


async def test_rejected_code_is_a_400(harness):
    query = await harness.authorize("user-1")
    resp = await harness.client.post(
        "/internal/auth/callback",
        json={"code": "forged-code", "state": query["state"][0]},
    )
    assert resp.status_code == 400
    assert resp.json()["code"] == "invalid_code"


async def test_callback_body_is_validated(harness):
    for body in (
        {"state": "s" * 40},
        {"code": "c", "error": "access_denied", "state": "s" * 40},
    ):
        resp = await harness.client.post("/internal/auth/callback", json=body)
        assert resp.status_code == 422
    resp = await harness.client.post("/internal/auth/connect/not%20a%20user")
    assert resp.status_code == 422


async def test_internal_routes_need_the_api_key(harness):
    resp = await harness.client.post(
        "/internal/auth/connect/user-1", headers={"X-API-Key": "wrong"}
    )
    assert resp.status_code == 401
    assert resp.json()["code"] == "invalid_api_key"


async def user_rows(harness, table, user_id: str) -> int:
    async with harness.app.state.sessions() as session:
        stmt = select(func.count()).select_from(table).where(table.c.user_id == user_id)
        return (await session.execute(stmt)).scalar_one()


async def test_a_whoop_account_moving_to_another_user_takes_its_records(harness):
    first = (await harness.connect("user-a")).json()
    await harness.app.state.worker.wait_idle()
    before = await user_rows(harness, t.cycles, "user-a")
    assert before >= 30
    await harness.client.delete("/internal/auth/user-a")  # keeps the data
    moved = await harness.connect("user-b", sandbox_user_id=str(first["whoop_user_id"]))
    assert moved.status_code == 200
    await harness.app.state.worker.wait_idle()
    assert await user_rows(harness, t.cycles, "user-a") == 0
    assert await user_rows(harness, t.cycles, "user-b") == before
    today = harness.clock.now.date()
    days = (
        await harness.client.get(
            "/internal/data/daily/user-b",
            params={"start_date": str(today - timedelta(days=5))},
        )
    ).json()["days"]
    assert days[0]["cycle"] is not None


async def test_switching_whoop_accounts_drops_the_old_accounts_records(harness):
    await harness.connect("user-a")
    await harness.app.state.worker.wait_idle()
    old_cycles = await user_rows(harness, t.cycles, "user-a")
    other = harness.whoop.add_user(history_days=5)
    resp = await harness.connect("user-a", sandbox_user_id=str(other.user_id))
    assert resp.status_code == 200
    await harness.app.state.worker.wait_idle()
    async with harness.app.state.sessions() as session:
        accounts = (
            (
                await session.execute(
                    select(t.cycles.c.whoop_user_id)
                    .where(t.cycles.c.user_id == "user-a")
                    .distinct()
                )
            )
            .scalars()
            .all()
        )
    assert accounts == [other.user_id]
    assert 0 < await user_rows(harness, t.cycles, "user-a") < old_cycles
