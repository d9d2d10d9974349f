"""Behaviour of the WHOOP emulator: OAuth, data API, data shape, rate limits, faults, webhooks."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import secrets
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from starlette.types import Receive, Scope, Send

from sandbox.whoop import WhoopSandboxSettings, create_app

T0 = datetime(2025, 6, 15, 16, 0, tzinfo=UTC)
CLIENT_ID = "sandbox-client-id"
CLIENT_SECRET = "sandbox-client-secret"
REDIRECT = "https://app.example.com/whoop/callback"
ALL_SCOPES = (
    "offline read:recovery read:cycles read:workout read:sleep read:profile "
    "read:body_measurement"
)
CYCLES = "/developer/v2/cycle"
SLEEPS = "/developer/v2/activity/sleep"
WORKOUTS = "/developer/v2/activity/workout"
RECOVERIES = "/developer/v2/recovery"
PROFILE = "/developer/v2/user/profile/basic"


class Clock:
    """A settable clock for the emulator."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def settings() -> WhoopSandboxSettings:
    return WhoopSandboxSettings()


@pytest.fixture
def app(settings, clock):
    return create_app(settings, clock=clock)


@pytest.fixture
def sandbox(app):
    return app.state.sandbox


@pytest.fixture
async def client(app):
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(
        transport=transport, base_url="http://whoop.test"
    ) as client:
        yield client


@pytest.fixture
def user(sandbox):
    return sandbox.add_user(tz_offset="-05:00", device="4.0")


@pytest.fixture
def auth(sandbox: Any, user: Any) -> dict[str, str]:
    return bearer(sandbox.issue_tokens(user.user_id))


async def authorize(
    client: httpx2.AsyncClient, **overrides: str | None
) -> httpx2.Response:
    params = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT,
        "scope": ALL_SCOPES,
        "state": "st" * 8,
        **overrides,
    }
    query = {k: v for k, v in params.items() if v is not None}
    return await client.get("/oauth/oauth2/auth", params=query)


def redirect_params(response: httpx2.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def token(client: httpx2.AsyncClient, **form: str | None) -> httpx2.Response:
    body = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, **form}
    return await client.post(
        "/oauth/oauth2/token", data={k: v for k, v in body.items() if v}
    )


async def exchange(
    client: httpx2.AsyncClient, code: str, **form: str | None
) -> httpx2.Response:
    return await token(
        client,
        grant_type="authorization_code",
        code=code,
        redirect_uri=REDIRECT,
        **form,
    )


async def all_pages(
    client: httpx2.AsyncClient, path: str, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    next_token = None
    while True:
        query = params | ({"nextToken": next_token} if next_token else {})
        response = await client.get(path, headers=headers, params=query)
        assert response.status_code == 200, response.text
        records += response.json()["records"]
        next_token = response.json().get("next_token")
        if next_token is None:
            return records


# OAuth


async def test_authorization_code_flow_with_pkce(client, sandbox):
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    params = redirect_params(
        await authorize(client, code_challenge=challenge, code_challenge_method="S256")
    )
    assert params["state"] == "st" * 8
    assert "error" not in params

    response = await exchange(client, params["code"], code_verifier=verifier)

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {
        "access_token",
        "expires_in",
        "refresh_token",
        "scope",
        "token_type",
    }
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert set(body["scope"].split()) == set(ALL_SCOPES.split())
    profile = await client.get(PROFILE, headers=bearer(body))
    assert profile.status_code == 200
    assert profile.json()["user_id"] in sandbox.users
    assert sandbox.token_requests["authorization_code"] == 1


@pytest.mark.parametrize("verifier", [None, "x" * 50])
async def test_pkce_verifier_must_match_the_challenge(client, verifier):
    challenge = base64.urlsafe_b64encode(hashlib.sha256(b"y" * 50).digest()).rstrip(
        b"="
    )
    params = redirect_params(
        await authorize(
            client, code_challenge=challenge.decode(), code_challenge_method="S256"
        )
    )
    response = await exchange(client, params["code"], code_verifier=verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_no_refresh_token_without_offline(client):
    params = redirect_params(await authorize(client, scope="read:sleep read:cycles"))
    body = (await exchange(client, params["code"])).json()
    assert "refresh_token" not in body
    assert body["scope"] == "read:cycles read:sleep"


async def test_denied_consent_redirects_with_access_denied(client):
    params = redirect_params(await authorize(client, sandbox_action="deny"))
    assert params["error"] == "access_denied"
    assert params["state"] == "st" * 8
    assert params["error_description"]
    assert "code" not in params


async def test_a_member_may_untick_scopes_at_consent_and_the_answers_say_so(client):
    """Like WHOOP's consent screen: the grant is narrower than the request."""
    params = redirect_params(
        await authorize(client, sandbox_untick="read:workout,read:sleep")
    )
    assert "read:workout" not in params["scope"].split()
    tokens = (await exchange(client, params["code"])).json()
    granted = tokens["scope"].split()
    assert "read:workout" not in granted
    assert "read:sleep" not in granted
    assert {"read:cycles", "offline"} <= set(granted)
    refused = await client.get("/developer/v2/activity/workout", headers=bearer(tokens))
    assert refused.status_code == 401
    allowed = await client.get("/developer/v2/cycle", headers=bearer(tokens))
    assert allowed.status_code == 200


async def test_unticking_every_scope_is_a_refusal(client):
    params = redirect_params(await authorize(client, sandbox_untick=ALL_SCOPES))
    assert params["error"] == "access_denied"


@pytest.mark.parametrize(
    "overrides",
    [{"client_id": "someone-else"}, {"redirect_uri": None}, {"redirect_uri": "nope"}],
)
async def test_bad_client_or_redirect_uri_gets_a_page_not_a_redirect(client, overrides):
    response = await authorize(client, **overrides)
    assert response.status_code == 400
    assert "location" not in response.headers


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"state": "short"}, "invalid_state"),
        ({"scope": "read:sleep read:everything"}, "invalid_scope"),
        ({"response_type": "token"}, "unsupported_response_type"),
        (
            {"code_challenge": "abc", "code_challenge_method": "plain"},
            "invalid_request",
        ),
    ],
)
async def test_invalid_authorization_requests_redirect_with_an_error(
    client, overrides, error
):
    params = redirect_params(await authorize(client, **overrides))
    assert params["error"] == error
    assert "code" not in params


