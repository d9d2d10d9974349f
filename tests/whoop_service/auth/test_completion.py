"""CONTRACT.md §8: the callback keeps the grant pending; only the user who started the flow
links it, once, within 10 minutes; anything else revokes it at WHOOP. SQLite and PostgreSQL."""

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from whoop_service.db import tables as t


def live_tokens(harness, whoop_user_id: int) -> int:
    """Tokens the WHOOP emulator would still accept for the member."""
    now = harness.whoop.now()
    return sum(
        1
        for g in harness.whoop.tokens.grants.values()
        if g.user_id == whoop_user_id and g.live(now)
    )


def revokes(harness) -> int:
    return harness.whoop.count_requests("/developer/v2/user/access", "DELETE")


async def pending_rows(harness) -> int:
    async with harness.app.state.sessions() as session:
        count = select(func.count()).select_from(t.pending_grants)
        return (await session.execute(count)).scalar_one()


async def status_of(harness, user_id: str) -> str:
    resp = await harness.client.get(f"/internal/auth/status/{user_id}")
    return resp.json()["status"]


async def complete(harness, completion: str, user_id: str):
    return await harness.client.post(
        "/internal/auth/complete", json={"completion": completion, "user_id": user_id}
    )


async def test_the_callback_links_nothing_until_its_user_completes(harness):
    pending = await harness.exchange("user-1")
    assert pending.status_code == 200, pending.text
    body = pending.json()
    assert set(body) == {"completion", "expires_at"}
    assert len(body["completion"]) >= 22  # at least 128 random bits, url-safe base64
    assert await status_of(harness, "user-1") == "not_connected"
    assert await pending_rows(harness) == 1
    async with harness.app.state.sessions() as session:
        row = (await session.execute(select(t.pending_grants))).mappings().one()
    # Stored hashed and encrypted: neither the completion nor a token appears in the row.
    assert body["completion"] not in str(dict(row))
    assert row["access_token_enc"] != ""

    linked = await complete(harness, body["completion"], "user-1")
    assert linked.status_code == 200, linked.text
    assert linked.json()["status"] == "connected"
    assert linked.json()["user_id"] == "user-1"
    assert await status_of(harness, "user-1") == "connected"
    assert await pending_rows(harness) == 0
    await harness.app.state.worker.wait_idle()  # the first sync starts with the link
    sync = (await harness.client.get("/internal/auth/status/user-1")).json()["sync"]
    assert {s["status"] for s in sync.values()} == {"success"}


async def test_a_completion_works_once(harness):
    completion = (await harness.exchange("user-1")).json()["completion"]
    assert (await complete(harness, completion, "user-1")).status_code == 200
    again = await complete(harness, completion, "user-1")
    assert again.status_code == 400
    assert again.json()["code"] == "invalid_completion"


async def test_unknown_completions_are_refused(harness):
    resp = await complete(harness, "x" * 43, "user-1")
    assert resp.status_code == 400
    assert resp.json()["code"] == "invalid_completion"
    malformed = await complete(harness, "not a token!", "user-1")
    assert malformed.status_code == 422


async def test_another_user_completing_gets_403_and_the_grant_is_revoked(harness):
    """The forwarded consent link: the attacker's flow, approved with the victim's account."""
    victim_whoop = harness.whoop.add_user(history_days=3).user_id
    pending = await harness.exchange("attacker", sandbox_user_id=str(victim_whoop))
    completion = pending.json()["completion"]
    assert live_tokens(harness, victim_whoop) == 2  # access and refresh, still pending

    refused = await complete(harness, completion, "victim")
    assert refused.status_code == 403
    assert refused.json()["code"] == "connect_user_mismatch"
    assert revokes(harness) == 1
    assert live_tokens(harness, victim_whoop) == 0
    assert await pending_rows(harness) == 0
    # Burnt: not even the user who started the flow can link it now.
    late = await complete(harness, completion, "attacker")
    assert late.status_code == 400
    assert late.json()["code"] == "invalid_completion"
    assert await status_of(harness, "attacker") == "not_connected"
    assert await status_of(harness, "victim") == "not_connected"


async def test_an_expired_completion_is_refused_then_revoked_and_forgotten(harness):
    whoop_user = harness.whoop.add_user(history_days=3).user_id
    completion = (
        await harness.exchange("user-1", sandbox_user_id=str(whoop_user))
    ).json()["completion"]
    harness.clock.advance(minutes=10, seconds=1)
    late = await complete(harness, completion, "user-1")
    assert late.status_code == 400
    assert late.json()["code"] == "invalid_completion"
    assert live_tokens(harness, whoop_user) == 2  # not yet: the sweep revokes
    assert await harness.app.state.connect_flow.expire_pending() == 1
    assert revokes(harness) == 1
    assert live_tokens(harness, whoop_user) == 0
    assert await pending_rows(harness) == 0
    assert await status_of(harness, "user-1") == "not_connected"


async def test_a_live_pending_grant_is_not_swept(harness):
    await harness.exchange("user-1")
    harness.clock.advance(minutes=9)
    assert await harness.app.state.connect_flow.expire_pending() == 0
    assert await pending_rows(harness) == 1
    assert revokes(harness) == 0


