"""Database-first reads against the WHOOP emulator, on SQLite and PostgreSQL."""

from collections import Counter
from datetime import datetime, timedelta

import pytest

from shared.time import parse_utc_offset
from tests.whoop_service.sync.test_sync import connect


def local_date(instant: str, offset: str):
    return datetime.fromisoformat(instant).astimezone(parse_utc_offset(offset)).date()


def expected_days(harness, whoop_user: int) -> dict:
    """date → (cycle id, main sleep id), worked out here from the emulator's own records."""
    sleeps = harness.whoop.records("sleep", whoop_user)
    out = {}
    for c in harness.whoop.records("cycle", whoop_user):
        mains = [s for s in sleeps if not s["nap"] and s["cycle_id"] == c["id"]]
        if mains:
            main = max(
                mains,
                key=lambda s: (
                    datetime.fromisoformat(s["end"])
                    - datetime.fromisoformat(s["start"])
                ),
            )
            day = local_date(main["end"], main["timezone_offset"])
        else:
            start = datetime.fromisoformat(c["start"]).astimezone(
                parse_utc_offset(c["timezone_offset"])
            )
            day = start.date() + timedelta(days=1 if start.hour >= 12 else 0)
            main = None
        out.setdefault(day, []).append((c["id"], main["id"] if main else None))
    return {d: v[0] for d, v in out.items() if len(v) == 1}