async def test_code_is_single_use_and_replay_revokes_its_tokens(client):
    code = redirect_params(await authorize(client))["code"]
    first = await exchange(client, code)
    assert first.status_code == 200

    replay = await exchange(client, code)

    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert (await client.get(PROFILE, headers=bearer(first.json()))).status_code == 401


async def test_code_exchange_needs_the_same_redirect_uri(client):
    code = redirect_params(await authorize(client))["code"]
    response = await token(
        client,
        grant_type="authorization_code",
        code=code,
        redirect_uri=REDIRECT + "/other",
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_code_expires_after_ten_minutes(client, clock):
    code = redirect_params(await authorize(client))["code"]
    clock.advance(minutes=10, seconds=1)
    response = await exchange(client, code)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"client_id": "other-client"}, 401, "invalid_client"),
        ({"grant_type": "authorization_code", "code": None}, 400, "invalid_request"),
        ({"grant_type": None}, 400, "invalid_request"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        (
            {"grant_type": "refresh_token", "refresh_token": "made-up"},
            400,
            "invalid_grant",
        ),
    ],
)
async def test_token_endpoint_errors(client, form, status, error):
    base = {"grant_type": "authorization_code", "code": "c", "redirect_uri": REDIRECT}
    response = await token(client, **(base | form))
    assert response.status_code == status
    assert response.json()["error"] == error
    assert response.json()["error_description"]


