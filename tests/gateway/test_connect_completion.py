"""CONTRACT.md §8 through the public API: a forwarded consent link never links someone else's
WHOOP account; the app of the user who started the flow finishes it, once."""

from urllib.parse import parse_qs, urlsplit


def redirect_query(resp) -> dict[str, str]:
    assert resp.status_code == 302, resp.text
    location = urlsplit(resp.headers["location"])
    assert f"{location.scheme}://{location.netloc}" == "hosapp://whoop"
    return {k: v[0] for k, v in parse_qs(location.query).items()}


async def complete(stack, user_id: str, completion: str, *, as_user: str | None = None):
    return await stack.send(
        "POST",
        f"/api/v1/whoop/connect/{user_id}/complete",
        as_user or user_id,
        json={"completion": completion},
    )


async def whoop_status(stack, user_id: str) -> str:
    resp = await stack.get(f"/api/v1/whoop/status/{user_id}", user_id)
    return resp.json()["status"]


def revokes(stack) -> int:
    return stack.whoop.whoop.count_requests("/developer/v2/user/access", "DELETE")


async def test_the_forwarded_consent_link_attack_links_nothing(stack):
    victim_whoop = stack.whoop.whoop.add_user(history_days=5).user_id
    # The attacker starts a flow for their own id and has the victim approve it at WHOOP.
    back = await stack.connect_whoop("attacker", sandbox_user_id=str(victim_whoop))
    query = redirect_query(back)
    assert query["status"] == "pending"
    assert await whoop_status(stack, "attacker") == "not_connected"
    assert await whoop_status(stack, "victim") == "not_connected"

    # Not with the attacker's token for the victim's id...
    foreign = await complete(stack, "victim", query["completion"], as_user="attacker")
    assert foreign.status_code == 403
    assert foreign.json()["code"] == "forbidden_user"
    # ...and the victim's app, handed the redirect, refuses the link and revokes the grant.
    refused = await complete(stack, "victim", query["completion"])
    assert refused.status_code == 403
    assert refused.json()["code"] == "connect_user_mismatch"
    assert revokes(stack) == 1
    # The completion is spent: the attacker cannot redeem it afterwards either.
    late = await complete(stack, "attacker", query["completion"])
    assert late.status_code == 400
    assert late.json()["code"] == "invalid_completion"

    assert await whoop_status(stack, "attacker") == "not_connected"
    day = await stack.get("/api/v1/health/attacker", "attacker")
    assert day.json()["sources"]["whoop"]["status"] == "not_connected"
    assert all(not d["whoop"]["sleeps"] for d in day.json()["days"])


async def test_the_honest_flow_links_only_after_complete_and_only_once(stack):
    back = await stack.connect_whoop("member")
    query = redirect_query(back)
    assert query["status"] == "pending"
    assert back.headers["cache-control"] == "no-store"
    assert await whoop_status(stack, "member") == "not_connected"
    linked = await complete(stack, "member", query["completion"])
    assert linked.status_code == 200, linked.text
    assert linked.json()["status"] == "connected"
    assert await whoop_status(stack, "member") == "connected"
    again = await complete(stack, "member", query["completion"])
    assert again.status_code == 400
    assert again.json()["code"] == "invalid_completion"
    assert again.headers["content-type"].startswith("application/problem+json")


async def test_a_completion_body_is_validated(stack):
    for body in ({}, {"completion": ""}, {"completion": "x" * 300}, {"completion": 5}):
        resp = await stack.send(
            "POST", "/api/v1/whoop/connect/member/complete", "member", json=body
        )
        assert resp.status_code == 422, body
    unauthenticated = await stack.client.post(
        "/api/v1/whoop/connect/member/complete", json={"completion": "x" * 43}
    )
    assert unauthenticated.status_code == 401
