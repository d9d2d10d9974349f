"""SahhaClient against the Sahha emulator (ASGITransport), and MockTransport for odd shapes."""

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx2
import pytest
from redis.asyncio import Redis
from structlog.testing import capture_logs

from gateway.sahha import (
    MemorySahhaCache,
    RedisSahhaCache,
    SahhaCache,
    SahhaClient,
    SahhaError,
    SahhaResult,
)
from sandbox.sahha import SahhaSandbox, SahhaSandboxSettings, create_app
from shared.http import make_async_client
from tests.clock import MutableClock

BASE_URL = "http://sahha.test"
CLIENT_ID = "sandbox-sahha-client"
CLIENT_SECRET = "sandbox-sahha-secret"
SCORES = "/api/v1/profile/score/"
BIOMARKERS = "/api/v1/profile/biomarker/"
SCORE_TYPES = ["readiness", "sleep", "activity", "wellbeing", "mental_wellbeing"]
CATEGORIES = ["sleep", "activity", "vitals"]
NOV_18, NOV_19, NOV_20 = date(2026, 11, 18), date(2026, 11, 19), date(2026, 11, 20)
RANGE = [NOV_18, NOV_19, NOV_20]

Handler = Callable[[httpx2.Request], httpx2.Response]


@dataclass
class Harness:
    client: SahhaClient
    sandbox: SahhaSandbox

    def data_requests(self):
        return [
            r for r in self.sandbox.request_log if r.path.startswith("/api/v1/profile/")
        ]


@pytest.fixture
def clock():
    return MutableClock(datetime(2026, 11, 25, 12, 0, tzinfo=UTC))


@pytest.fixture
async def make_harness(clock):
    """Builds a client on a fresh emulator; `settings` go to SahhaSandboxSettings."""
    https: list[httpx2.AsyncClient] = []

    def make(
        *, cache: SahhaCache | None = None, timeout_s: float = 5.0, **settings: Any
    ) -> Harness:
        app = create_app(
            SahhaSandboxSettings(**{"auto_profiles": False, **settings}), clock=clock
        )
        http = make_async_client(BASE_URL, 5.0, transport=httpx2.ASGITransport(app=app))
        https.append(http)
        client = SahhaClient(
            http,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            cache=cache if cache is not None else MemorySahhaCache(clock=clock),
            clock=clock,
            timeout_s=timeout_s,
        )
        return Harness(client, app.state.sandbox)

    yield make
    for http in https:
        await http.aclose()