async def test_token_endpoint_refuses_http_basic_client_auth(client):
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    response = await client.post(
        "/oauth/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": "x"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")


async def test_refresh_rotates_both_tokens(client, sandbox, user):
    old = sandbox.issue_tokens(user.user_id)

    response = await token(
        client, grant_type="refresh_token", refresh_token=old["refresh_token"]
    )

    assert response.status_code == 200
    new = response.json()
    assert new["refresh_token"] != old["refresh_token"]
    assert (await client.get(PROFILE, headers=bearer(old))).status_code == 401
    assert (await client.get(PROFILE, headers=bearer(new))).status_code == 200
    reuse = await token(
        client, grant_type="refresh_token", refresh_token=old["refresh_token"]
    )
    assert (reuse.status_code, reuse.json()["error"]) == (400, "invalid_grant")
    assert sandbox.token_requests["refresh_token"] == 2
    assert sandbox.tokens_issued["refresh_token"] == 1
    # Hydra-style reuse detection: the replay also revokes the tokens the first refresh issued.
    assert (await client.get(PROFILE, headers=bearer(new))).status_code == 401


async def test_expired_access_token_is_401_until_refreshed(
    client, sandbox, clock, user
):
    tokens = sandbox.issue_tokens(user.user_id)
    clock.advance(seconds=3600)
    assert (await client.get(PROFILE, headers=bearer(tokens))).status_code == 401
    refreshed = await token(
        client, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    )
    assert (
        await client.get(PROFILE, headers=bearer(refreshed.json()))
    ).status_code == 200
    sandbox.expire_access_tokens(user.user_id)
    response = await client.get(PROFILE, headers=bearer(refreshed.json()))
    assert response.status_code == 401
    assert "invalid_token" in response.headers["www-authenticate"]


async def test_sandbox_user_id_links_the_same_whoop_account_again(client, user):
    profiles = []
    for _ in range(2):
        code = redirect_params(
            await authorize(client, sandbox_user_id=str(user.user_id))
        )["code"]
        tokens = (await exchange(client, code)).json()
        profiles.append(
            (await client.get(PROFILE, headers=bearer(tokens))).json()["user_id"]
        )
    assert profiles == [user.user_id, user.user_id]


# Data API: pagination and windows


@pytest.mark.parametrize("kind", ["cycle", "recovery", "sleep", "workout"])
async def test_pagination_covers_the_window_exactly_once(
    client, sandbox, user, auth, kind
):
    path = {
        "cycle": CYCLES,
        "recovery": RECOVERIES,
        "sleep": SLEEPS,
        "workout": WORKOUTS,
    }[kind]
    start, end = T0 - timedelta(days=20), T0 - timedelta(days=3, hours=5)
    window = {"start": start.isoformat(), "end": end.isoformat().replace("+00:00", "Z")}

    records = await all_pages(client, path, auth, limit=7, **window)

    cycle_start = {
        c["id"]: ts(c["start"]) for c in sandbox.records("cycle", user.user_id)
    }

    def start_of(record: dict[str, Any]) -> datetime:
        return (
            cycle_start[record["cycle_id"]]
            if kind == "recovery"
            else ts(record["start"])
        )

    truth = [
        r for r in sandbox.records(kind, user.user_id) if start <= start_of(r) < end
    ]
    assert len(truth) > 7
    assert records == truth
    starts = [start_of(r) for r in records]
    assert starts == sorted(starts, reverse=True)


async def test_start_is_inclusive_and_end_exclusive(client, sandbox, user, auth):
    cycles = sandbox.records("cycle", user.user_id)
    window = {"start": cycles[5]["start"], "end": cycles[2]["start"]}
    response = await client.get(CYCLES, headers=auth, params=window)
    assert [c["id"] for c in response.json()["records"]] == [
        c["id"] for c in cycles[3:6]
    ]
    assert "next_token" not in response.json()


async def test_default_page_is_ten_newest_and_end_defaults_to_now(
    client, sandbox, user, auth
):
    response = await client.get(SLEEPS, headers=auth)
    assert response.json()["records"] == sandbox.records("sleep", user.user_id)[:10]
    assert all(ts(r["start"]) < T0 for r in response.json()["records"])
    assert response.json()["next_token"]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "26"},
        {"limit": "0"},
        {"limit": "ten"},
        {"limit": "²"},
        {"start": "yesterday"},
        {
            "start": "2025-06-01T00:00:00"
        },  # no zone: WHOOP's docs say to always send one
        {"end": "2025-06-01"},
        {"start": "2025-06-10T00:00:00Z", "end": "2025-06-01T00:00:00Z"},
        {"nextToken": "garbage"},
        {"nextToken": ""},
    ],
)
async def test_malformed_collection_queries_are_400(client, auth, params):
    response = await client.get(CYCLES, headers=auth, params=params)
    assert response.status_code == 400, params
    assert response.headers["x-ratelimit-limit"]


async def test_next_token_only_works_with_the_same_filters(client, auth):
    first = await client.get(
        CYCLES, headers=auth, params={"start": "2025-05-01T00:00:00Z"}
    )
    next_token = first.json()["next_token"]

    async def page(path: str, **params: str) -> int:
        response = await client.get(
            path, headers=auth, params={"nextToken": next_token, **params}
        )
        status: int = response.status_code
        return status

    assert await page(CYCLES, start="2025-05-02T00:00:00Z") == 400
    assert await page(CYCLES) == 400
    assert await page(SLEEPS, start="2025-05-01T00:00:00Z") == 400
    assert await page(CYCLES, start="2025-05-01T00:00:00Z") == 200
    assert (
        await page(CYCLES, start="2025-05-01T02:00:00+02:00") == 200
    )  # the same instant


