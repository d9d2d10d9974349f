"""The per-user public rate limit (CONTRACT.md §9): `PUBLIC_RATE_LIMIT_PER_MINUTE` requests per
user per minute on `/api/v1/*`, counted after authentication, one limit across gateway replicas
through Redis, and in-process while Redis is down."""

import asyncio
import time
import uuid
from contextlib import AsyncExitStack

import httpx2
import pytest
from structlog.testing import capture_logs

from gateway.main import Transports, create_app
from gateway.ratelimit import PublicRateLimiter, RateLimited
from gateway.settings import GatewaySettings
from tests.conftest import running
from tests.gateway.harness import JWT_SECRET, token_for
from tests.servers import restartable_redis

LIMIT = 120


def new_user() -> str:
    return str(uuid.uuid4())


async def inside_one_window(margin_s: float = 15.0) -> None:
    """Wait, if needed, so that a burst of requests stays inside one minute of the clock.

    `limits`' sliding-window counter weighs the previous minute's count by what is left of it; a
    burst straddling a minute's edge would be weighed, not counted exactly as this test counts.
    """
    into = time.time() % 60
    if into > 60 - margin_s:
        await asyncio.sleep(60 - into + 0.05)


def bearer(user_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(user_id)}"}


def assert_rate_limited(resp: httpx2.Response) -> None:
    assert resp.status_code == 429, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["code"] == "rate_limited"
    assert 1 <= int(resp.headers["retry-after"]) <= 60


async def test_the_121st_request_of_a_user_in_a_minute_is_429_with_retry_after(stack):
    user, other = new_user(), new_user()
    path = f"/api/v1/whoop/status/{user}"
    await inside_one_window()
    # Unauthenticated requests, even naming the user, spend nothing of the user's quota.
    for headers in ({}, {"Authorization": "Bearer not-a-jwt"}):
        for _ in range(10):
            resp = await stack.client.get(path, headers=headers)
            assert resp.status_code == 401
    statuses = [
        (await stack.client.get(path, headers=bearer(user))).status_code
        for _ in range(LIMIT)
    ]
    assert statuses == [200] * LIMIT
    over = await stack.client.get(path, headers=bearer(user))
    assert_rate_limited(over)
    # Every /api/v1 route of that user, not only the one it hammered.
    assert_rate_limited(
        await stack.client.get(f"/api/v1/health/sources/{user}", headers=bearer(user))
    )
    # Another user is unaffected.
    mine = await stack.client.get(
        f"/api/v1/whoop/status/{other}", headers=bearer(other)
    )
    assert mine.status_code == 200
    # The OAuth callback carries no bearer and is not limited per user.
    callback = await stack.client.get(
        "/api/v1/whoop/callback", params={"state": "s" * 40, "code": "c"}
    )
    assert callback.status_code != 429


@pytest.mark.parametrize("stack", [{"public_rate_limit_per_minute": 3}], indirect=True)
async def test_the_limit_is_configurable(stack):
    user = new_user()
    await inside_one_window()
    path = f"/api/v1/whoop/status/{user}"
    for _ in range(3):
        assert (await stack.client.get(path, headers=bearer(user))).status_code == 200
    assert_rate_limited(await stack.client.get(path, headers=bearer(user)))


def status_relay() -> httpx2.MockTransport:
    """A WHOOP service that answers every status call."""

    def handle(request: httpx2.Request) -> httpx2.Response:
        user_id = request.url.path.rsplit("/", 1)[-1]
        return httpx2.Response(200, json={"user_id": user_id, "connected": False})

    return httpx2.MockTransport(handle)


async def gateway(s: AsyncExitStack, tmp_path, **values) -> httpx2.AsyncClient:
    settings = GatewaySettings(
        _env_file=None,
        var_dir=tmp_path,
        whoop_service_url="http://whoop-service",
        whoop_service_api_key="k",
        supabase_jwt_secret=JWT_SECRET,
        **values,
    )
    app = create_app(settings, transports=Transports(whoop_service=status_relay()))
    await s.enter_async_context(running(app))
    return await s.enter_async_context(
        httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://g")
    )


@pytest.mark.redis
async def test_two_gateways_on_one_redis_enforce_one_limit(tmp_path, redis_url, redis):
    user, other = new_user(), new_user()
    path = f"/api/v1/whoop/status/{user}"
    async with AsyncExitStack() as s:
        one = await gateway(s, tmp_path, redis_url=redis_url)
        two = await gateway(s, tmp_path, redis_url=redis_url)
        await inside_one_window()
        for n in range(LIMIT):
            resp = await (one if n % 2 else two).get(path, headers=bearer(user))
            assert resp.status_code == 200, (n, resp.text)
        assert_rate_limited(await one.get(path, headers=bearer(user)))
        assert_rate_limited(await two.get(path, headers=bearer(user)))
        resp = await two.get(f"/api/v1/whoop/status/{other}", headers=bearer(other))
        assert resp.status_code == 200
    keys = [key async for key in redis.scan_iter(match=f"*{user}*")]
    assert keys, "counted in Redis"
    assert all([await redis.ttl(key) > 0 for key in keys])


@pytest.mark.redis
async def test_a_redis_outage_falls_back_to_counting_in_process(tmp_path):
    user = new_user()
    path = f"/api/v1/whoop/status/{user}"
    with restartable_redis() as server:
        async with AsyncExitStack() as s:
            client = await gateway(
                s, tmp_path, redis_url=server.url, public_rate_limit_per_minute=5
            )
            await inside_one_window()
            assert (await client.get(path, headers=bearer(user))).status_code == 200
            server.stop()
            with capture_logs() as logs:
                statuses = [
                    (await client.get(path, headers=bearer(user))).status_code
                    for _ in range(6)
                ]
    # Still answered; the in-process count starts afresh and still stops the user at 5.
    assert statuses == [200] * 5 + [429]
    events = [e["event"] for e in logs if e["event"].startswith("gateway.rate_limit.")]
    assert events == ["gateway.rate_limit.redis_unavailable"]


class Ticks:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.redis
async def test_a_hung_redis_costs_one_timeout_then_redis_is_asked_again_later():
    from redis.asyncio import Redis

    ticks = Ticks()
    with restartable_redis() as server:
        redis = Redis.from_url(
            server.url
        )  # no socket timeout: the limiter bounds its calls
        limiter = PublicRateLimiter(
            2, redis=redis, op_timeout_s=0.2, retry_s=5.0, monotonic=ticks
        )
        await inside_one_window()
        await limiter.check("u")
        server.pause()
        try:
            started = time.monotonic()
            with capture_logs() as logs:
                await limiter.check("u")  # times out once, counted in-process
                await limiter.check("u")
                with pytest.raises(RateLimited) as info:
                    await limiter.check("u")
            assert time.monotonic() - started < 1.0
            assert not limiter.redis_available
            assert [(e["event"], e.get("error_type")) for e in logs][:1] == [
                ("gateway.rate_limit.redis_unavailable", "TimeoutError")
            ]
            assert info.value.headers["Retry-After"].isdigit()
        finally:
            server.resume()
        ticks.now += 5.0
        with capture_logs() as logs:
            await limiter.check("v")  # Redis again
            await limiter.check("v")
            with pytest.raises(RateLimited):
                await limiter.check("v")
        assert limiter.redis_available
        assert next(e["event"] for e in logs) == "gateway.rate_limit.redis_restored"
        assert [key async for key in redis.scan_iter(match="*/v/*")]
        await redis.aclose()
