"""The WHOOP emulator's `/sandbox/*` routes that tests and benchmarks in other processes read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx2

from sandbox.whoop import WhoopSandboxSettings, create_app

T0 = datetime(2025, 6, 15, 16, 0, tzinfo=UTC)


async def test_requests_lists_data_api_calls_with_their_time_and_status():
    now = [T0]
    app = create_app(
        WhoopSandboxSettings(rate_limit_per_minute=2), clock=lambda: now[0]
    )
    sandbox = app.state.sandbox
    user = sandbox.add_user()
    headers = {
        "Authorization": f"Bearer {sandbox.issue_tokens(user.user_id)['access_token']}"
    }
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(
        transport=transport, base_url="http://whoop.test"
    ) as client:
        for _ in range(3):  # the third is over the limit of 2 a minute
            await client.get("/developer/v2/cycle", headers=headers)
            now[0] += timedelta(seconds=1)
        await client.get("/sandbox/stats")  # not a data-API call: not listed
        listed = (await client.get("/sandbox/requests")).json()
        profile = (
            await client.get(
                "/sandbox/requests", params={"path_prefix": "/developer/v2/user"}
            )
        ).json()

    assert [(r["method"], r["path"], r["status"]) for r in listed] == [
        ("GET", "/developer/v2/cycle", 200),
        ("GET", "/developer/v2/cycle", 200),
        ("GET", "/developer/v2/cycle", 429),
    ]
    assert [datetime.fromisoformat(r["at"]) for r in listed] == [
        T0 + timedelta(seconds=i) for i in range(3)
    ]
    assert profile == []