async def test_by_id_routes_404_for_unknown_or_foreign_ids_and_400_for_malformed(
    client, sandbox, user, auth
):
    other = sandbox.add_user()
    foreign_cycle = sandbox.records("cycle", other.user_id)[0]["id"]
    foreign_sleep = sandbox.records("sleep", other.user_id)[0]["id"]
    own_cycle = sandbox.records("cycle", user.user_id)[1]["id"]
    cases = {
        f"{CYCLES}/{own_cycle}": 200,
        f"{CYCLES}/{foreign_cycle}": 404,
        f"{CYCLES}/{foreign_cycle}/recovery": 404,
        f"{CYCLES}/{foreign_cycle}/sleep": 404,
        f"{CYCLES}/123": 404,
        f"{CYCLES}/abc": 400,
        f"{CYCLES}/-4/recovery": 400,
        f"{SLEEPS}/{foreign_sleep}": 404,
        f"{SLEEPS}/{uuid.uuid4()}": 404,
        f"{SLEEPS}/not-a-uuid": 400,
        f"{WORKOUTS}/12345": 400,
    }
    for path, status in cases.items():
        assert (await client.get(path, headers=auth)).status_code == status, path


async def test_routes_need_a_token_with_their_scope(client, sandbox, user):
    sleep_only = bearer(sandbox.issue_tokens(user.user_id, scopes="read:sleep"))
    assert (await client.get(SLEEPS, headers=sleep_only)).status_code == 200
    cycle_id = sandbox.records("cycle", user.user_id)[1]["id"]
    for path in (CYCLES, RECOVERIES, WORKOUTS, PROFILE, f"{CYCLES}/{cycle_id}"):
        assert (await client.get(path, headers=sleep_only)).status_code == 401, path
    assert (
        await client.get(f"{CYCLES}/{cycle_id}/sleep", headers=sleep_only)
    ).status_code == 200
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}):
        assert (await client.get(SLEEPS, headers=headers)).status_code == 401


async def test_body_measurement_404s_for_members_without_one(client, sandbox):
    without = sandbox.add_user(body_measurement=False)
    with_body = sandbox.add_user(body_measurement=True)
    path = "/developer/v2/user/measurement/body"
    response = await client.get(
        path, headers=bearer(sandbox.issue_tokens(with_body.user_id))
    )
    assert response.status_code == 200
    assert set(response.json()) == {"height_meter", "weight_kilogram", "max_heart_rate"}
    response = await client.get(
        path, headers=bearer(sandbox.issue_tokens(without.user_id))
    )
    assert response.status_code == 404


async def test_revoke_kills_every_token_and_webhooks(app, client, sandbox, user):
    tokens = sandbox.issue_tokens(user.user_id)
    response = await client.delete("/developer/v2/user/access", headers=bearer(tokens))
    assert (response.status_code, response.content) == (204, b"")
    assert (await client.get(PROFILE, headers=bearer(tokens))).status_code == 401
    refresh = await token(
        client, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    )
    assert refresh.json()["error"] == "invalid_grant"
    assert user.webhooks_enabled is False


# Realistic data


def local(record: dict[str, Any], field: str) -> datetime:
    offset = record["timezone_offset"]
    sign = -1 if offset.startswith("-") else 1
    delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
    return ts(record[field]) + sign * delta


async def test_day_structure_links_cycles_sleeps_and_recoveries(sandbox, user):
    cycles = sandbox.records("cycle", user.user_id)
    main_sleeps = {
        s["cycle_id"]: s for s in sandbox.records("sleep", user.user_id) if not s["nap"]
    }
    recoveries = {r["cycle_id"]: r for r in sandbox.records("recovery", user.user_id)}
    assert len(cycles) in (60, 61)
    assert "end" not in cycles[0]
    assert all("end" in c for c in cycles[1:])
    lengths = set()
    for newer, older in itertools.pairwise(cycles):
        assert older["end"] == newer["start"]
        lengths.add(ts(older["end"]) - ts(older["start"]))
    assert len(lengths) > 10
    assert all(timedelta(hours=20) < n < timedelta(hours=28) for n in lengths)
    for cycle in cycles:
        sleep = main_sleeps[cycle["id"]]
        assert sleep["start"] == cycle["start"]
        onset = local(sleep, "start")
        assert onset.hour >= 22 or (onset.hour, onset.minute) <= (0, 30)
        assert (
            timedelta(hours=6)
            <= ts(sleep["end"]) - ts(sleep["start"])
            <= timedelta(hours=9)
        )
        recovery = recoveries.get(cycle["id"])
        if sleep["score_state"] == "UNSCORABLE":
            assert recovery is None
        else:
            assert recovery is not None
            assert recovery["sleep_id"] == sleep["id"]