def by_id(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found = {item["id"]: item for item in items}
    assert len(found) == len(items), "an item came twice"
    return found


# --- days and values ----------------------------------------------------------------------


@pytest.mark.parametrize("offset", ["+12:00", "-04:00"])
async def test_days_and_values_match_the_emulator_truth(make_harness, offset):
    h = make_harness()
    h.sandbox.add_profile("user-1", tz_offset=offset, days_without_data=[])

    result = await h.client.fetch_days("user-1", NOV_18, NOV_20)

    assert (result.status, result.stale) == ("ok", False)
    assert list(result.days) == RANGE
    for day in RANGE:
        scores = h.sandbox.scores("user-1", day, day)
        markers = h.sandbox.biomarkers("user-1", day, day, categories=CATEGORIES)
        assert len(scores) == 5
        assert markers, "every day, the edges above all, has biomarkers to compare"
        assert result.days[day].date == day
        assert by_id(result.days[day].scores) == by_id(scores)
        assert by_id(result.days[day].biomarkers) == by_id(markers)


async def test_a_day_without_data_is_present_with_empty_lists(make_harness):
    h = make_harness()
    h.sandbox.add_profile("user-1", tz_offset="+05:30", days_without_data=[NOV_19])

    result = await h.client.fetch_days("user-1", NOV_18, NOV_20)

    assert result.days[NOV_19].scores == []
    assert result.days[NOV_19].biomarkers == []
    assert result.days[NOV_18].scores
    assert result.days[NOV_20].scores


async def test_external_id_is_percent_encoded_as_one_path_segment(make_harness):
    h = make_harness()
    odd = "odd id?x=1#&+"
    h.sandbox.add_profile(odd, tz_offset="+00:00", days_without_data=[])

    result = await h.client.fetch_days(odd, NOV_20, NOV_20)

    assert result.status == "ok"
    assert by_id(result.days[NOV_20].scores) == by_id(
        h.sandbox.scores(odd, NOV_20, NOV_20)
    )


# --- the account token --------------------------------------------------------------------


async def test_fifty_concurrent_fetches_make_one_token_request(make_harness):
    h = make_harness()
    h.sandbox.add_profile("user-1", tz_offset="+01:00")

    results = await asyncio.gather(
        *(h.client.fetch_days("user-1", NOV_20, NOV_20) for _ in range(50))
    )

    assert {r.status for r in results} == {"ok"}
    assert h.sandbox.token_requests == 1
    assert len(h.data_requests()) == 100


async def test_refreshes_the_token_once_after_a_401(make_harness, clock):
    h = make_harness(cache=MemorySahhaCache(ttl_s=0, clock=clock))
    h.sandbox.add_profile("user-1", tz_offset="-04:00")
    assert (await h.client.fetch_days("user-1", NOV_20, NOV_20)).status == "ok"
    h.sandbox.expire_tokens()
    seen = len(h.data_requests())

    result = await h.client.fetch_days("user-1", NOV_20, NOV_20)

    assert result.status == "ok"
    assert h.sandbox.token_requests == 2
    assert sorted(r.status for r in h.data_requests()[seen:]) == [200, 200, 401, 401]


async def test_fetches_a_new_token_before_the_old_one_expires(make_harness, clock):
    h = make_harness(cache=MemorySahhaCache(ttl_s=0, clock=clock), token_ttl_s=3600)
    h.sandbox.add_profile("user-1", tz_offset="+12:00")
    await h.client.fetch_days("user-1", NOV_20, NOV_20)

    clock.advance(seconds=3600 - 301)  # outside the 5-minute renewal margin
    await h.client.fetch_days("user-1", NOV_20, NOV_20)
    assert h.sandbox.token_requests == 1
    clock.advance(seconds=2)  # inside it: the old token still works, but is renewed
    result = await h.client.fetch_days("user-1", NOV_20, NOV_20)

    assert result.status == "ok"
    assert h.sandbox.token_requests == 2
    assert all(r.status == 200 for r in h.data_requests())


# --- what Sahha sees ----------------------------------------------------------------------


async def test_sends_repeated_keys_padded_encoded_bounds_and_the_account_scheme(
    make_harness,
):
    h = make_harness()
    h.sandbox.add_profile("user-1", tz_offset="+12:00")

    await h.client.fetch_days("user-1", NOV_19, NOV_20)

    (scores,) = [r for r in h.data_requests() if r.path == SCORES + "user-1"]
    (markers,) = [r for r in h.data_requests() if r.path == BIOMARKERS + "user-1"]
    # The emulator refuses any scheme but `account` with a 401.
    assert (scores.status, markers.status) == (200, 200)
    assert [v for k, v in scores.params if k == "types"] == SCORE_TYPES
    assert [v for k, v in markers.params if k == "categories"] == CATEGORIES
    assert "types" not in dict(markers.params)
    for request in (scores, markers):
        params = dict(request.params)
        assert params["startDateTime"] == "2026-11-18T00:00:00+00:00"
        assert params["endDateTime"] == "2026-11-21T23:59:59+00:00"
        assert "+" not in request.query
        assert "%2B00%3A00" in request.query
        assert "%2C" not in request.query
        assert "," not in request.query


# --- no data, unknown profiles ------------------------------------------------------------


@pytest.mark.parametrize(
    ("empty_as", "http_status"), [("no_content", 204), ("empty_array", 200)]
)
async def test_no_content_and_an_empty_array_are_ok_with_empty_days(
    make_harness, empty_as, http_status
):
    h = make_harness(empty_as=empty_as)
    h.sandbox.add_profile("quiet", with_data=False)

    result = await h.client.fetch_days("quiet", NOV_18, NOV_20)

    assert {r.status for r in h.data_requests()} == {http_status}
    assert (result.status, result.stale) == ("ok", False)
    assert result.fetched_at is not None
    assert list(result.days) == RANGE
    assert all(not d.scores and not d.biomarkers for d in result.days.values())


async def test_unknown_profile_is_not_connected(make_harness):
    h = make_harness()

    result = await h.client.fetch_days("nobody", NOV_20, NOV_20)

    assert result == SahhaResult("not_connected", {}, None, stale=False)
    # The first 404 cancels the other call, which the emulator then logs as a 500.
    assert 404 in {r.status for r in h.data_requests()}
    assert await h.client.fetch_profile("nobody") is None


async def test_fetch_profile_reads_when_data_last_arrived(make_harness):
    h = make_harness()
    h.sandbox.add_profile("user-1", tz_offset="+12:00")

    profile = await h.client.fetch_profile("user-1")

    assert profile is not None
    assert profile.external_id == "user-1"
    assert profile.data_last_received_at is not None
    assert profile.data_last_received_at.utcoffset() == timedelta(0)
    assert profile.data_last_received_at <= datetime(2026, 11, 25, 12, tzinfo=UTC)


async def test_fetch_profile_raises_for_upstream_trouble(make_harness):
    h = make_harness()
    h.sandbox.add_profile("user-1")
    h.sandbox.fail_next("/api/v1/account/profile", 503)

    with pytest.raises(SahhaError) as failed:
        await h.client.fetch_profile("user-1")
    assert failed.value.status == "unavailable"


# --- failures and stale-if-error ----------------------------------------------------------


@pytest.mark.parametrize("http_status", [500, 503])
async def test_server_errors_are_unavailable_and_serve_the_last_result_stale(
    make_harness, clock, http_status
):
    h = make_harness()
    h.sandbox.add_profile("user-1", tz_offset="-04:00")
    first = await h.client.fetch_days("user-1", NOV_19, NOV_20)
    clock.advance(seconds=61)  # past the fresh TTL: Sahha is asked again
    h.sandbox.fail_next(SCORES, http_status)

    with capture_logs() as logs:
        result = await h.client.fetch_days("user-1", NOV_19, NOV_20)

    assert any(r.status == http_status for r in h.data_requests())
    assert (result.status, result.stale) == ("unavailable", True)
    assert result.fetched_at == first.fetched_at
    assert result.days == first.days
    failed = [e for e in logs if e["event"] == "sahha.fetch.failed"]
    assert failed == [
        {
            "event": "sahha.fetch.failed",
            "log_level": "warning",
            "status": "unavailable",
            "error_type": f"http_{http_status}",
            "stale_served": True,
        }
    ]

    h.sandbox.fail_next(BIOMARKERS, http_status)
    uncached = await h.client.fetch_days("user-1", NOV_18, NOV_20)
    assert uncached == SahhaResult("unavailable", {}, None, stale=False)


async def test_a_profile_gone_at_sahha_is_not_connected_never_stale(
    make_harness, clock
):
    h = make_harness()
    h.sandbox.add_profile("user-1")
    await h.client.fetch_days("user-1", NOV_20, NOV_20)
    clock.advance(seconds=61)
    h.sandbox.fail_next(SCORES, 404)

    result = await h.client.fetch_days("user-1", NOV_20, NOV_20)

    assert result == SahhaResult("not_connected", {}, None, stale=False)


async def test_a_delay_past_the_deadline_times_out_in_time_and_serves_stale(
    make_harness, clock
):
    h = make_harness()
    h.sandbox.add_profile("user-1", tz_offset="+12:00")
    first = await h.client.fetch_days("user-1", NOV_20, NOV_20)
    clock.advance(seconds=61)
    h.sandbox.fail_next(SCORES, 500, delay_s=5.0)

    started = time.monotonic()
    result = await h.client.fetch_days("user-1", NOV_20, NOV_20, deadline=started + 0.3)
    elapsed = time.monotonic() - started

    assert elapsed < 0.3 + 0.5
    assert (result.status, result.stale) == ("timeout", True)
    assert result.fetched_at == first.fetched_at
    assert result.days == first.days


async def test_the_client_timeout_bounds_a_fetch_without_a_deadline(make_harness):
    h = make_harness(timeout_s=0.2)
    h.sandbox.add_profile("user-1")
    h.sandbox.fail_next(BIOMARKERS, 500, delay_s=5.0)

    started = time.monotonic()
    result = await h.client.fetch_days("user-1", NOV_20, NOV_20)

    assert time.monotonic() - started < 0.2 + 0.5
    assert result == SahhaResult("timeout", {}, None, stale=False)


async def test_a_deadline_already_past_asks_sahha_nothing(make_harness):
    h = make_harness()
    h.sandbox.add_profile("user-1")

    result = await h.client.fetch_days(
        "user-1", NOV_20, NOV_20, deadline=time.monotonic() - 1
    )

    assert result.status == "timeout"
    assert h.sandbox.request_log == []


async def test_a_stale_entry_past_its_stale_ttl_is_not_served(make_harness, clock):
    h = make_harness(cache=MemorySahhaCache(ttl_s=60, stale_ttl_s=600, clock=clock))
    h.sandbox.add_profile("user-1")
    await h.client.fetch_days("user-1", NOV_20, NOV_20)
    clock.advance(seconds=600)
    h.sandbox.fail_next(SCORES, 503)

    result = await h.client.fetch_days("user-1", NOV_20, NOV_20)

    assert result == SahhaResult("unavailable", {}, None, stale=False)


# --- the cache ----------------------------------------------------------------------------


async def test_a_fresh_cache_hit_makes_no_sahha_request(make_harness, clock):
    h = make_harness()
    h.sandbox.add_profile("user-1", tz_offset="+12:00")
    first = await h.client.fetch_days("user-1", NOV_19, NOV_20)
    seen = len(h.sandbox.request_log)

    clock.advance(seconds=59)
    again = await h.client.fetch_days("user-1", NOV_19, NOV_20)
    assert len(h.sandbox.request_log) == seen
    assert again == first

    clock.advance(seconds=1)
    renewed = await h.client.fetch_days("user-1", NOV_19, NOV_20)
    assert len(h.sandbox.request_log) == seen + 2
    assert renewed.fetched_at == clock()


async def test_a_dead_redis_does_not_fail_the_fetch(make_harness, clock):
    redis = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    cache = RedisSahhaCache(
        redis, f"test:{uuid.uuid4().hex}:", fallback=MemorySahhaCache(clock=clock)
    )
    h = make_harness(cache=cache)
    h.sandbox.add_profile("user-1")

    with capture_logs() as logs:
        result = await h.client.fetch_days("user-1", NOV_20, NOV_20)
        seen = len(h.sandbox.request_log)
        again = await h.client.fetch_days("user-1", NOV_20, NOV_20)
    await redis.aclose()

    assert (result.status, result.stale) == ("ok", False)
    assert result.days[NOV_20].scores
    assert again == result
    assert len(h.sandbox.request_log) == seen, "cached in-process meanwhile"
    events = [e["event"] for e in logs if e["event"].startswith("sahha.cache.")]
    assert events == ["sahha.cache.redis_unavailable"], "one line, not one per call"


@pytest.mark.redis
async def test_replicas_share_results_through_redis(make_harness, redis_url):
    redis = Redis.from_url(redis_url)
    try:
        await redis.ping()
    except Exception as exc:  # pragma: no cover - depends on the machine
        from tests.servers import unavailable

        unavailable(f"Redis at {redis_url} is not reachable ({type(exc).__name__})")
    prefix = f"test:{uuid.uuid4().hex}:"
    one = make_harness(cache=RedisSahhaCache(redis, prefix))
    two = make_harness(cache=RedisSahhaCache(redis, prefix))
    for h in (one, two):
        h.sandbox.add_profile("user-1", tz_offset="+12:00")

    first = await one.client.fetch_days("user-1", NOV_19, NOV_20)
    second = await two.client.fetch_days("user-1", NOV_19, NOV_20)
    await redis.aclose()

    assert two.sandbox.request_log == []
    assert second == first


# --- shapes the emulator cannot produce (MockTransport) -----------------------------------


class FakeSahha:
    """A scripted Sahha: a token route, and data routes answering what a test sets."""

    def __init__(self, scores: Handler, biomarkers: Handler | None = None) -> None:
        self.scores = scores
        self.biomarkers = biomarkers or (lambda _: httpx2.Response(204))
        self.token: Handler = self._token
        self.expires_in = 86_400
        self.tokens_issued = 0
        self.requests: list[httpx2.Request] = []

    def _token(self, request: httpx2.Request) -> httpx2.Response:
        self.tokens_issued += 1
        return httpx2.Response(
            200,
            json={
                "accountToken": f"secret-token-{self.tokens_issued}",
                "expiresIn": self.expires_in,
                "tokenType": "Account",
            },
        )

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        path = request.url.path
        if path == "/api/v1/oauth/account/token":
            return self.token(request)
        if path.startswith(SCORES):
            return self.scores(request)
        return self.biomarkers(request)


@pytest.fixture
async def make_fake_client(clock):
    https: list[httpx2.AsyncClient] = []

    def make(fake: FakeSahha) -> SahhaClient:
        http = make_async_client(
            BASE_URL, 5.0, transport=httpx2.MockTransport(fake.handle)
        )
        https.append(http)
        return SahhaClient(
            http,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            cache=MemorySahhaCache(ttl_s=0, clock=clock),
            clock=clock,
        )

    yield make
    for http in https:
        await http.aclose()


def answer(*items: object, status: int = 200) -> Handler:
    return lambda _: httpx2.Response(status, json=list(items))


async def test_sends_client_credentials_and_the_account_header(make_fake_client):
    fake = FakeSahha(answer())
    await make_fake_client(fake).fetch_days("user-1", NOV_20, NOV_20)

    token_request, *data = fake.requests
    assert json.loads(token_request.content) == {
        "clientId": CLIENT_ID,
        "clientSecret": CLIENT_SECRET,
    }
    assert [r.headers["Authorization"] for r in data] == [
        "account secret-token-1",
        "account secret-token-1",
    ]


async def test_tolerates_nulls_extra_fields_and_both_utc_spellings(make_fake_client):
    z = {
        "id": "a",
        "type": "sleep",
        "score": None,
        "state": None,
        "extra": [1],
        "scoreDateTime": "2026-11-20T00:00:00Z",
    }
    plus = {
        "id": "b",
        "type": "activity",
        "score": 0.5,
        "state": "medium",
        "scoreDateTime": "2026-11-20T00:00:00+00:00",
    }
    fake = FakeSahha(answer(z, plus))

    result = await make_fake_client(fake).fetch_days("user-1", NOV_20, NOV_20)

    assert result.status == "ok"
    assert result.days[NOV_20].scores == [z, plus]


async def test_drops_unattributable_items_and_logs_once_without_values(
    make_fake_client,
):
    good = {"id": "a", "type": "sleep", "score": 0.7, "scoreDateTime": "2026-11-20"}
    bad = [
        {"id": "b", "type": "sleep", "score": 0.123456},
        {"id": "c", "scoreDateTime": "last tuesday", "score": 0.654321},
    ]
    marker = {"id": "m", "category": "sleep", "value": "98765", "endDateTime": None}
    fake = FakeSahha(answer(good, *bad), answer(marker))

    with capture_logs() as logs:
        result = await make_fake_client(fake).fetch_days("user-1", NOV_20, NOV_20)

    assert result.days[NOV_20].scores == [good]
    assert result.days[NOV_20].biomarkers == []
    dropped = [e for e in logs if e["event"] == "sahha.items.dropped"]
    assert dropped == [
        {
            "event": "sahha.items.dropped",
            "log_level": "warning",
            "scores": 2,
            "biomarkers": 1,
        }
    ]
    assert not any(v in repr(logs) for v in ("0.123456", "0.654321", "98765"))


def _raise(exc: Exception) -> Handler:
    def handler(request: httpx2.Request) -> httpx2.Response:
        raise exc

    return handler


@pytest.mark.parametrize(
    ("handler", "status", "error_type"),
    [
        (answer(status=429), "unavailable", "http_429"),
        (answer(status=502), "unavailable", "http_502"),
        (answer(status=400), "error", "http_400"),
        (answer(status=403), "error", "http_403"),
        (
            lambda _: httpx2.Response(200, text="<html>oops</html>"),
            "error",
            "body_not_json",
        ),
        (
            lambda _: httpx2.Response(200, json={"items": []}),
            "error",
            "body_not_a_list",
        ),
        (_raise(httpx2.ConnectError("refused")), "unavailable", "ConnectError"),
        (_raise(httpx2.ReadTimeout("slow")), "timeout", "ReadTimeout"),
    ],
)
async def test_maps_upstream_failures_to_statuses(
    make_fake_client, handler, status, error_type
):
    fake = FakeSahha(handler)
    with capture_logs() as logs:
        result = await make_fake_client(fake).fetch_days("user-1", NOV_20, NOV_20)

    assert result == SahhaResult(status, {}, None, stale=False)
    (failed,) = [e for e in logs if e["event"] == "sahha.fetch.failed"]
    assert (failed["status"], failed["error_type"]) == (status, error_type)


async def test_a_second_401_is_an_error_after_one_refresh(make_fake_client):
    fake = FakeSahha(answer(status=401), answer())

    result = await make_fake_client(fake).fetch_days("user-1", NOV_20, NOV_20)

    assert result.status == "error"
    assert fake.tokens_issued == 2
    score_calls = [r for r in fake.requests if r.url.path.startswith(SCORES)]
    assert len(score_calls) == 2


@pytest.mark.parametrize(
    ("token_status", "status"), [(401, "error"), (503, "unavailable")]
)
async def test_a_refused_token_request_gives_a_status(
    make_fake_client, token_status, status
):
    fake = FakeSahha(answer())
    fake.token = lambda _: httpx2.Response(token_status, json={"title": "no"})

    result = await make_fake_client(fake).fetch_days("user-1", NOV_20, NOV_20)

    assert result == SahhaResult(status, {}, None, stale=False)


async def test_a_short_lived_token_is_renewed_a_tenth_of_its_life_early(
    make_fake_client, clock
):
    fake = FakeSahha(answer())
    fake.expires_in = 100
    client = make_fake_client(fake)
    await client.fetch_days("user-1", NOV_20, NOV_20)
    clock.advance(seconds=89)
    await client.fetch_days("user-1", NOV_20, NOV_20)
    assert fake.tokens_issued == 1
    clock.advance(seconds=1)
    await client.fetch_days("user-1", NOV_20, NOV_20)
    assert fake.tokens_issued == 2


async def test_never_logs_the_token_or_the_secret(make_fake_client):
    fake = FakeSahha(answer(status=401), answer(status=500))

    with capture_logs() as logs:
        await make_fake_client(fake).fetch_days("user-1", NOV_20, NOV_20)

    assert logs
    assert "secret-token" not in repr(logs)
    assert CLIENT_SECRET not in repr(logs)
