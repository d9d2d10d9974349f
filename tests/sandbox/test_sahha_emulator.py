"""Behaviour of the Sahha emulator: auth, query strictness, day edges, faults, determinism."""

from __future__ import annotations

import time as wall
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import httpx2
import pytest
from fastapi import FastAPI

from sandbox.sahha import SahhaSandbox, SahhaSandboxSettings, create_app

BASE_URL = "http://sahha.test"
CLIENT = {"clientId": "sandbox-sahha-client", "clientSecret": "sandbox-sahha-secret"}
SCORES = "/api/v1/profile/score"
BIOMARKERS = "/api/v1/profile/biomarker"


class FakeClock:
    """A settable, tz-aware clock."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2025, 7, 20, 0, 0, tzinfo=UTC))


@pytest.fixture
def settings() -> SahhaSandboxSettings:
    return SahhaSandboxSettings(auto_profiles=False)


@pytest.fixture
def app(settings: SahhaSandboxSettings, clock: FakeClock) -> FastAPI:
    return create_app(settings, clock=clock)


@pytest.fixture
def sandbox(app: FastAPI) -> SahhaSandbox:
    state: SahhaSandbox = app.state.sandbox
    return state


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx2.AsyncClient]:
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        yield http


async def auth(client: httpx2.AsyncClient) -> dict[str, str]:
    response = await client.post("/api/v1/oauth/account/token", json=CLIENT)
    assert response.status_code == 200
    return {"Authorization": f"account {response.json()['accountToken']}"}


# --- tokens and auth --------------------------------------------------------------------------


async def test_token_works_until_its_ttl_runs_out_by_the_clock(client, sandbox, clock):
    headers = await auth(client)
    url = "/api/v1/account/profile/nz"
    sandbox.add_profile("nz", tz_offset="+12:00")

    assert (await client.get(url, headers=headers)).status_code == 200
    clock.advance(seconds=86_399)
    assert (await client.get(url, headers=headers)).status_code == 200
    clock.advance(seconds=1)
    expired = await client.get(url, headers=headers)
    assert expired.status_code == 401
    assert expired.json()["statusCode"] == 401


async def test_wrong_credentials_are_refused_and_every_token_request_is_counted(
    client, sandbox
):
    bad = await client.post(
        "/api/v1/oauth/account/token", json={**CLIENT, "clientSecret": "nope"}
    )
    assert bad.status_code == 401
    await auth(client)
    assert sandbox.token_requests == 2


async def test_bearer_scheme_is_refused_and_account_scheme_is_case_insensitive(
    client, sandbox
):
    sandbox.add_profile("nz")
    token = (await auth(client))["Authorization"].split(" ", 1)[1]
    url = "/api/v1/account/profile/nz"
    for scheme, status in [
        ("Bearer", 401),
        ("account", 200),
        ("Account", 200),
        ("ACCOUNT", 200),
    ]:
        response = await client.get(url, headers={"Authorization": f"{scheme} {token}"})
        assert response.status_code == status, scheme
    assert (await client.get(url)).status_code == 401
    unknown = await client.get(url, headers={"Authorization": "account not-a-token"})
    assert unknown.status_code == 401


async def test_expire_tokens_invalidates_issued_tokens(client, sandbox):
    sandbox.add_profile("nz")
    headers = await auth(client)
    sandbox.expire_tokens()
    response = await client.get("/api/v1/account/profile/nz", headers=headers)
    assert response.status_code == 401


async def test_env_vars_are_read_inside_create_app(monkeypatch, clock):
    monkeypatch.setenv("SANDBOX_SAHHA_CLIENT_ID", "env-client")
    monkeypatch.setenv("SANDBOX_SAHHA_TOKEN_TTL_S", "60")
    monkeypatch.setenv("SANDBOX_SAHHA_AUTO_PROFILES", "false")
    app = create_app(clock=clock)
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url=BASE_URL
    ) as http:
        body = {**CLIENT, "clientId": "env-client"}
        response = await http.post("/api/v1/oauth/account/token", json=body)
    assert response.status_code == 200
    assert response.json()["expiresIn"] == 60
    assert app.state.sandbox.get_profile("anyone") is None


# --- score query strictness -------------------------------------------------------------------


async def test_score_types_are_required(client, sandbox):
    sandbox.add_profile("nz")
    response = await client.get(f"{SCORES}/nz", headers=await auth(client))
    assert response.status_code == 400
    assert response.json()["errors"][0]["origin"] == "types"


async def test_repeated_type_keys_select_several_types(client, sandbox):
    sandbox.add_profile("nz", tz_offset="+12:00", days_without_data=())
    params = {
        "types": ["sleep", "activity", "sleep"],
        "startDateTime": "2025-07-15T00:00:00+12:00",
        "endDateTime": "2025-07-16T00:00:00+12:00",
    }
    response = await client.get(
        f"{SCORES}/nz", params=params, headers=await auth(client)
    )
    assert response.status_code == 200
    pairs = sorted((s["scoreDateTime"][:10], s["type"]) for s in response.json())
    assert pairs == [
        ("2025-07-15", "activity"),
        ("2025-07-15", "sleep"),
        ("2025-07-16", "activity"),
        ("2025-07-16", "sleep"),
    ]


@pytest.mark.parametrize(
    "bad", ["activity,sleep", "mental wellbeing", "Sleep", "wellness", ""]
)
async def test_comma_joined_or_unknown_types_are_refused(client, sandbox, bad):
    sandbox.add_profile("nz")
    response = await client.get(
        f"{SCORES}/nz", params={"types": bad}, headers=await auth(client)
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    "value",
    [
        "2025-07-15T00:00:00 12:00",  # a `+` sent unencoded, decoded as a space
        "2025-07-15T00:00:00",  # no offset: ambiguous
        "15/07/2025",
        "2025-13-01",
        "yesterday",
    ],
)
async def test_unparseable_dates_are_refused(client, sandbox, value):
    sandbox.add_profile("nz")
    params = {"types": "sleep", "startDateTime": value}
    response = await client.get(
        f"{SCORES}/nz", params=params, headers=await auth(client)
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["origin"] == "startDateTime"


async def test_an_unencoded_plus_in_the_raw_query_fails_and_an_encoded_one_works(
    client, sandbox
):
    sandbox.add_profile("nz", tz_offset="+12:00", days_without_data=())
    headers = await auth(client)
    raw = f"{SCORES}/nz?types=sleep&startDateTime=2025-07-15T00:00:00+12:00"
    assert (await client.get(raw, headers=headers)).status_code == 400
    encoded = raw.replace("+12:00", "%2B12:00")
    assert (await client.get(encoded, headers=headers)).status_code == 200
    assert sandbox.request_log[-2].query.endswith("+12:00")


async def test_start_after_end_and_bad_version_are_refused(client, sandbox):
    sandbox.add_profile("nz")
    headers = await auth(client)
    backwards = {
        "types": "sleep",
        "startDateTime": "2025-07-15",
        "endDateTime": "2025-07-14",
    }
    assert (
        await client.get(f"{SCORES}/nz", params=backwards, headers=headers)
    ).status_code == 400
    bad_version = {"types": "sleep", "version": "one"}
    response = await client.get(f"{SCORES}/nz", params=bad_version, headers=headers)
    assert response.status_code == 400


async def test_version_filter(client, sandbox):
    sandbox.add_profile("nz", days_without_data=())
    headers = await auth(client)
    params = {
        "types": "sleep",
        "startDateTime": "2025-07-10",
        "endDateTime": "2025-07-15",
    }
    v1 = await client.get(
        f"{SCORES}/nz", params={**params, "version": "1"}, headers=headers
    )
    v2 = await client.get(
        f"{SCORES}/nz", params={**params, "version": "2"}, headers=headers
    )
    assert v1.status_code == 200
    assert v2.status_code == 204


# --- day edges --------------------------------------------------------------------------------


async def _score_days(
    client: httpx2.AsyncClient,
    external_id: str,
    start: str,
    end: str,
    headers: dict[str, str],
) -> list[str]:
    params = {"types": "sleep", "startDateTime": start, "endDateTime": end}
    response = await client.get(
        f"{SCORES}/{external_id}", params=params, headers=headers
    )
    if response.status_code == 204:
        return []
    assert response.status_code == 200
    return sorted(s["scoreDateTime"] for s in response.json())


async def test_plus_twelve_profile_range_edges(client, sandbox):
    sandbox.add_profile("nz", tz_offset="+12:00", days_without_data=())
    headers = await auth(client)
    local_day = await _score_days(
        client, "nz", "2025-07-12T00:00:00+12:00", "2025-07-12T23:59:59+12:00", headers
    )
    assert local_day == ["2025-07-12T00:00:00+12:00"]
    just_after = await _score_days(
        client, "nz", "2025-07-12T00:00:01+12:00", "2025-07-13T00:00:00+12:00", headers
    )
    assert just_after == ["2025-07-13T00:00:00+12:00"]
    # Date-only bounds are whole UTC days: local 12 July (11 July 12:00 UTC) falls outside,
    # local 13 July (12 July 12:00 UTC) inside. A client must pad and filter by local date.
    utc_day = await _score_days(client, "nz", "2025-07-12", "2025-07-12", headers)
    assert utc_day == ["2025-07-13T00:00:00+12:00"]


async def test_minus_four_profile_range_edges(client, sandbox):
    sandbox.add_profile("ny", tz_offset="-04:00", days_without_data=())
    headers = await auth(client)
    local_day = await _score_days(
        client, "ny", "2025-07-12T00:00:00-04:00", "2025-07-12T23:59:59-04:00", headers
    )
    assert local_day == ["2025-07-12T00:00:00-04:00"]
    # 12 July local midnight is 04:00 UTC: a UTC window ending at 03:59 misses it.
    before = await _score_days(
        client, "ny", "2025-07-11T04:00:00Z", "2025-07-12T03:59:59Z", headers
    )
    assert before == ["2025-07-11T00:00:00-04:00"]
    utc_day = await _score_days(client, "ny", "2025-07-12", "2025-07-12", headers)
    assert utc_day == ["2025-07-12T00:00:00-04:00"]


async def test_scores_match_the_truth_and_come_newest_first(client, sandbox):
    sandbox.add_profile("nz", tz_offset="+12:00")
    params = {
        "types": ["sleep", "readiness", "activity", "wellbeing", "mental_wellbeing"],
        "startDateTime": "2025-07-01T00:00:00+12:00",
        "endDateTime": "2025-07-10T00:00:00+12:00",
    }
    response = await client.get(
        f"{SCORES}/nz", params=params, headers=await auth(client)
    )
    body = response.json()
    assert len(body) >= 30
    stamps = [s["scoreDateTime"] for s in body]
    assert stamps == sorted(stamps, reverse=True)
    truth = sandbox.scores("nz", date(2025, 7, 1), date(2025, 7, 10))
    assert sorted(body, key=lambda s: s["id"]) == sorted(truth, key=lambda s: s["id"])
    assert all(s["score"] is None or 0.0 <= s["score"] <= 1.0 for s in body)


async def test_todays_scores_appear_only_after_local_six(client, sandbox, clock):
    sandbox.add_profile("nz", tz_offset="+12:00", days_without_data=())
    clock.now = datetime(2025, 7, 20, 5, 59, tzinfo=UTC) - timedelta(hours=12)
    assert sandbox.scores("nz", date(2025, 7, 20), date(2025, 7, 20)) == []
    served = await _score_days(
        client,
        "nz",
        "2025-07-19T00:00:00+12:00",
        "2025-07-20T00:00:00+12:00",
        await auth(client),
    )
    assert served == ["2025-07-19T00:00:00+12:00"]
    assert len(sandbox.scores("nz", date(2025, 7, 19), date(2025, 7, 19))) == 5
    clock.now = datetime(2025, 7, 20, 18, 0, tzinfo=UTC) - timedelta(hours=12)
    assert len(sandbox.scores("nz", date(2025, 7, 20), date(2025, 7, 20))) == 5
    assert sandbox.scores("nz", date(2025, 7, 21), date(2025, 7, 21)) == []


def _sleep_days(
    sandbox: SahhaSandbox, external_id: str, first: date, last: date
) -> set[str]:
    scores = sandbox.scores(external_id, first, last, types=["sleep"])
    return {s["scoreDateTime"][:10] for s in scores}


async def test_history_days_bound_the_data(clock):
    sandbox = SahhaSandbox(SahhaSandboxSettings(history_days=30), clock)
    sandbox.add_profile("short", tz_offset="+00:00", days_without_data=())
    days = _sleep_days(sandbox, "short", date(2024, 1, 1), date(2025, 12, 31))
    # The clock reads 2025-07-20 00:00 UTC: today's data is not ready yet.
    assert (min(days), max(days), len(days)) == ("2025-06-20", "2025-07-19", 30)


async def test_about_one_day_in_twenty_is_missing_unless_days_are_given(clock):
    sandbox = SahhaSandbox(SahhaSandboxSettings(history_days=400), clock)
    sandbox.add_profile("random", tz_offset="+00:00")
    sandbox.add_profile(
        "explicit", tz_offset="+00:00", days_without_data=[date(2025, 7, 18)]
    )
    first, last = date(2024, 7, 1), date(2025, 7, 19)
    span = (last - first).days + 1
    random_days = _sleep_days(sandbox, "random", first, last)
    assert 0.90 * span <= len(random_days) <= 0.99 * span
    explicit_days = _sleep_days(sandbox, "explicit", first, last)
    assert len(explicit_days) == span - 1
    assert "2025-07-18" not in explicit_days


# --- biomarkers -------------------------------------------------------------------------------


async def test_biomarker_categories_are_required(client, sandbox):
    sandbox.add_profile("nz")
    headers = await auth(client)
    response = await client.get(
        f"{BIOMARKERS}/nz", params={"types": "steps"}, headers=headers
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["origin"] == "categories"


@pytest.mark.parametrize(
    "params",
    [
        {"categories": "activity,sleep"},
        {"categories": "heart"},
        {"categories": "activity", "types": "step"},
    ],
)
async def test_unknown_categories_and_types_are_refused(client, sandbox, params):
    sandbox.add_profile("nz")
    response = await client.get(
        f"{BIOMARKERS}/nz", params=params, headers=await auth(client)
    )
    assert response.status_code == 400


async def test_types_filter_biomarkers_and_known_empty_categories_are_no_data(
    client, sandbox
):
    sandbox.add_profile("nz", tz_offset="+12:00", days_without_data=())
    headers = await auth(client)
    window = {"startDateTime": "2025-07-14T00:00:00+12:00", "endDateTime": "2025-07-16"}
    params = {
        **window,
        "categories": ["activity", "sleep"],
        "types": ["steps", "sleep_duration"],
    }
    response = await client.get(f"{BIOMARKERS}/nz", params=params, headers=headers)
    assert {b["type"] for b in response.json()} == {"steps", "sleep_duration"}
    body_only = await client.get(
        f"{BIOMARKERS}/nz", params={**window, "categories": "body"}, headers=headers
    )
    assert body_only.status_code == 204


@pytest.mark.parametrize(
    ("offset", "external_id"), [("+12:00", "nz"), ("-04:00", "ny")]
)
async def test_sleep_biomarkers_cover_18_00_to_17_59_59_local(
    client, sandbox, offset, external_id
):
    sandbox.add_profile(external_id, tz_offset=offset, days_without_data=())
    params = {
        "categories": "sleep",
        "startDateTime": f"2025-07-14T18:00:00{offset}",
        "endDateTime": f"2025-07-14T18:00:00{offset}",
    }
    response = await client.get(
        f"{BIOMARKERS}/{external_id}", params=params, headers=await auth(client)
    )
    by_type = {b["type"]: b for b in response.json()}
    duration = by_type["sleep_duration"]
    assert duration["startDateTime"] == f"2025-07-14T18:00:00{offset}"
    assert duration["endDateTime"] == f"2025-07-15T17:59:59{offset}"
    start = datetime.fromisoformat(by_type["sleep_start_time"]["value"])
    end = datetime.fromisoformat(by_type["sleep_end_time"]["value"])
    window_start = datetime.fromisoformat(duration["startDateTime"])
    window_end = datetime.fromisoformat(duration["endDateTime"])
    assert window_start <= start < end <= window_end
    assert end.date() == date(2025, 7, 15)
    truth = sandbox.biomarkers(external_id, date(2025, 7, 15), date(2025, 7, 15))
    assert duration in truth


async def test_phone_only_profiles_have_no_vitals(client, sandbox):
    sandbox.add_profile("phone", with_vitals=False, days_without_data=())
    params = {
        "categories": "vitals",
        "startDateTime": "2025-07-01",
        "endDateTime": "2025-07-15",
    }
    response = await client.get(
        f"{BIOMARKERS}/phone", params=params, headers=await auth(client)
    )
    assert response.status_code == 204


# --- empty answers, unknown profiles, registration --------------------------------------------


async def test_no_data_is_204_or_an_empty_array_by_setting(client, sandbox):
    sandbox.add_profile("new", with_data=False)
    headers = await auth(client)
    params = {
        "types": "sleep",
        "startDateTime": "2025-07-01",
        "endDateTime": "2025-07-15",
    }
    no_content = await client.get(f"{SCORES}/new", params=params, headers=headers)
    assert no_content.status_code == 204
    assert no_content.content == b""
    sandbox.empty_as = "empty_array"
    empty = await client.get(f"{SCORES}/new", params=params, headers=headers)
    assert empty.status_code == 200
    assert empty.json() == []


async def test_unknown_profiles_are_404_without_auto_profiles(client):
    headers = await auth(client)
    for url in [f"{SCORES}/ghost?types=sleep", f"{BIOMARKERS}/ghost?categories=sleep"]:
        response = await client.get(url, headers=headers)
        assert response.status_code == 404
        assert response.json()["statusCode"] == 404


async def test_auto_profiles_give_any_external_id_data(clock):
    app = create_app(SahhaSandboxSettings(auto_profiles=True), clock=clock)
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url=BASE_URL
    ) as http:
        params = {
            "types": "sleep",
            "startDateTime": "2025-07-01",
            "endDateTime": "2025-07-15",
        }
        response = await http.get(
            f"{SCORES}/anyone", params=params, headers=await auth(http)
        )
    assert response.status_code == 200
    assert len(response.json()) >= 10


async def test_register_gives_201_once_then_400(client):
    headers = await auth(client)
    url = "/api/v1/oauth/profile/register"
    first = await client.post(url, json={"externalId": "user-1"}, headers=headers)
    assert first.status_code == 201
    assert first.json()["tokenType"] == "Profile"
    again = await client.post(url, json={"externalId": "user-1"}, headers=headers)
    assert again.status_code == 400
    blank = await client.post(url, json={"externalId": "  "}, headers=headers)
    assert blank.status_code == 400
    profile = await client.get("/api/v1/account/profile/user-1", headers=headers)
    assert profile.json()["dataLastReceivedAtUtc"] is None
    unauthenticated = await client.post(url, json={"externalId": "user-2"})
    assert unauthenticated.status_code == 401


# --- faults and the request log ---------------------------------------------------------------


async def test_fail_next_serves_the_fault_then_recovers(client, sandbox):
    sandbox.add_profile("nz")
    headers = await auth(client)
    sandbox.fail_next(SCORES, count=2)
    sandbox.fail_next("/api/v1/account", status=503)
    url = f"{SCORES}/nz?types=sleep"
    statuses = [(await client.get(url, headers=headers)).status_code for _ in range(3)]
    assert statuses[:2] == [500, 500]
    assert statuses[2] in (200, 204)
    account = await client.get("/api/v1/account/profile/nz", headers=headers)
    assert account.status_code == 503
    assert [r.status for r in sandbox.request_log[-4:]] == [500, 500, statuses[2], 503]


async def test_fail_next_500_body_and_delay(client, sandbox):
    sandbox.fail_next("/api/v1/oauth", delay_s=0.05)
    started = wall.monotonic()
    response = await client.post("/api/v1/oauth/account/token", json=CLIENT)
    assert wall.monotonic() - started >= 0.05
    assert response.status_code == 500
    assert response.json()["title"] == "An internal exception has occurred."
    assert sandbox.token_requests == 1
    assert sandbox.request_log[-1].status == 500


async def test_request_log_keeps_repeated_keys(client, sandbox):
    sandbox.add_profile("nz")
    await client.get(
        f"{SCORES}/nz",
        params={"types": ["sleep", "activity"]},
        headers=await auth(client),
    )
    entry = sandbox.request_log[-1]
    assert (entry.method, entry.path) == ("GET", f"{SCORES}/nz")
    assert entry.params == [("types", "sleep"), ("types", "activity")]


# --- determinism ------------------------------------------------------------------------------


async def _everything(seed: int, clock: FakeClock) -> tuple[object, object]:
    app = create_app(SahhaSandboxSettings(seed=seed), clock=clock)
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url=BASE_URL
    ) as http:
        headers = await auth(http)
        window = {"startDateTime": "2025-06-01", "endDateTime": "2025-07-19"}
        scores = await http.get(
            f"{SCORES}/same-user",
            params={**window, "types": ["sleep", "activity", "readiness"]},
            headers=headers,
        )
        biomarkers = await http.get(
            f"{BIOMARKERS}/same-user",
            params={**window, "categories": ["sleep", "activity", "vitals"]},
            headers=headers,
        )
    return scores.json(), biomarkers.json()


async def test_same_seed_gives_the_same_numbers_and_another_seed_does_not(clock):
    first = await _everything(7, clock)
    second = await _everything(7, clock)
    other = await _everything(8, clock)
    assert first == second
    assert first[0] != other[0]
    assert first[1] != other[1]
