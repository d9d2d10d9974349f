"""WhoopClient against the WHOOP emulator: pages, retries, 429s, 401s, deadlines."""

import time
from contextlib import AsyncExitStack
from datetime import timedelta

import httpx2
import pytest

from tests.whoop_service.harness import make_harness
from whoop_service.whoop.budget import BudgetExhausted, LocalBudget
from whoop_service.whoop.client import WhoopClient
from whoop_service.whoop.errors import WhoopNotFound, WhoopServerError
from whoop_service.whoop.ratelimit import BudgetLimits, Priority


@pytest.fixture
async def harness(tmp_path):
    async with AsyncExitStack() as stack:
        yield await make_harness(
            stack, f"sqlite+aiosqlite:///{tmp_path}/w.db", tmp_path
        )


async def connect(
    harness, tz_offset: str = "-04:00", per_minute: int | None = None
) -> int:
    """A connected user whose first sync is over, with WHOOP's windows and logs cleared."""
    user = harness.whoop.add_user(tz_offset=tz_offset, history_days=40)
    resp = await harness.connect("user-1", sandbox_user_id=str(user.user_id))
    assert resp.status_code == 200, resp.text
    await harness.app.state.worker.wait_idle()
    harness.clock.advance(seconds=61)
    harness.whoop.reset_counters()
    if per_minute is not None:
        harness.whoop.limiter.per_minute = per_minute
    return user.user_id


def client_of(harness, budget=None) -> WhoopClient:
    flow = harness.app.state.connect_flow
    return WhoopClient(
        flow._whoop._http, budget=budget
    )  # the app's pooled WHOOP client


async def fetch_all(client, harness, kind, days: int = 30, **kw):
    end = harness.clock.now
    records, pages = [], 0
    async for page in client.iter_pages(
        kind,
        harness.app.state.tokens,
        "user-1",
        end - timedelta(days=days),
        end,
        priority=Priority.INTERACTIVE,
        **kw,
    ):
        pages += 1
        records.extend(page)
    return records, pages


@pytest.mark.parametrize("kind", ["cycle", "recovery", "sleep", "workout"])
async def test_pages_cover_exactly_the_emulators_records(harness, kind):
    whoop_user = await connect(harness)
    client = client_of(harness)
    records, pages = await fetch_all(client, harness, kind)
    truth = harness.whoop.records(kind, whoop_user)
    start = harness.clock.now - timedelta(days=30)
    key = "cycle_id" if kind == "recovery" else "id"
    if kind == "recovery":
        starts = {
            c["id"]: c["start"] for c in harness.whoop.records("cycle", whoop_user)
        }
        expected = {
            r[key] for r in truth if starts[r["cycle_id"]] >= start.isoformat()[:19]
        }
    else:
        expected = {r[key] for r in truth if r["start"] >= start.isoformat()[:19]}
    got = [getattr(r, key) for r in records]
    assert len(got) == len(set(got)), "no record twice across pages"
    assert set(got) == expected
    assert pages == -(-len(got) // 25) or (pages == 1 and not got)
    assert client.calls == pages


async def test_a_server_error_on_page_two_is_retried(harness):
    await connect(harness)
    harness.whoop.fail_next("/v2/activity/sleep", status=500, on_page=2)
    records, _ = await fetch_all(client_of(harness), harness, "sleep", days=40)
    assert len(records) > 25
    statuses = [
        r.status for r in harness.whoop.request_log if "activity/sleep" in r.path
    ]
    assert statuses.count(500) == 1


async def test_persistent_server_errors_surface_as_typed_errors(harness):
    await connect(harness)
    harness.whoop.fail_next("/v2/cycle", status=503, count=10)
    with pytest.raises(WhoopServerError):
        await fetch_all(client_of(harness), harness, "cycle")


def virtual_budget(harness) -> LocalBudget:
    """A budget that believes it may send plenty, sleeping on the emulator's clock."""
    clock = harness.clock

    async def virtual_sleep(seconds: float) -> None:
        clock.advance(seconds=seconds)

    return LocalBudget(
        BudgetLimits(per_minute=1000, per_day=100_000),
        clock=lambda: clock.now.timestamp(),
        sleep=virtual_sleep,
    )


def data_log(harness):
    return [r for r in harness.whoop.request_log if r.path.startswith("/developer")]


async def test_whoop_reporting_no_remaining_requests_pauses_before_any_429(harness):
    await connect(harness, per_minute=1)
    started = harness.clock.now
    records, pages = await fetch_all(
        client_of(harness, virtual_budget(harness)), harness, "sleep", days=40
    )
    assert pages >= 2
    assert len(records) > 25
    assert harness.whoop.rate_limited_count == 0
    assert harness.clock.now - started >= timedelta(seconds=50), (
        "it waited for WHOOP's window"
    )


async def test_a_429_blocks_until_whoops_reset_then_succeeds(harness):
    await connect(harness, per_minute=2)
    # Another client of the same WHOOP app fills the window behind our budget's back.
    other = harness.whoop.add_user()
    token = harness.whoop.issue_tokens(other.user_id)["access_token"]
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=harness.whoop_app),
        base_url="http://whoop.test",
    ) as c:
        for _ in range(2):
            resp = await c.get(
                "/developer/v2/cycle", headers={"Authorization": f"Bearer {token}"}
            )
            assert resp.status_code == 200
    records, _ = await fetch_all(
        client_of(harness, virtual_budget(harness)), harness, "cycle", days=5
    )
    assert records
    log = data_log(harness)
    limited = [i for i, r in enumerate(log) if r.status == 429]
    assert len(limited) == 1, [r.status for r in log]
    after = log[limited[0] + 1]
    assert after.status == 200
    assert after.at - log[limited[0]].at >= timedelta(seconds=55), (
        "waited out, not retried at once"
    )


async def test_a_401_refreshes_once_and_retries(harness):
    whoop_user = await connect(harness)
    harness.whoop.expire_access_tokens(
        whoop_user
    )  # WHOOP refuses it; our row still says valid
    records, _ = await fetch_all(client_of(harness), harness, "cycle", days=5)
    assert records
    assert harness.whoop.token_requests["refresh_token"] == 1


async def test_not_found_is_typed(harness):
    await connect(harness)
    with pytest.raises(WhoopNotFound):
        await client_of(harness).fetch_one(
            "sleep",
            "00000000-0000-4000-8000-000000000000",
            harness.app.state.tokens,
            "user-1",
            priority=Priority.WEBHOOK,
        )


async def test_a_slot_beyond_the_deadline_fails_fast(harness):
    await connect(harness)
    budget = LocalBudget(BudgetLimits(per_minute=1, per_day=100))
    await budget.acquire(Priority.INTERACTIVE)
    started = time.monotonic()
    with pytest.raises(BudgetExhausted):
        await fetch_all(
            client_of(harness, budget),
            harness,
            "cycle",
            deadline=time.monotonic() + 0.5,
        )
    assert time.monotonic() - started < 0.5
    assert harness.whoop.count_requests("/developer/v2/cycle") == 0


async def test_a_spent_deadline_takes_no_budget_slot_and_sends_nothing(harness):
    await connect(harness)
    budget = LocalBudget(BudgetLimits(per_minute=10, per_day=100))
    with pytest.raises(BudgetExhausted):
        await fetch_all(
            client_of(harness, budget), harness, "cycle", deadline=time.monotonic()
        )
    assert harness.whoop.count_requests("/developer/v2/cycle") == 0
    assert (await budget.status())["minute_used"] == 0, "no slot spent on it"