async def test_naps_and_zero_to_two_workouts_a_day(sandbox, user):
    cycles = {c["id"]: c for c in sandbox.records("cycle", user.user_id)}
    naps = [s for s in sandbox.records("sleep", user.user_id) if s["nap"]]
    assert 5 <= len(naps) <= 30
    for nap in naps:
        cycle = cycles[nap["cycle_id"]]
        assert ts(cycle["start"]) <= ts(nap["start"]) < ts(cycle.get("end", nap["end"]))
        assert 12 <= local(nap, "start").hour < 17
    workouts = sandbox.records("workout", user.user_id)
    per_day = Counter(local(w, "start").date() for w in workouts)
    days = [T0.date() - timedelta(days=n) for n in range(1, 59)]
    assert Counter(per_day[d] for d in days).keys() == {0, 1, 2}
    assert {w["sport_name"] for w in workouts} >= {"running", "cycling", "yoga"}
    v1_shapes = Counter("v1_id" not in w or w["v1_id"] is None for w in workouts)
    assert v1_shapes[True]
    assert v1_shapes[False]


async def test_scores_fall_in_realistic_ranges(sandbox, user):
    three = sandbox.add_user(device="3.0")
    for record in sandbox.records("recovery", user.user_id):
        score = record.get("score")
        if score:
            assert 1 <= score["recovery_score"] <= 99
            assert 20 <= score["hrv_rmssd_milli"] <= 150
            assert 40 <= score["resting_heart_rate"] <= 75
            assert 94 <= score["spo2_percentage"] <= 99
            assert 32 <= score["skin_temp_celsius"] <= 35
    for record in sandbox.records("recovery", three.user_id):
        assert "spo2_percentage" not in record.get("score", {})
    for record in sandbox.records("sleep", user.user_id):
        score = record.get("score", {})
        if "sleep_performance_percentage" in score:
            assert 50 <= score["sleep_performance_percentage"] <= 100
            assert 13 <= score["respiratory_rate"] <= 18
            stages = score["stage_summary"]
            parts = [
                v
                for k, v in stages.items()
                if k.endswith("_milli") and "in_bed" not in k
            ]
            assert sum(parts) == stages["total_in_bed_time_milli"]
    for cycle in sandbox.records("cycle", user.user_id)[1:]:
        assert 0 <= cycle["score"]["strain"] <= 21
        assert 4000 <= cycle["score"]["kilojoule"] <= 15000
    for workout in sandbox.records("workout", user.user_id):
        if "score" in workout:
            assert 0 <= workout["score"]["percent_recorded"] <= 100


async def test_pending_records_get_scored_with_a_newer_updated_at(
    client, sandbox, clock, user
):
    sleep = next(s for s in sandbox.records("sleep", user.user_id) if not s["nap"])
    clock.now = ts(sleep["end"]) + timedelta(minutes=10)
    auth = bearer(sandbox.issue_tokens(user.user_id))
    pending = (await client.get(f"{SLEEPS}/{sleep['id']}", headers=auth)).json()
    recovery_path = f"{CYCLES}/{sleep['cycle_id']}/recovery"
    pending_recovery = (await client.get(recovery_path, headers=auth)).json()
    assert pending["score_state"] == pending_recovery["score_state"] == "PENDING_SCORE"
    assert "score" not in pending
    assert "score" not in pending_recovery

    clock.advance(minutes=36)

    scored = (await client.get(f"{SLEEPS}/{sleep['id']}", headers=auth)).json()
    scored_recovery = (await client.get(recovery_path, headers=auth)).json()
    assert scored["score_state"] == scored_recovery["score_state"] == "SCORED"
    assert scored["score"]
    assert scored_recovery["score"]
    assert ts(scored["updated_at"]) > ts(pending["updated_at"])
    assert ts(scored_recovery["updated_at"]) > ts(pending_recovery["updated_at"])


async def test_added_workout_is_pending_for_twenty_minutes(sandbox, clock, user):
    workout = sandbox.add_workout(
        user.user_id, start=T0 - timedelta(hours=1), end=T0 - timedelta(minutes=5)
    )
    assert workout["score_state"] == "PENDING_SCORE"
    clock.advance(minutes=15)
    assert sandbox.record("workout", workout["id"])["score_state"] == "SCORED"