async def test_an_unfinished_second_flow_never_cuts_the_live_connection(harness):
    """WHOOP revokes a member's access as a whole: a stale pending grant of a member who is
    linked is forgotten, not revoked."""
    linked = (await harness.connect("user-1")).json()
    await harness.exchange("user-1", sandbox_user_id=str(linked["whoop_user_id"]))
    harness.clock.advance(minutes=11)
    assert await harness.app.state.connect_flow.expire_pending() == 1
    assert revokes(harness) == 0
    assert await pending_rows(harness) == 0
    token = await harness.app.state.tokens.get_access_token("user-1")
    assert await harness.whoop_accepts(token)


async def test_a_revoke_that_fails_keeps_the_grant_for_the_next_sweep(harness):
    whoop_user = harness.whoop.add_user(history_days=3).user_id
    await harness.exchange("user-1", sandbox_user_id=str(whoop_user))
    harness.clock.advance(minutes=11)
    harness.whoop.fail_next("/developer/v2/user/access", status=503, count=10)
    assert await harness.app.state.connect_flow.expire_pending() == 0
    assert await pending_rows(harness) == 1
    harness.whoop.reset_counters()
    assert await harness.app.state.connect_flow.expire_pending() == 1
    assert live_tokens(harness, whoop_user) == 0


async def test_a_user_starts_at_most_five_connections_in_ten_minutes(harness):
    """Found by review: looping the connect flow spent the budget all users share (each
    approved flow costs a profile fetch, and later a revoke)."""
    for _ in range(5):
        assert (
            await harness.client.post("/internal/auth/connect/user-1")
        ).status_code == 200
        harness.clock.advance(minutes=1)
    refused = await harness.client.post("/internal/auth/connect/user-1")
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert int(refused.headers["retry-after"]) == 5 * 60  # the first leaves the window
    other = await harness.client.post("/internal/auth/connect/user-2")
    assert other.status_code == 200, "another user's flows are their own"
    harness.clock.advance(minutes=5)
    assert (
        await harness.client.post("/internal/auth/connect/user-1")
    ).status_code == 200


async def test_a_newer_flow_of_the_same_member_supersedes_the_pending_one(harness):
    whoop_user = harness.whoop.add_user(history_days=3).user_id
    first = (await harness.exchange("user-1", sandbox_user_id=str(whoop_user))).json()
    second = (await harness.exchange("user-1", sandbox_user_id=str(whoop_user))).json()
    assert await pending_rows(harness) == 1
    assert (await complete(harness, first["completion"], "user-1")).status_code == 400
    assert (await complete(harness, second["completion"], "user-1")).status_code == 200
    assert revokes(harness) == 0


async def test_two_users_linking_one_whoop_account_at_once_get_200_and_409(harness):
    """Found by review: the unique whoop_user_id refused the second insert with a 500."""
    whoop_user = harness.whoop.add_user(history_days=3).user_id
    completions = {
        user: (await harness.exchange(user, sandbox_user_id=str(whoop_user))).json()[
            "completion"
        ]
        for user in ("user-a", "user-b")
    }
    answers = await asyncio.gather(
        *(complete(harness, c, user) for user, c in completions.items())
    )
    assert sorted(a.status_code for a in answers) == [200, 409], [
        a.text for a in answers
    ]
    refused = next(a for a in answers if a.status_code == 409)
    assert refused.json()["code"] == "whoop_account_linked"
    assert await pending_rows(harness) == 0


async def test_a_user_starts_at_most_ten_connections_a_utc_day(harness):
    """Found by review: connect, complete, disconnect in a loop cost about 10 WHOOP requests a
    round (profile, first backfill, revoke), none of them the user's quota."""
    for _ in range(10):
        assert (
            await harness.client.post("/internal/auth/connect/user-1")
        ).status_code == 200
        harness.clock.advance(minutes=11)
    refused = await harness.client.post("/internal/auth/connect/user-1")
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    midnight = harness.clock().replace(hour=0, minute=0, second=0) + timedelta(days=1)
    assert int(refused.headers["retry-after"]) == int(
        (midnight - harness.clock()).total_seconds()
    )
    harness.clock.now = midnight
    assert (
        await harness.client.post("/internal/auth/connect/user-1")
    ).status_code == 200


async def test_a_stale_grant_is_not_revoked_while_a_newer_flow_of_the_member_is_pending(
    harness,
):
    """Review: revoking the stale grant would revoke the member's newer flow as well."""
    whoop_user = harness.whoop.add_user(history_days=3).user_id
    await harness.exchange("user-a", sandbox_user_id=str(whoop_user))
    harness.clock.advance(minutes=9)
    newer = (await harness.exchange("user-b", sandbox_user_id=str(whoop_user))).json()
    harness.clock.advance(minutes=2)  # only the first is past its 10 minutes
    assert await harness.app.state.connect_flow.expire_pending() == 1
    assert revokes(harness) == 0
    linked = await complete(harness, newer["completion"], "user-b")
    assert linked.status_code == 200, linked.text
    token = await harness.app.state.tokens.get_access_token("user-b")
    assert await harness.whoop_accepts(token)
