"""Signed webhooks from the WHOOP emulator into the WHOOP service, processed from the job table."""

import asyncio
import json
import time

import pytest
from sqlalchemy import func, select

from sandbox.whoop import sign_webhook
from tests.whoop_service.harness import CLIENT_SECRET
from tests.whoop_service.sync.test_sync import connect, stored
from whoop_service.db import tables as t


async def eventually(check, timeout_s: float = 5.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if result := await check():
            return result
        await asyncio.sleep(0.05)
    raise AssertionError("not within the time")


async def count(harness, table) -> int:
    async with harness.app.state.sessions() as session:
        return (
            await session.execute(select(func.count()).select_from(table))
        ).scalar_one()


async def outcome(harness, trace_id: str):
    async with harness.app.state.sessions() as session:
        row = (
            await session.execute(
                select(t.webhook_events.c.outcome).where(
                    t.webhook_events.c.trace_id == trace_id
                )
            )
        ).scalar_one_or_none()
    return row


async def post_raw(
    harness, body: bytes, ts_ms: str | None = None, secret: str = CLIENT_SECRET
):
    ts_ms = ts_ms or str(int(harness.clock.now.timestamp() * 1000))
    return await harness.client.post(
        "/webhooks/whoop",
        content=body,
        headers={
            "X-WHOOP-Signature": sign_webhook(secret, ts_ms, body),
            "X-WHOOP-Signature-Timestamp": ts_ms,
            "X-API-Key": "",
        },
    )


async def test_a_signed_update_is_answered_at_once_and_stored_soon_after(harness):
    whoop_user = await connect(harness)
    sleep = harness.whoop.records("sleep", whoop_user)[3]
    harness.clock.advance(minutes=1)
    harness.whoop.rescore("sleep", sleep["id"], sleep_performance_percentage=42.0)
    started = time.monotonic()
    resp = await harness.whoop.send_webhook(
        whoop_user, "sleep.updated", sleep["id"], trace_id="t-1"
    )
    assert resp.status_code == 202
    assert time.monotonic() - started < 1.0

    async def updated():
        rows = {r["id"]: r for r in await stored(harness, "sleep")}
        return rows[sleep["id"]]["sleep_performance_percentage"] == 42.0

    await eventually(updated)
    assert await eventually(lambda: outcome(harness, "t-1")) == "batched"


async def test_a_recovery_update_arrives_through_its_sleeps_cycle(harness):
    whoop_user = await connect(harness)
    recovery = harness.whoop.records("recovery", whoop_user)[2]
    harness.clock.advance(minutes=1)
    harness.whoop.rescore("recovery", recovery["cycle_id"], recovery_score=3.0)
    resp = await harness.whoop.send_webhook(
        whoop_user, "recovery.updated", recovery["sleep_id"], trace_id="t-r"
    )
    assert resp.status_code == 202

    async def updated():
        rows = {r["cycle_id"]: r for r in await stored(harness, "recovery")}
        return rows[recovery["cycle_id"]]["recovery_score"] == 3.0

    await eventually(updated)


async def test_a_deleted_sleep_disappears_with_its_recovery(harness):
    whoop_user = await connect(harness)
    recovery = harness.whoop.records("recovery", whoop_user)[2]
    sleep_id = recovery["sleep_id"]
    assert sleep_id in {r["id"] for r in await stored(harness, "sleep")}
    harness.whoop.delete_record("sleep", sleep_id)
    resp = await harness.whoop.send_webhook(
        whoop_user, "sleep.deleted", sleep_id, trace_id="t-d"
    )
    assert resp.status_code == 202

    async def gone():
        sleeps = {r["id"] for r in await stored(harness, "sleep")}
        recoveries = {r["sleep_id"] for r in await stored(harness, "recovery")}
        return sleep_id not in sleeps and sleep_id not in recoveries

    await eventually(gone)


async def test_the_same_trace_id_twice_is_processed_once(harness):
    whoop_user = await connect(harness)
    workout = harness.whoop.records("workout", whoop_user)[0]
    first = await harness.whoop.send_webhook(
        whoop_user, "workout.updated", workout["id"], trace_id="dup"
    )
    second = await harness.whoop.send_webhook(
        whoop_user, "workout.updated", workout["id"], trace_id="dup"
    )
    assert first.json()["status"] == "accepted"
    assert second.status_code == 202
    assert second.json()["status"] == "duplicate"
    await eventually(lambda: outcome(harness, "dup"))
    assert await count(harness, t.webhook_events) == 1
    async with harness.app.state.sessions() as session:
        jobs = (
            await session.execute(
                select(func.count())
                .select_from(t.jobs)
                .where(t.jobs.c.kind == "webhook")
            )
        ).scalar_one()
    assert jobs == 1


async def test_events_for_unknown_members_are_acknowledged_and_dropped(harness):
    body = json.dumps(
        {
            "user_id": 999_999,
            "id": "550e8400-e29b-41d4-a716-446655440000",
            "type": "sleep.updated",
            "trace_id": "stranger",
        }
    ).encode()
    resp = await post_raw(harness, body)
    assert resp.status_code == 202
    assert await eventually(lambda: outcome(harness, "stranger")) == "unknown_user"
    assert harness.whoop.count_requests("/developer") == 0


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("bad_signature", 401),
        ("old_timestamp", 401),
        ("unsigned", 401),
        ("malformed", 422),
    ],
)
async def test_bad_webhooks_are_refused_and_nothing_is_stored(harness, case, status):
    body = json.dumps(
        {"user_id": 1, "id": "x", "type": "sleep.updated", "trace_id": case}
    ).encode()
    if case == "bad_signature":
        resp = await post_raw(harness, body, secret="not-the-secret")
    elif case == "old_timestamp":
        resp = await post_raw(
            harness,
            body,
            ts_ms=str(int(harness.clock.now.timestamp() * 1000) - 301_000),
        )
    elif case == "unsigned":
        resp = await harness.client.post("/webhooks/whoop", content=body)
    else:
        resp = await post_raw(harness, b'{"user_id": "nope"}')
    assert resp.status_code == status
    assert resp.headers["content-type"] == "application/problem+json"
    assert await count(harness, t.webhook_events) == 0
    assert await count(harness, t.jobs) == 0


async def test_a_non_ascii_signature_is_401_not_500(harness):
    body = b'{"user_id": 1, "id": "x", "type": "sleep.updated", "trace_id": "u"}'
    resp = await harness.client.post(
        "/webhooks/whoop",
        content=body,
        headers={
            "X-WHOOP-Signature": "s\u00e9gnature".encode(),
            "X-WHOOP-Signature-Timestamp": str(
                int(harness.clock.now.timestamp() * 1000)
            ),
        },
    )
    assert resp.status_code == 401
    assert await count(harness, t.webhook_events) == 0