async def test_open_cycle_accrues_and_new_days_appear(sandbox, clock, user):
    before = sandbox.records("cycle", user.user_id)
    clock.advance(hours=2)
    later = sandbox.records("cycle", user.user_id)[0]
    assert later["id"] == before[0]["id"]
    assert ts(later["updated_at"]) > ts(before[0]["updated_at"])
    assert later["score"]["strain"] > before[0]["score"]["strain"]

    clock.advance(days=3)

    after = sandbox.records("cycle", user.user_id)
    assert len(after) == len(before) + 3
    assert after[3]["id"] == before[0]["id"]
    assert "end" in after[3]


async def test_history_is_deterministic_per_seed_and_user(clock):
    def sleeps(seed: int) -> list[dict[str, Any]]:
        sandbox = create_app(WhoopSandboxSettings(seed=seed), clock=clock).state.sandbox
        records: list[dict[str, Any]] = sandbox.records(
            "sleep", sandbox.add_user(tz_offset="+05:30").user_id
        )
        return records

    assert sleeps(7) == sleeps(7)
    assert sleeps(7) != sleeps(8)


async def test_a_travelling_member_changes_offset_mid_history(sandbox):
    traveller = sandbox.add_user(tz_offset="-07:00", travel_offset="+01:00")
    cycles = sandbox.records("cycle", traveller.user_id)
    offsets = [c["timezone_offset"] for c in reversed(cycles)]
    assert offsets[0] == "-07:00"
    assert offsets[-1] == "+01:00"
    assert sum(a != b for a, b in itertools.pairwise(offsets)) == 1
    sleeps = sorted(
        sandbox.records("sleep", traveller.user_id), key=lambda s: s["start"]
    )
    assert all(a["end"] < b["start"] for a, b in itertools.pairwise(sleeps))


@pytest.mark.parametrize("settings", [WhoopSandboxSettings(travel_share=1.0)])
async def test_travel_share_makes_consenting_members_travel(client, sandbox):
    code = redirect_params(await authorize(client))["code"]
    tokens = (await exchange(client, code)).json()
    user_id = (await client.get(PROFILE, headers=bearer(tokens))).json()["user_id"]
    offsets = {c["timezone_offset"] for c in sandbox.records("cycle", user_id)}
    assert len(offsets) == 2


async def test_rescore_and_delete_change_what_the_api_serves(
    client, sandbox, user, auth
):
    cycle = sandbox.records("cycle", user.user_id)[2]
    path = f"{CYCLES}/{cycle['id']}/recovery"
    before = (await client.get(path, headers=auth)).json()

    sandbox.rescore("recovery", cycle["id"], recovery_score=12.0)

    after = (await client.get(path, headers=auth)).json()
    assert after["score"]["recovery_score"] == 12.0
    assert ts(after["updated_at"]) > ts(before["updated_at"])

    sandbox.delete_record("sleep", before["sleep_id"])

    assert (await client.get(path, headers=auth)).status_code == 404
    assert (
        await client.get(f"{CYCLES}/{cycle['id']}/sleep", headers=auth)
    ).status_code == 404
    assert (
        await client.get(f"{SLEEPS}/{before['sleep_id']}", headers=auth)
    ).status_code == 404
    assert (
        await client.get(f"{CYCLES}/{cycle['id']}", headers=auth)
    ).status_code == 200


# Rate limits


@pytest.mark.parametrize("settings", [WhoopSandboxSettings(rate_limit_per_minute=5)])
async def test_rate_limit_per_minute(client, sandbox, clock, auth):
    for expected_remaining in ("4", "3", "2", "1", "0"):
        response = await client.get(CYCLES, headers=auth)
        assert response.status_code == 200
        assert response.headers["x-ratelimit-remaining"] == expected_remaining
    assert response.headers["x-ratelimit-limit"] == "5, 5;window=60, 10000;window=86400"

    clock.advance(seconds=20)
    limited = await client.get(CYCLES, headers=auth)

    assert limited.status_code == 429
    assert limited.headers["x-ratelimit-limit"] == "5, 5;window=60, 10000;window=86400"
    assert limited.headers["x-ratelimit-remaining"] == "0"
    assert limited.headers["x-ratelimit-reset"] == "40"
    assert (
        await token(client, grant_type="password")
    ).status_code == 400  # OAuth is not limited
    clock.advance(seconds=40)
    for _ in range(5):  # the rejected call used no quota
        assert (await client.get(CYCLES, headers=auth)).status_code == 200
    assert (await client.get(CYCLES, headers=auth)).status_code == 429
    assert sandbox.rate_limited_count == 2
    assert sandbox.peak_requests_per_minute == 5


