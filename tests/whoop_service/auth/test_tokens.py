"""Single-flight refresh against the emulator's single-use rotating refresh tokens."""

import asyncio
import time

import pytest

from whoop_service.errors import WhoopNeedsReauth
from whoop_service.whoop.budget import BudgetExhausted
from whoop_service.whoop.ratelimit import Priority


async def connected(harness, user_id: str = "user-1") -> int:
    resp = await harness.connect(user_id)
    assert resp.status_code == 200, resp.text
    return resp.json()["whoop_user_id"]


async def test_a_fresh_token_is_handed_out_without_refreshing(harness):
    await connected(harness)
    token = await harness.app.state.tokens.get_access_token("user-1")
    assert await harness.whoop_accepts(token)
    assert harness.whoop.token_requests["refresh_token"] == 0


async def test_fifty_concurrent_requests_after_expiry_refresh_once(harness):
    whoop_user = await connected(harness)
    harness.clock.advance(hours=2)
    harness.whoop.expire_access_tokens(whoop_user)
    tokens = await asyncio.gather(
        *(harness.app.state.tokens.get_access_token("user-1") for _ in range(50))
    )
    assert harness.whoop.token_requests["refresh_token"] == 1
    assert harness.whoop.tokens_issued["refresh_token"] == 1
    assert len(set(tokens)) == 1
    assert await harness.whoop_accepts(tokens[0])


async def test_two_service_instances_on_one_database_refresh_once(harness):
    whoop_user = await connected(harness)
    second, _ = await harness.add_instance()
    harness.clock.advance(hours=2)
    harness.whoop.expire_access_tokens(whoop_user)
    managers = [harness.app.state.tokens, second.state.tokens]
    tokens = await asyncio.gather(
        *(managers[i % 2].get_access_token("user-1") for i in range(50))
    )
    assert harness.whoop.token_requests["refresh_token"] == 1
    assert len(set(tokens)) == 1
    assert await harness.whoop_accepts(tokens[0])
    status = (await harness.client.get("/internal/auth/status/user-1")).json()
    assert status["status"] == "connected"


async def test_a_token_whoop_rejected_is_refreshed_once(harness):
    await connected(harness)
    tokens = harness.app.state.tokens
    old = await tokens.get_access_token("user-1")
    new = await asyncio.gather(
        *(tokens.get_access_token("user-1", rejected=old) for _ in range(10))
    )
    assert harness.whoop.token_requests["refresh_token"] == 1
    assert set(new) != {old}
    assert len(set(new)) == 1
    assert not await harness.whoop_accepts(old), (
        "a refresh kills the previous access token"
    )


async def test_revoked_grant_marks_needs_reauth(harness):
    whoop_user = await connected(harness)
    harness.whoop.revoke_user(whoop_user)
    harness.clock.advance(hours=2)
    with pytest.raises(WhoopNeedsReauth):
        await harness.app.state.tokens.get_access_token("user-1")
    status = (await harness.client.get("/internal/auth/status/user-1")).json()
    assert status["status"] == "needs_reauth"
    assert status["reauth_reason"] == "invalid_grant"
    with pytest.raises(WhoopNeedsReauth):
        await harness.app.state.tokens.get_access_token("user-1")
    assert harness.whoop.token_requests["refresh_token"] == 1, (
        "no retry storm once dead"
    )


async def test_transient_token_endpoint_failure_is_retried_once(harness):
    await connected(harness)
    harness.clock.advance(hours=2)
    harness.whoop.fail_next("/oauth/oauth2/token", status=503)
    token = await harness.app.state.tokens.get_access_token("user-1")
    assert await harness.whoop_accepts(token)
    # One code exchange, then a refresh that failed and its one retry.
    assert harness.whoop.count_requests("/oauth/oauth2/token", "POST") == 3
    assert harness.whoop.tokens_issued["refresh_token"] == 1


async def test_a_rotation_whose_answer_was_lost_ends_in_needs_reauth(harness):
    """WHOOP rotated, the answer never arrived: the old refresh token is spent for good."""
    await connected(harness)
    harness.clock.advance(hours=2)
    harness.whoop.fail_next("/oauth/oauth2/token", status=502, after_handler=True)
    with pytest.raises(WhoopNeedsReauth):
        await harness.app.state.tokens.get_access_token("user-1")
    status = (await harness.client.get("/internal/auth/status/user-1")).json()
    assert status["status"] == "needs_reauth"


async def spend_the_minute(budget) -> int:
    """Take every slot the budget has left this minute; how many that was."""
    taken = 0
    while True:
        try:
            await budget.acquire(Priority.INTERACTIVE, time.monotonic())
        except BudgetExhausted:
            return taken
        taken += 1


async def test_a_refresh_takes_a_slot_of_the_rate_budget(harness):
    """Whether WHOOP counts token calls against the app's limits is UNCONFIRMED: they count."""
    whoop_user = await connected(harness)
    budget = harness.app.state.whoop.budget
    before = (await budget.status())["minute_used"]
    harness.clock.advance(hours=2)
    harness.whoop.expire_access_tokens(whoop_user)
    await harness.app.state.tokens.get_access_token("user-1")
    assert harness.whoop.token_requests["refresh_token"] == 1
    assert (await budget.status())["minute_used"] == before + 1


async def test_with_no_budget_left_a_refresh_goes_ahead_and_is_counted(harness):
    """A refresh cannot wait (it runs under the connection's row lock): it takes no slot, and
    the calls after it wait for it instead."""
    whoop_user = await connected(harness)
    await harness.app.state.worker.wait_idle()  # the first sync is done
    budget = harness.app.state.whoop.budget
    assert await spend_the_minute(budget) > 0
    full = (await budget.status())["minute_used"]
    harness.clock.advance(hours=2)
    harness.whoop.expire_access_tokens(whoop_user)
    started = time.monotonic()
    token = await harness.app.state.tokens.get_access_token("user-1")
    assert time.monotonic() - started < 5, "no wait for the next minute"
    assert await harness.whoop_accepts(token)
    assert harness.whoop.token_requests["refresh_token"] == 1
    assert (await budget.status())["minute_used"] == full + 1


async def test_connecting_counts_the_profile_and_leaves_the_code_exchange_to_the_headroom(
    harness,
):
    """Once per connection, the exchange never makes a member wait behind a backfill."""
    budget = harness.app.state.whoop.budget
    before = (await budget.status())["minute_used"]
    await connected(harness)
    assert harness.whoop.token_requests["authorization_code"] == 1
    assert (await budget.status())["minute_used"] == before + 1