async def daily(harness, start, end=None, headers=None, **params):
    query = {
        "start_date": str(start),
        **({"end_date": str(end)} if end else {}),
        **params,
    }
    resp = await harness.client.get(
        "/internal/data/daily/user-1", params=query, headers=headers
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


@pytest.mark.parametrize("tz", ["-04:00", "+12:00"])
async def test_each_local_day_gets_its_cycle_recovery_and_sleeps(harness, tz):
    whoop_user = await connect(harness, tz=tz)
    today = harness.clock.now.astimezone(parse_utc_offset(tz)).date()
    body = await daily(harness, today - timedelta(days=20), today)
    expected = expected_days(harness, whoop_user)
    recoveries = {
        r["cycle_id"]: r for r in harness.whoop.records("recovery", whoop_user)
    }
    checked = 0
    for day in body["days"]:
        date = datetime.fromisoformat(day["date"]).date()
        if date not in expected:
            continue
        cycle_id, main_id = expected[date]
        assert day["cycle"]["id"] == cycle_id, date
        mains = [s["id"] for s in day["sleeps"] if s["main"]]
        assert mains == ([main_id] if main_id else []), date
        if cycle_id in recoveries:
            assert day["recovery"]["cycle_id"] == cycle_id
            assert day["recovery"]["recovery_score"] == recoveries[cycle_id].get(
                "score", {}
            ).get("recovery_score")
        for nap in (s for s in day["sleeps"] if s["nap"]):
            assert local_date(nap["start"], nap["timezone_offset"]) == date
        for w in day["workouts"]:
            assert local_date(w["start"], w["timezone_offset"]) == date
        checked += 1
    assert checked >= 18
    naps = sum(1 for d in body["days"] for s in d["sleeps"] if s["nap"])
    assert naps > 0, "the emulator's naps reach their days"


async def test_a_synced_users_read_makes_no_whoop_call(harness):
    await connect(harness)
    harness.whoop.reset_counters()
    today = harness.clock.now.date()
    body = await daily(harness, today - timedelta(days=6), today)
    assert body["data_source"] == "database"
    assert body["stale"] is False
    assert body["connection"] == "connected"
    assert len(body["days"]) == 7
    assert harness.whoop.count_requests("/developer") == 0


async def test_with_whoop_down_stale_rows_come_with_a_warning(harness):
    await connect(harness)
    harness.clock.advance(hours=3)  # past every freshness threshold
    harness.whoop.fail_next("/developer/v2", status=503, count=100)
    today = harness.clock.now.date()
    body = await daily(harness, today - timedelta(days=6), today)
    assert body["stale"] is True, body | {"days": None}
    assert body["data_source"] == "stale_cache"
    assert "WHOOP" in body["warning"]
    assert sum(1 for d in body["days"] if d["cycle"]) >= 6
    status = (await harness.client.get("/internal/sync/status/user-1")).json()["sync"]
    assert status["cycle"]["status"] == "failed"


async def test_a_short_deadline_serves_the_database_without_calling_whoop(harness):
    await connect(harness)
    harness.clock.advance(hours=3)
    harness.whoop.reset_counters()
    today = harness.clock.now.date()
    body = await daily(harness, today, headers={"X-Request-Deadline-Ms": "400"})
    assert body["stale"] is True
    assert "time" in body["warning"]
    assert harness.whoop.count_requests("/developer") == 0


async def test_stale_data_is_refreshed_when_the_deadline_allows(harness):
    await connect(harness)
    harness.clock.advance(hours=3)
    harness.whoop.reset_counters()
    body = await daily(harness, harness.clock.now.date())
    assert body["data_source"] == "whoop_api"
    assert body["stale"] is False
    calls = Counter(
        r.path for r in harness.whoop.request_log if r.path.startswith("/developer")
    )
    assert sum(calls.values()) <= 4


async def test_force_refresh_syncs_a_fresh_user(harness):
    await connect(harness)
    harness.whoop.reset_counters()
    body = await daily(harness, harness.clock.now.date(), force_refresh="true")
    assert body["data_source"] == "whoop_api"
    assert harness.whoop.count_requests("/developer") >= 4


async def test_a_missing_recent_day_triggers_one_sync_then_waits(harness):
    await connect(harness)
    harness.clock.advance(minutes=11)
    harness.whoop.reset_counters()
    future = harness.clock.now.date() + timedelta(days=1)  # no cycle can be there yet
    first = await daily(harness, future)
    assert first["data_source"] == "whoop_api"
    calls = harness.whoop.count_requests("/developer")
    again = await daily(harness, future)
    assert again["data_source"] == "database"
    assert harness.whoop.count_requests("/developer") == calls, (
        "no new sync within 10 minutes"
    )


async def test_not_connected_users_get_an_empty_answer(harness):
    resp = await harness.client.get(
        "/internal/data/daily/nobody", params={"start_date": "2026-11-20"}
    )
    assert resp.status_code == 200
    body = resp.json()
    assert body["connection"] == "not_connected"
    assert body["days"][0]["cycle"] is None


@pytest.mark.parametrize(
    "params",
    [
        {"start_date": "2026-11-20", "end_date": "2026-11-19"},
        {"start_date": "2026-10-01", "end_date": "2026-11-20"},
        {"start_date": "2026-13-01"},
        {},
        {"start_date": "2026-11-20", "force_refresh": "perhaps"},
    ],
)
async def test_bad_ranges_are_422(harness, params):
    resp = await harness.client.get("/internal/data/daily/user-1", params=params)
    assert resp.status_code == 422
    assert resp.headers["content-type"] == "application/problem+json"


async def test_bad_deadline_header_is_422(harness):
    resp = await harness.client.get(
        "/internal/data/daily/user-1",
        params={"start_date": "2026-11-20"},
        headers={"X-Request-Deadline-Ms": "soon"},
    )
    assert resp.status_code == 422


async def test_one_type_lists_its_records_oldest_first(harness):
    whoop_user = await connect(harness)
    end = harness.clock.now
    start = end - timedelta(days=10)
    resp = await harness.client.get(
        "/internal/data/workouts/user-1",
        params={"start": start.isoformat(), "end": end.isoformat()},
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    got = [w["id"] for w in body["records"]]
    truth = [
        w
        for w in harness.whoop.records("workout", whoop_user)
        if start <= datetime.fromisoformat(w["start"]) < end
    ]
    assert set(got) == {w["id"] for w in truth}
    assert got == sorted(
        got, key=lambda i: next(w["start"] for w in body["records"] if w["id"] == i)
    )
    rec = await harness.client.get(
        "/internal/data/recovery/user-1", params={"start": start.isoformat()}
    )
    assert rec.status_code == 200
    assert rec.json()["records"], "recoveries of the cycles in range"
    bad = await harness.client.get("/internal/data/steps/user-1")
    assert bad.status_code == 422


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/internal/data/daily/user-1", {"start_date": "9999-12-31"}),
        ("/internal/data/daily/user-1", {"start_date": "0001-01-01"}),
        ("/internal/data/cycles/user-1", {"end": "0001-01-02T00:00:00Z"}),
        ("/internal/data/cycles/user-1", {"start": "9999-12-31T00:00:00Z"}),
    ],
)
async def test_extreme_dates_are_422(harness, path, params):
    resp = await harness.client.get(path, params=params)
    assert resp.status_code == 422, resp.text


async def test_extreme_sync_dates_are_422(harness):
    await connect(harness)
    resp = await harness.client.post(
        "/internal/sync/user-1", json={"start_date": "0001-01-01"}
    )
    assert resp.status_code == 422


async def test_a_failing_token_refresh_serves_stored_data_not_502(harness):
    await connect(harness)
    harness.clock.advance(hours=3)  # stale data and an expired access token
    harness.whoop.fail_next("/oauth/oauth2/token", status=503, count=10)
    body = await daily(harness, harness.clock.now.date() - timedelta(days=2))
    assert body["stale"] is True
    assert body["days"][0]["cycle"] is not None


async def test_a_read_does_not_wait_past_its_deadline_for_a_running_sync(harness):
    import asyncio
    import time as _time

    await connect(harness)
    harness.clock.advance(hours=3)
    engine = harness.app.state.sync_engine
    lock = asyncio.Lock()
    # A job of this user is mid-sync, waiting on the budget.
    engine._locks["user-1"] = lock
    await lock.acquire()
    try:
        started = _time.monotonic()
        body = await daily(
            harness, harness.clock.now.date(), headers={"X-Request-Deadline-Ms": "1500"}
        )
        assert _time.monotonic() - started < 3.0
    finally:
        lock.release()
    assert body["stale"] is True
    assert "under way" in body["warning"]
