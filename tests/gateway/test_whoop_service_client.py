import contextlib
from datetime import date

import httpx2

from gateway.breaker import CircuitBreaker
from gateway.whoop_service_client import WhoopServiceClient


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_trial_call_failing_oddly_never_leaves_the_breaker_stuck():
    clock = Clock()
    mode = {"fail": "odd"}

    def handler(request: httpx2.Request) -> httpx2.Response:
        if mode["fail"] == "odd":
            raise UnicodeEncodeError("ascii", "é", 0, 1, "not ascii")
        if mode["fail"] == "down":
            raise httpx2.ConnectError("refused", request=request)
        return httpx2.Response(200, json={"connection": "not_connected"})

    breaker = CircuitBreaker(failure_threshold=1, reset_timeout_s=5.0, clock=clock)
    http = httpx2.AsyncClient(
        transport=httpx2.MockTransport(handler), base_url="http://ws"
    )
    client = WhoopServiceClient(http, api_key="k", breaker=breaker)
    day = date(2026, 11, 20)
    mode["fail"] = "down"
    assert (await client.daily("u", day, day)).status == "unavailable"
    assert breaker.state == "open"
    clock.now = 6.0  # half-open: the trial call fails in an unexpected way
    mode["fail"] = "odd"
    assert (await client.daily("u", day, day)).status == "unavailable"
    assert breaker.state == "open", "the failure was recorded, the trial slot freed"
    clock.now = 12.0
    mode["fail"] = None
    result = await client.daily("u", day, day)
    assert result.status == "error" or result.status == "not_connected"
    assert breaker.state == "closed"
    await http.aclose()


async def test_a_spent_deadline_takes_no_trial_slot():
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout_s=5.0, clock=clock)
    breaker.record_failure()
    clock.now = 6.0
    http = httpx2.AsyncClient(
        transport=httpx2.MockTransport(lambda r: httpx2.Response(200)),
        base_url="http://ws",
    )
    client = WhoopServiceClient(http, api_key="k", breaker=breaker)
    day = date(2026, 11, 20)
    assert (await client.daily("u", day, day, deadline=0.0)).status == "timeout"
    assert breaker.allow(), "the trial slot is still free"
    await http.aclose()


async def test_a_cancelled_trial_call_frees_the_trial_slot():
    import asyncio

    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout_s=5.0, clock=clock)
    breaker.record_failure()
    clock.now = 6.0  # half-open
    started = asyncio.Event()

    async def hang(request: httpx2.Request) -> httpx2.Response:
        started.set()
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    http = httpx2.AsyncClient(
        transport=httpx2.MockTransport(hang), base_url="http://ws"
    )
    client = WhoopServiceClient(http, api_key="k", breaker=breaker)
    day = date(2026, 11, 20)
    trial = asyncio.create_task(client.daily("u", day, day))
    await started.wait()
    assert not breaker.allow(), "the trial call holds the slot while it runs"
    trial.cancel()  # the caller went away mid-call
    with contextlib.suppress(asyncio.CancelledError):
        await trial
    assert breaker.allow(), "a cancelled trial leaves the slot to the next call"
    await http.aclose()


def problem(status: int, code: str) -> httpx2.Response:
    return httpx2.Response(
        status,
        json={
            "type": f"urn:problem:{code}",
            "title": "x",
            "status": status,
            "code": code,
        },
        headers={"content-type": "application/problem+json"},
    )


async def test_answers_about_one_user_never_count_at_the_breaker():
    """A user's needs_reauth, not_connected, spent quota or missing scope (any 4xx), and the
    service saying WHOOP failed that one request, are answers of a healthy service."""
    answers = [
        problem(409, "needs_reauth"),
        problem(404, "not_connected"),
        problem(429, "user_quota_exceeded"),
        problem(403, "scope_not_granted"),
        problem(502, "whoop_unavailable"),
        problem(502, "whoop_unavailable"),
        problem(502, "whoop_unavailable"),
    ]
    http = httpx2.AsyncClient(
        transport=httpx2.MockTransport(lambda r: answers.pop(0)), base_url="http://ws"
    )
    breaker = CircuitBreaker(failure_threshold=3)
    client = WhoopServiceClient(http, api_key="k", breaker=breaker)
    codes = []
    while answers:
        with contextlib.suppress(Exception):
            await client.call("POST", "/internal/sync/u")
        codes.append(breaker.state)
    assert codes == ["closed"] * 7
    await http.aclose()


async def test_the_services_own_5xx_still_opens_the_breaker():
    http = httpx2.AsyncClient(
        transport=httpx2.MockTransport(lambda r: problem(500, "internal_error")),
        base_url="http://ws",
    )
    breaker = CircuitBreaker(failure_threshold=3)
    client = WhoopServiceClient(http, api_key="k", breaker=breaker)
    day = date(2026, 11, 20)
    for _ in range(3):
        assert (await client.daily("u", day, day)).status == "unavailable"
    assert breaker.state == "open"
    await http.aclose()


async def test_a_call_cut_short_by_the_requests_own_deadline_does_not_count():
    """The request spent its deadline elsewhere: running out says nothing of the service."""
    import asyncio
    import time

    async def slow(request: httpx2.Request) -> httpx2.Response:
        await asyncio.sleep(5)
        return httpx2.Response(200)

    http = httpx2.AsyncClient(
        transport=httpx2.MockTransport(slow), base_url="http://ws"
    )
    breaker = CircuitBreaker(failure_threshold=1)
    client = WhoopServiceClient(http, api_key="k", timeout_s=10.0, breaker=breaker)
    day = date(2026, 11, 20)
    left = time.monotonic() + 0.2
    assert (await client.daily("u", day, day, deadline=left)).status == "timeout"
    assert breaker.state == "closed"
    client_full = WhoopServiceClient(http, api_key="k", timeout_s=0.2, breaker=breaker)
    assert (await client_full.daily("u", day, day)).status == "timeout"
    assert breaker.state == "open", "the whole timeout spent: the service is slow"
    await http.aclose()