@pytest.mark.parametrize(
    "settings", [WhoopSandboxSettings(rate_limit_per_minute=100, rate_limit_per_day=3)]
)
async def test_daily_window_is_reported_when_it_is_closest_to_exhaustion(
    client, clock, auth
):
    for _ in range(3):
        response = await client.get(CYCLES, headers=auth)
        clock.advance(hours=1)
    assert response.headers["x-ratelimit-limit"] == "3, 100;window=60, 3;window=86400"
    limited = await client.get(CYCLES, headers=auth)
    assert limited.status_code == 429
    assert limited.headers["x-ratelimit-reset"] == str(21 * 3600)


async def test_peak_tracks_the_busiest_sliding_minute(client, sandbox, clock, auth):
    for _ in range(3):
        await client.get(CYCLES, headers=auth)
    clock.advance(seconds=59)
    for _ in range(4):
        await client.get(CYCLES, headers=auth)
    clock.advance(seconds=1)
    await client.get(CYCLES, headers=auth)
    assert sandbox.peak_requests_per_minute == 7
    sandbox.reset_counters()
    assert sandbox.peak_requests_per_minute == 0
    assert sandbox.request_log == []


# Faults and the request log


async def test_fail_next_fails_then_recovers_and_is_logged(client, sandbox, auth):
    sandbox.fail_next("/v2/cycle", status=503, count=2)
    statuses = [(await client.get(CYCLES, headers=auth)).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert (await client.get(SLEEPS, headers=auth)).status_code == 200
    log = sandbox.request_log
    assert [(r.method, r.path, r.status) for r in log] == [
        ("GET", CYCLES, 503),
        ("GET", CYCLES, 503),
        ("GET", CYCLES, 200),
        ("GET", SLEEPS, 200),
    ]
    assert log[0].at == T0


async def test_fail_next_on_page_two_fails_only_the_second_page(client, sandbox, auth):
    sandbox.fail_next(SLEEPS, status=500, on_page=2)
    first = await client.get(SLEEPS, headers=auth, params={"limit": 5})
    assert first.status_code == 200
    again = await client.get(SLEEPS, headers=auth, params={"limit": 5})
    assert again.status_code == 200
    page_two = {"limit": 5, "nextToken": first.json()["next_token"]}
    assert (await client.get(SLEEPS, headers=auth, params=page_two)).status_code == 500
    retry = await client.get(SLEEPS, headers=auth, params=page_two)
    assert retry.status_code == 200
    page_three = {"limit": 5, "nextToken": retry.json()["next_token"]}
    assert (
        await client.get(SLEEPS, headers=auth, params=page_three)
    ).status_code == 200
    assert [r.query.get("nextToken") is not None for r in sandbox.request_log] == [
        False,
        False,
        True,
        True,
        True,
    ]


async def test_fail_next_can_delay_and_fail_after_the_token_rotated(
    client, sandbox, user
):
    tokens = sandbox.issue_tokens(user.user_id)
    sandbox.fail_next("/oauth/oauth2/token", status=502, after_handler=True)
    failed = await token(
        client, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    )
    assert failed.status_code == 502
    retry = await token(
        client, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    )
    assert retry.json()["error"] == "invalid_grant"
    sandbox.fail_next(PROFILE, status=200, delay_s=0.05)
    started = time.monotonic()
    response = await client.get(
        PROFILE, headers=bearer(sandbox.issue_tokens(user.user_id))
    )
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.05


# Webhooks


class Receiver:
    """A tiny ASGI webhook receiver that keeps raw bodies and headers."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.requests.append((headers, body))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def whoop_sig_ok(raw_body: bytes, ts: str, sig: str, client_secret: str) -> bool:
    """Verbatim from whoop-api.md §5.3."""
    mac = hmac.new(client_secret.encode(), ts.encode() + raw_body, hashlib.sha256)
    return hmac.compare_digest(base64.b64encode(mac.digest()).decode(), sig or "")


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
def hooked(receiver, clock):
    settings = WhoopSandboxSettings(webhook_url="http://receiver.test/webhooks/whoop")
    app = create_app(
        settings, clock=clock, webhook_transport=httpx2.ASGITransport(app=receiver)
    )
    return app.state.sandbox


async def test_webhook_is_signed_as_documented(hooked, receiver):
    user = hooked.add_user()
    hooked.issue_tokens(user.user_id)
    sleep_id = hooked.records("sleep", user.user_id)[0]["id"]

    response = await hooked.send_webhook(user.user_id, "sleep.updated", sleep_id)

    assert response.status_code == 204
    [(headers, body)] = receiver.requests
    stamp = headers["x-whoop-signature-timestamp"]
    assert stamp == str(int(T0.timestamp() * 1000))
    assert whoop_sig_ok(body, stamp, headers["x-whoop-signature"], CLIENT_SECRET)
    assert not whoop_sig_ok(body, stamp, headers["x-whoop-signature"], "another-secret")
    assert not whoop_sig_ok(
        body + b" ", stamp, headers["x-whoop-signature"], CLIENT_SECRET
    )
    payload = json.loads(body)
    assert payload["user_id"] == user.user_id
    assert (payload["type"], payload["id"]) == ("sleep.updated", sleep_id)
    assert uuid.UUID(payload["trace_id"])


async def test_no_webhooks_for_revoked_members(hooked, receiver):
    user = hooked.add_user()
    hooked.issue_tokens(user.user_id)
    hooked.revoke_user(user.user_id)
    assert (
        await hooked.send_webhook(user.user_id, "workout.updated", str(uuid.uuid4()))
        is None
    )
    assert receiver.requests == []


async def test_due_webhooks_announce_scored_records(hooked, receiver, clock):
    user = hooked.add_user(tz_offset="+00:00")
    hooked.issue_tokens(user.user_id)
    sleep = next(s for s in hooked.records("sleep", user.user_id) if not s["nap"])
    clock.now = ts(sleep["end"]) - timedelta(minutes=1)
    await hooked.emit_due_webhooks()
    receiver.requests.clear()
    clock.advance(minutes=50)

    sent = await hooked.emit_due_webhooks()

    events = {(d.event.type, d.event.id) for d in sent}
    assert {("sleep.updated", sleep["id"]), ("recovery.updated", sleep["id"])} <= events
    assert len(receiver.requests) == len(sent)
    hooked.delete_record("sleep", sleep["id"])
    deleted = {(d.event.type, d.event.id) for d in await hooked.emit_due_webhooks()}
    assert deleted == {
        ("sleep.deleted", sleep["id"]),
        ("recovery.deleted", sleep["id"]),
    }


async def test_create_app_reads_settings_from_the_environment(monkeypatch):
    monkeypatch.setenv("SANDBOX_WHOOP_CLIENT_ID", "env-client")
    monkeypatch.setenv("SANDBOX_WHOOP_RATE_LIMIT_PER_MINUTE", "7")
    monkeypatch.setenv("SANDBOX_WHOOP_HISTORY_DAYS", "5")
    app = create_app()
    sandbox = app.state.sandbox
    assert sandbox.settings.client_id == "env-client"
    assert sandbox.settings.webhook_url is None
    user = sandbox.add_user()
    assert len(sandbox.records("cycle", user.user_id)) in (5, 6)
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(
        transport=transport, base_url="http://whoop.test"
    ) as client:
        response = await client.get(
            CYCLES, headers=bearer(sandbox.issue_tokens(user.user_id))
        )
    assert response.headers["x-ratelimit-limit"].startswith("7, 7;window=60")


async def test_lifespan_task_sends_due_webhooks_by_itself(receiver, clock):
    settings = WhoopSandboxSettings(
        webhook_url="http://receiver.test/hook", webhook_poll_interval_s=0.01
    )
    app = create_app(
        settings, clock=clock, webhook_transport=httpx2.ASGITransport(app=receiver)
    )
    sandbox = app.state.sandbox
    user = sandbox.add_user()
    sandbox.issue_tokens(user.user_id)
    async with app.router.lifespan_context(app):
        sandbox.add_workout(
            user.user_id, start=T0 - timedelta(hours=1), end=T0 - timedelta(minutes=1)
        )
        deadline = time.monotonic() + 2
        while not receiver.requests and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
    [(headers, body)] = receiver.requests
    assert json.loads(body)["type"] == "workout.updated"
    assert whoop_sig_ok(
        body,
        headers["x-whoop-signature-timestamp"],
        headers["x-whoop-signature"],
        CLIENT_SECRET,
    )
