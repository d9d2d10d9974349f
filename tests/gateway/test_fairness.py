"""CONTRACT.md §9 through the public API: one user hammering pull-to-refresh spends one sync per
cooldown, while other members' syncs, webhooks and first backfills go through meanwhile."""

import asyncio
import time
from collections import Counter
from contextlib import AsyncExitStack

import pytest
from sqlalchemy import select

from tests.gateway.harness import make_stack
from whoop_service.db import tables as t

DAY = {"start_date": "2026-11-18", "end_date": "2026-11-20"}


@pytest.fixture
async def stack(tmp_path):
    # WHOOP's default limits (100 a minute): the service sends 90 at most, users' work 45.
    async with AsyncExitStack() as s:
        yield await make_stack(s, f"sqlite+aiosqlite:///{tmp_path}/w.db", tmp_path)


async def link(stack, user_id: str) -> int:
    whoop_user = stack.whoop.whoop.add_user(history_days=10).user_id
    resp = await stack.link_whoop(user_id, sandbox_user_id=str(whoop_user))
    assert resp.status_code == 200, resp.text
    return whoop_user


async def hammer(stack, user_id: str, seconds: float) -> Counter[str]:
    """Pull-to-refresh and force-refresh reads in a loop; what each answered."""
    seen: Counter[str] = Counter()
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        sync = await stack.send("POST", f"/api/v1/whoop/sync/{user_id}", user_id)
        if sync.status_code == 429:
            # The service's cooldown, or past 120 requests a minute the gateway's own limit.
            assert sync.json()["code"] in {"sync_cooldown", "rate_limited"}
            assert 1 <= int(sync.headers["retry-after"]) <= 60
            seen[f"sync {sync.json()['code']}"] += 1
        else:
            seen[f"sync {sync.status_code}"] += 1
        read = await stack.get(
            f"/api/v1/health/{user_id}",
            user_id,
            params={**DAY, "force_refresh": "true"},
        )
        if read.status_code == 429:
            assert read.json()["code"] == "rate_limited"
            seen["read rate_limited"] += 1
        else:
            assert read.status_code == 200, read.text
            whoop = read.json()["sources"]["whoop"]
            assert whoop["status"] == "ok"
            seen[f"read {whoop['data_source']}"] += 1
        await asyncio.sleep(0.01)
    return seen


async def test_a_user_looping_refreshes_costs_one_sync_while_others_go_through(stack):
    await link(stack, "hostile")
    neighbour_whoop = await link(stack, "neighbour")
    await stack.whoop.app.state.worker.wait_idle()
    stack.whoop.whoop.reset_counters()

    async def the_others() -> dict[str, object]:
        await asyncio.sleep(0.5)  # the loop is under way
        sync = await stack.send("POST", "/api/v1/whoop/sync/neighbour", "neighbour")
        workout = stack.whoop.whoop.records("workout", neighbour_whoop)[0]
        hook = await stack.whoop.whoop.send_webhook(
            neighbour_whoop, "workout.updated", workout["id"]
        )
        newcomer = await link(stack, "newcomer")
        await stack.whoop.app.state.worker.wait_idle()
        status = await stack.get("/api/v1/whoop/status/newcomer", "newcomer")
        return {"sync": sync, "hook": hook, "newcomer": newcomer, "status": status}

    seen, others = await asyncio.gather(hammer(stack, "hostile", 3.0), the_others())
    assert seen["sync 200"] == 1, seen
    assert seen["sync sync_cooldown"] >= 10, seen
    assert seen["read whoop_api"] == 0, seen
    assert seen["read database"] >= 10, seen

    assert others["sync"].status_code == 200, others["sync"].text
    assert others["sync"].json()["status"] == "success"
    assert others["hook"].status_code == 202
    async with stack.whoop.app.state.sessions() as session:
        events = (await session.execute(select(t.webhook_events))).mappings().all()
        batches = await session.execute(
            select(t.jobs.c.status).where(t.jobs.c.dedupe_key.like("changes:%"))
        )
    assert [(e["event_type"], e["outcome"]) for e in events] == [
        ("workout.updated", "batched")
    ]
    assert batches.scalars().all() == ["done"]  # the neighbour's batch was fetched
    assert others["status"].status_code == 200
    sync_states = others["status"].json()["sync"]
    assert {s["status"] for s in sync_states.values()} == {"success"}
    # Nothing was refused by WHOOP: the app stayed within its limits.
    assert stack.whoop.whoop.rate_limited_count == 0
