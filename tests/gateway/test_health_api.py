"""The public health API end to end: gateway → Sahha emulator, gateway → WHOOP service → WHOOP
emulator, all over ASGI, with faults injected at the transport."""

import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.main import create_app
from gateway.settings import GatewaySettings
from tests.gateway.harness import token_for
from tests.whoop_service.test_reads import expected_days

USER = "7f1c2e4a-9b8d-4c6e-a1f2-3d4e5f6a7b8c"
DAY = date(2026, 11, 17)  # three days before the emulators' clock: everything is scored


async def connect(stack, tz="-04:00") -> int:
    whoop_user = stack.whoop.whoop.add_user(tz_offset=tz, history_days=40).user_id
    resp = await stack.link_whoop(USER, sandbox_user_id=str(whoop_user))
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "connected"
    await stack.whoop.app.state.worker.wait_idle()
    return whoop_user


async def health(stack, **params):
    return await stack.get(f"/api/v1/health/{USER}", USER, params=params)


def sahha_expected(stack, day: date) -> dict:
    scores = {s["type"]: s for s in stack.sahha.scores(USER, day, day)}
    markers = {b["type"]: b for b in stack.sahha.biomarkers(USER, day, day)}
    return {"scores": scores, "biomarkers": markers}


@pytest.mark.parametrize("tz", ["-04:00", "+12:00"])
async def test_the_merged_day_matches_both_emulators_key_by_key(stack, tz):
    whoop_user = await connect(stack, tz)
    resp = await health(stack, date=DAY.isoformat())
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["complete"] is True
    assert body["sources"]["sahha"]["status"] == "ok"
    assert body["sources"]["whoop"]["status"] == "ok"
    assert body["sources"]["whoop"]["data_source"] == "database"
    [day] = body["days"]
    summary = day["summary"]
    cycle_id, main_id = expected_days(stack.whoop, whoop_user)[DAY]
    cycle = next(
        c for c in stack.whoop.whoop.records("cycle", whoop_user) if c["id"] == cycle_id
    )
    recovery = next(
        r
        for r in stack.whoop.whoop.records("recovery", whoop_user)
        if r["cycle_id"] == cycle_id
    )
    main = next(
        s for s in stack.whoop.whoop.records("sleep", whoop_user) if s["id"] == main_id
    )
    stages = main["score"]["stage_summary"]
    assert summary["readiness"] == {
        "value": recovery["score"]["recovery_score"],
        "source": "whoop",
        "metric": "recovery_score",
    }
    assert summary["sleep"]["value"] == main["score"]["sleep_performance_percentage"]
    assert summary["strain"]["value"] == cycle["score"]["strain"]
    assert summary["hrv_rmssd_ms"]["value"] == recovery["score"]["hrv_rmssd_milli"]
    assert (
        summary["resting_heart_rate_bpm"]["value"]
        == recovery["score"]["resting_heart_rate"]
    )
    minutes = (
        stages["total_light_sleep_time_milli"]
        + stages["total_slow_wave_sleep_time_milli"]
        + stages["total_rem_sleep_time_milli"]
    ) / 60000
    assert summary["sleep_duration_min"]["value"] == pytest.approx(minutes, abs=0.05)
    assert summary["energy_kcal"]["value"] == pytest.approx(
        cycle["score"]["kilojoule"] / 4.184, abs=0.05
    )
    sahha = sahha_expected(stack, DAY)
    assert summary["activity"] == {
        "value": round(sahha["scores"]["activity"]["score"] * 100, 1),
        "source": "sahha",
        "metric": "activity",
    }
    assert summary["steps"]["value"] == float(sahha["biomarkers"]["steps"]["value"])
    assert summary["steps"]["source"] == "sahha"
    assert {s["type"] for s in day["sahha"]["scores"]} == set(sahha["scores"])
    assert day["whoop"]["cycle"]["id"] == cycle_id
    assert "cache-control" not in resp.headers


async def test_a_range_has_one_entry_per_day(stack):
    await connect(stack)
    resp = await health(stack, start_date="2026-11-10", end_date="2026-11-16")
    assert resp.status_code == 200
    assert [d["date"] for d in resp.json()["days"]] == [
        (date(2026, 11, 10) + timedelta(days=i)).isoformat() for i in range(7)
    ]


async def test_a_user_without_whoop_gets_sahha_and_not_connected(stack):
    resp = await health(stack, date=DAY.isoformat())
    assert resp.status_code == 200
    body = resp.json()
    assert body["sources"]["whoop"]["status"] == "not_connected"
    assert body["sources"]["whoop"]["data_source"] is None
    assert body["complete"] is True
    assert body["days"][0]["summary"]["readiness"]["source"] == "sahha"


@pytest.mark.parametrize(
    ("mode", "status"), [("down", "unavailable"), ("error", "unavailable")]
)
async def test_whoop_service_failing_still_answers_with_sahha(stack, mode, status):
    await connect(stack)
    stack.service_faults.mode = mode
    resp = await health(stack, date=DAY.isoformat())
    assert resp.status_code == 200
    body = resp.json()
    assert body["sources"]["whoop"]["status"] == status
    assert body["sources"]["whoop"]["data_source"] is None
    assert body["complete"] is False
    assert resp.headers["cache-control"] == "no-store"
    assert body["days"][0]["summary"]["readiness"]["source"] == "sahha"
    assert body["days"][0]["whoop"]["cycle"] is None


