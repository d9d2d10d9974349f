"""Shapes of the Sahha emulator's answers against JSON Schemas written from sahha-api.md.

§2.1 account token, §2.2 profile token, §3.1 score, §3.2 biomarker, §3.5 profile, §4 error body.
Where the reference lists a complete field set, `additionalProperties` is false.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx2
import jsonschema
import pytest
from fastapi import FastAPI

from sandbox.sahha import SahhaSandbox, SahhaSandboxSettings, create_app

BASE_URL = "http://sahha.test"
CLIENT = {"clientId": "sandbox-sahha-client", "clientSecret": "sandbox-sahha-secret"}
NOW = datetime(2025, 7, 20, 0, 0, tzinfo=UTC)
WINDOW = {"startDateTime": "2025-07-01", "endDateTime": "2025-07-19"}
SCORE_TYPES = ["wellbeing", "activity", "sleep", "readiness", "mental_wellbeing"]
PROFILES = {"nz": "+12:00", "ny": "-04:00", "kolkata": "+05:30"}

UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
LOCAL_DATE_TIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$"
UTC_Z = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$"
JWT = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"
STATE = {"enum": ["minimal", "low", "medium", "high"]}
NUMBER = {"type": "number"}
NON_EMPTY = {"type": "string", "minLength": 1}


def _closed(
    properties: dict[str, Any], *, required: list[str] | None = None
) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
    }


FACTOR = _closed(
    {
        "id": {"type": "string", "pattern": UUID},
        "name": NON_EMPTY,
        "value": NUMBER,
        "goal": NUMBER,
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "state": STATE,
        "unit": NON_EMPTY,
    }
)
SCORE = _closed(
    {
        "id": {"type": "string", "pattern": UUID},
        "type": {"enum": SCORE_TYPES},
        "state": {"enum": [*STATE["enum"], None]},
        "score": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "factors": {"type": "array", "items": FACTOR},
        "dataSources": {"type": "array", "items": NON_EMPTY},
        "scoreDateTime": {"type": "string", "pattern": LOCAL_DATE_TIME},
        "createdAtUtc": {"type": "string", "pattern": UTC_Z},
        "version": NUMBER,
    }
)
BIOMARKER = _closed(
    {
        "id": {"type": "string", "pattern": UUID},
        "category": {"enum": ["activity", "sleep", "vitals"]},
        "type": NON_EMPTY,
        "periodicity": {"enum": ["daily", "intraday", "weekly"]},
        "aggregation": {"enum": ["total", "average", "none"]},
        "value": {"type": "string"},
        "unit": NON_EMPTY,
        "valueType": {"enum": ["integer", "double", "datetime"]},
        "startDateTime": {"type": "string", "pattern": LOCAL_DATE_TIME},
        "endDateTime": {"type": "string", "pattern": LOCAL_DATE_TIME},
    }
)
NULLABLE_STRING = {"type": ["string", "null"]}
PROFILE = _closed(
    {
        "profileId": {"type": "string", "pattern": UUID},
        "accountId": {"type": "string", "pattern": UUID},
        "externalId": NON_EMPTY,
        "sdkId": NULLABLE_STRING,
        "sdkVersion": NULLABLE_STRING,
        "deviceType": NULLABLE_STRING,
        "dataLastReceivedAtUtc": {"type": ["string", "null"], "pattern": UTC_Z},
        "createdAtUtc": {"type": "string", "pattern": UTC_Z},
        "isSampleProfile": {"type": "boolean"},
    }
)
ACCOUNT_TOKEN = _closed(
    {
        "accountToken": {"type": "string", "pattern": JWT},
        "expiresIn": {"type": "integer", "minimum": 1},
        "tokenType": {"const": "Account"},
    }
)
PROFILE_TOKEN = _closed(
    {
        "profileToken": {"type": "string", "pattern": JWT},
        "refreshToken": NON_EMPTY,
        "expiresIn": {"type": "integer", "minimum": 1},
        "tokenType": {"const": "Profile"},
    }
)
ERROR = _closed(
    {
        "title": NON_EMPTY,
        "statusCode": {"type": "integer"},
        "location": {"type": "string"},
        "errors": {
            "type": "array",
            "items": _closed(
                {
                    "origin": {"type": "string"},
                    "errors": {"type": "array", "items": {"type": "string"}},
                }
            ),
        },
    }
)


def validate(instance: object, schema: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(instance)


def _offset(text: str) -> timezone:
    parsed = datetime.fromisoformat(f"2000-01-01T00:00:00{text}").tzinfo
    assert isinstance(parsed, timezone)
    return parsed


@pytest.fixture
def app() -> FastAPI:
    app = create_app(SahhaSandboxSettings(auto_profiles=False), clock=lambda: NOW)
    sandbox: SahhaSandbox = app.state.sandbox
    for external_id, offset in PROFILES.items():
        sandbox.add_profile(external_id, tz_offset=offset)
    sandbox.add_profile("phone", with_vitals=False)
    return app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url=BASE_URL
    ) as http:
        yield http


@pytest.fixture
async def headers(client: httpx2.AsyncClient) -> dict[str, str]:
    response = await client.post("/api/v1/oauth/account/token", json=CLIENT)
    return {"Authorization": f"account {response.json()['accountToken']}"}


# --- the schemas themselves reject what they should -------------------------------------------


GOOD_SCORE = {
    "id": "310c9b9e-12fc-5433-99f9-ef1c263c8181",
    "type": "sleep",
    "state": "high",
    "score": 0.96,
    "factors": [
        {
            "id": "ca63e511-31a0-5203-a507-47a450b748c3",
            "name": "sleep_duration",
            "value": 480,
            "goal": 480,
            "score": 0.9900000095367432,
            "state": "high",
            "unit": "minute",
        }
    ],
    "dataSources": ["sleep"],
    "scoreDateTime": "2025-07-12T00:00:00+12:00",
    "createdAtUtc": "2025-07-11T17:02:26Z",
    "version": 1,
}


@pytest.mark.parametrize(
    "change",
    [
        {"profileId": "457f069d-2673-43c3-b7e5-f569dffe2fd2"},  # webhook-only metadata
        {"value": 0.96},  # the docs quickstart's shape, not the real one
        {"score": 96},  # 0-100 instead of 0-1
        {"state": "good"},
        {"type": "mental wellbeing"},
        {"scoreDateTime": "2025-07-12"},
    ],
)
def test_score_schema_rejects_wrong_shapes(change):
    validate(GOOD_SCORE, SCORE)
    with pytest.raises(jsonschema.ValidationError):
        validate({**GOOD_SCORE, **change}, SCORE)


def test_biomarker_schema_rejects_a_numeric_value():
    good = {
        "id": "c78bc687-2326-5471-8608-fcc1ca14bb4e",
        "category": "activity",
        "type": "steps",
        "periodicity": "daily",
        "aggregation": "total",
        "value": "3263",
        "unit": "count",
        "valueType": "integer",
        "startDateTime": "2025-07-11T00:00:00+12:00",
        "endDateTime": "2025-07-11T23:59:59+12:00",
    }
    validate(good, BIOMARKER)
    with pytest.raises(jsonschema.ValidationError):
        validate({**good, "value": 3263}, BIOMARKER)


# --- scores ---------------------------------------------------------------------------------


@pytest.mark.parametrize("score_type", SCORE_TYPES)
@pytest.mark.parametrize("external_id", [*PROFILES, "phone"])
async def test_scores_of_every_type_conform(
    client, headers, app, score_type, external_id
):
    params = {**WINDOW, "types": score_type}
    response = await client.get(
        f"/api/v1/profile/score/{external_id}", params=params, headers=headers
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body, list)
    assert len(body) >= 10
    validate(body, {"type": "array", "items": SCORE})
    offset = app.state.sandbox.get_profile(external_id).tz_offset
    for score in body:
        assert score["type"] == score_type
        stamp = datetime.fromisoformat(score["scoreDateTime"])
        assert stamp.utcoffset() == offset.utcoffset(None)
        assert (stamp.hour, stamp.minute, stamp.second, stamp.microsecond) == (
            0,
            0,
            0,
            0,
        )
        created = datetime.fromisoformat(score["createdAtUtc"].replace("Z", "+00:00"))
        assert stamp <= created <= NOW
        assert (score["score"] is None) == (score["state"] is None)
    assert len({s["id"] for s in body}) == len(body)


async def test_score_date_carries_the_profile_offset(client, headers):
    for external_id, offset in PROFILES.items():
        params = {**WINDOW, "types": "sleep"}
        response = await client.get(
            f"/api/v1/profile/score/{external_id}", params=params, headers=headers
        )
        for score in response.json():
            assert score["scoreDateTime"].endswith(f"T00:00:00{offset}")


# --- biomarkers -----------------------------------------------------------------------------

EXPECTED_TYPES = {
    "activity": {
        "steps",
        "active_energy_burned",
        "total_energy_burned",
        "active_hours",
    },
    "sleep": {
        "sleep_duration",
        "sleep_debt",
        "sleep_in_bed_duration",
        "sleep_light_duration",
        "sleep_rem_duration",
        "sleep_deep_duration",
        "sleep_efficiency",
        "sleep_start_time",
        "sleep_end_time",
    },
    "vitals": {
        "heart_rate_resting",
        "heart_rate_variability_rmssd",
        "respiratory_rate",
        "oxygen_saturation",
    },
}


def _check_value(biomarker: dict[str, Any], offset: timezone) -> None:
    value, value_type = biomarker["value"], biomarker["valueType"]
    if value_type == "integer":
        assert str(int(value)) == value
    elif value_type == "double":
        float(value)
    else:
        parsed = datetime.fromisoformat(value)
        assert parsed.utcoffset() == offset.utcoffset(None)
        assert biomarker["unit"] == "datetime"


@pytest.mark.parametrize("category", sorted(EXPECTED_TYPES))
@pytest.mark.parametrize("external_id", list(PROFILES))
async def test_biomarkers_of_every_category_conform(
    client, headers, category, external_id
):
    params = {**WINDOW, "categories": category}
    response = await client.get(
        f"/api/v1/profile/biomarker/{external_id}", params=params, headers=headers
    )
    assert response.status_code == 200
    body = response.json()
    validate(body, {"type": "array", "items": BIOMARKER})
    assert {b["type"] for b in body} == EXPECTED_TYPES[category]
    offset = _offset(PROFILES[external_id])
    for biomarker in body:
        assert biomarker["category"] == category
        assert biomarker["periodicity"] == "daily"
        _check_value(biomarker, offset)
        start = datetime.fromisoformat(biomarker["startDateTime"])
        end = datetime.fromisoformat(biomarker["endDateTime"])
        assert start.utcoffset() == end.utcoffset() == offset.utcoffset(None)
        assert end - start == timedelta(hours=23, minutes=59, seconds=59)
        expected_start = (18, 0) if category == "sleep" else (0, 0)
        assert (start.hour, start.minute, start.second) == (*expected_start, 0)


# --- profile, tokens ------------------------------------------------------------------------


async def test_account_token_conforms(client):
    response = await client.post("/api/v1/oauth/account/token", json=CLIENT)
    assert response.status_code == 200
    validate(response.json(), ACCOUNT_TOKEN)
    assert response.json()["expiresIn"] == 86_400


async def test_profile_and_profile_token_conform(client, headers):
    profile = await client.get("/api/v1/account/profile/nz", headers=headers)
    assert profile.status_code == 200
    validate(profile.json(), PROFILE)
    assert profile.json()["externalId"] == "nz"
    registered = await client.post(
        "/api/v1/oauth/profile/register", json={"externalId": "fresh"}, headers=headers
    )
    assert registered.status_code == 201
    validate(registered.json(), PROFILE_TOKEN)
    fresh = await client.get("/api/v1/account/profile/fresh", headers=headers)
    validate(fresh.json(), PROFILE)


# --- errors ---------------------------------------------------------------------------------


async def _error_cases(
    client: httpx2.AsyncClient, headers: dict[str, str], app: FastAPI
) -> AsyncIterator[tuple[int, httpx2.Response]]:
    yield 400, await client.get("/api/v1/profile/score/nz", headers=headers)
    yield 400, await client.get("/api/v1/profile/biomarker/nz", headers=headers)
    yield 400, await client.post("/api/v1/oauth/account/token", json={"clientId": "x"})
    yield (
        400,
        await client.post(
            "/api/v1/oauth/profile/register", json={"externalId": "nz"}, headers=headers
        ),
    )
    yield 401, await client.get("/api/v1/account/profile/nz")
    yield (
        401,
        await client.post(
            "/api/v1/oauth/account/token", json={**CLIENT, "clientSecret": "wrong"}
        ),
    )
    yield 404, await client.get("/api/v1/account/profile/ghost", headers=headers)
    yield (
        404,
        await client.get("/api/v1/profile/score/ghost?types=sleep", headers=headers),
    )
    yield 404, await client.get("/api/v1/no/such/route", headers=headers)
    yield 405, await client.delete("/api/v1/account/profile/nz", headers=headers)
    app.state.sandbox.fail_next("/api/v1/profile/score", status=500)
    yield 500, await client.get("/api/v1/profile/score/nz?types=sleep", headers=headers)
    app.state.sandbox.fail_next("/api/v1/profile/biomarker", status=503)
    yield (
        503,
        await client.get(
            "/api/v1/profile/biomarker/nz?categories=sleep", headers=headers
        ),
    )


async def test_every_error_status_carries_sahhas_error_body(client, headers, app):
    seen = []
    async for status, response in _error_cases(client, headers, app):
        assert response.status_code == status, response.request.url
        body = response.json()
        validate(body, ERROR)
        assert body["statusCode"] == status
        seen.append(status)
        if status == 500:
            assert body["title"] == "An internal exception has occurred."
    assert sorted(set(seen)) == [400, 401, 404, 405, 500, 503]


async def test_no_data_is_an_empty_204(client, headers, app):
    app.state.sandbox.add_profile("empty", with_data=False)
    response = await client.get(
        "/api/v1/profile/score/empty",
        params={**WINDOW, "types": "sleep"},
        headers=headers,
    )
    assert response.status_code == 204
    assert response.content == b""
