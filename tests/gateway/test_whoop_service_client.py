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