@pytest.mark.parametrize("stack", [{"whoop_service_timeout_s": 0.5}], indirect=True)
async def test_a_slow_whoop_service_costs_its_timeout_then_almost_nothing(stack):
    await connect(stack)
    stack.service_faults.mode = "slow"
    stack.service_faults.delay_s = 5.0
    for _ in range(3):  # the breaker opens after three failures
        started = time.monotonic()
        resp = await health(stack, date=DAY.isoformat())
        assert time.monotonic() - started < 2.5
        assert resp.json()["sources"]["whoop"]["status"] == "timeout"
    attempts = stack.service_faults.attempted
    resp = await health(stack, date=DAY.isoformat())
    assert resp.status_code == 200
    assert resp.json()["sources"]["whoop"]["status"] == "unavailable"
    assert stack.service_faults.attempted == attempts, "the open breaker made no call"


async def test_sahha_down_still_answers_with_whoop(stack):
    await connect(stack)
    stack.sahha_faults.mode = "down"
    resp = await health(stack, date=DAY.isoformat())
    assert resp.status_code == 200
    body = resp.json()
    assert body["sources"]["sahha"]["status"] == "unavailable"
    assert body["sources"]["whoop"]["status"] == "ok"
    assert body["days"][0]["summary"]["readiness"]["source"] == "whoop"
    assert body["days"][0]["summary"]["activity"] is None


async def test_both_down_is_a_502_problem_with_the_sources(stack):
    await connect(stack)
    stack.sahha_faults.mode = "down"
    stack.service_faults.mode = "down"
    resp = await health(stack, date=DAY.isoformat())
    assert resp.status_code == 502
    assert resp.headers["content-type"] == "application/problem+json"
    body = resp.json()
    assert body["code"] == "sources_unavailable"
    assert body["sources"]["sahha"]["status"] == "unavailable"
    assert body["sources"]["whoop"]["status"] == "unavailable"
    assert resp.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("stack", [{"aggregation_mode": "concurrent"}], indirect=True)
async def test_concurrent_mode_gives_the_same_answer(stack):
    await connect(stack)
    resp = await health(stack, date=DAY.isoformat())
    assert resp.status_code == 200
    assert resp.json()["complete"] is True


async def test_auth_is_required_and_checked(stack):
    path = f"/api/v1/health/{USER}"
    assert (await stack.client.get(path)).status_code == 401
    bad = await stack.client.get(path, headers={"Authorization": "Bearer not-a-jwt"})
    assert bad.status_code == 401
    assert bad.headers["content-type"] == "application/problem+json"
    expired = await stack.client.get(
        path, headers={"Authorization": f"Bearer {token_for(USER, exp_in_s=-600)}"}
    )
    assert expired.status_code == 401
    other = await stack.client.get(
        path, headers={"Authorization": f"Bearer {token_for('someone-else')}"}
    )
    assert other.status_code == 403
    service = await stack.client.get(
        path,
        params={"date": DAY.isoformat()},
        headers={
            "Authorization": f"Bearer {token_for('backend', role='service_role')}"
        },
    )
    assert service.status_code == 200


@pytest.mark.parametrize(
    "params",
    [
        {"date": "2026-11-31"},
        {"start_date": "2026-11-01"},
        {"start_date": "2026-11-20", "end_date": "2026-11-01"},
        {"start_date": "2026-10-01", "end_date": "2026-11-20"},
        {"tz": "Nowhere/Land"},
        {"date": "2026-11-17", "start_date": "2026-11-17", "end_date": "2026-11-18"},
    ],
)
async def test_bad_dates_are_422(stack, params):
    resp = await health(stack, **params)
    assert resp.status_code == 422
    assert resp.headers["content-type"] == "application/problem+json"


async def test_bad_user_ids_are_422_before_any_lookup(stack):
    resp = await stack.get("/api/v1/health/has%20space", "has space")
    assert resp.status_code in (
        401,
        422,
    )  # such a sub is refused by the token check too
    long_id = "x" * 65
    resp = await stack.get(f"/api/v1/health/{long_id}", USER)
    assert resp.status_code == 422


@pytest.mark.parametrize(
    "day", ["9999-12-31", "0001-01-01", "9999-12-29", "1999-12-31"]
)
async def test_dates_far_from_now_are_422_not_500(stack, day):
    resp = await health(stack, date=day)
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "date"
    assert stack.service_faults.attempted == 0, "refused before any upstream call"


def gateway_openapi(tmp_path: Path) -> dict[str, Any]:
    return create_app(GatewaySettings(_env_file=None, var_dir=tmp_path)).openapi()


def problem_statuses(tmp_path: Path, path: str, method: str) -> set[int]:
    """The statuses an operation of the gateway's OpenAPI documents as problem+json answers."""
    responses = gateway_openapi(tmp_path)["paths"][path][method]["responses"]
    return {
        int(status)
        for status, response in responses.items()
        if "application/problem+json" in response.get("content", {})
    }


def test_openapi_documents_the_health_problems(tmp_path: Path) -> None:
    """Found by the fuzzer: 401 and 403 were undocumented, 502 had no schema."""
    merged = problem_statuses(tmp_path, "/api/v1/health/{user_id}", "get")
    assert merged == {401, 403, 422, 429, 502}
    sources = problem_statuses(tmp_path, "/api/v1/health/sources/{user_id}", "get")
    assert sources == {401, 403, 422, 429}
