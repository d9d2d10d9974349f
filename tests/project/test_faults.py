"""Fault tests with real failures: the WHOOP service killed and restarted under gateway load, and
PostgreSQL restarted while first syncs are in flight."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from gateway.breaker import CircuitBreaker
from tests.gateway.harness import JWT_SECRET, token_for
from tests.processes import App
from tests.servers import restartable_postgres
from tests.service_calls import connect_user
from tests.whoop_service.harness import Harness, make_harness
from whoop_service.db import tables as t
from whoop_service.db.records import TABLES

KEY = "fault-test-key"
WHOOP_CLIENT = ("fault-client", "fault-client-secret")
SAHHA_CLIENT = ("fault-sahha-client", "fault-sahha-secret")

# The gateway's limits, short so that the load spans several deadlines.
DEADLINE_S = 4.0
SERVICE_TIMEOUT_S = 2.0
# An answer's own work and the loaded machine's scheduling, past the deadline.
SLACK_S = 1.5
CLIENTS = 16
LOAD_S = 15.0
# Longer than the breaker's cool-down: one trial call fails while the service is down.
DOWN_S = 6.0
WARM_S = 3.0  # load with WHOOP up before the kill
# Between one client's requests: load, not a busy loop on a 2-core machine.
THINK_S = 0.05
# The gateway builds its breaker with the defaults (gateway/main.py).
BREAKER_RESET_S: float = (
    inspect.signature(CircuitBreaker).parameters["reset_timeout_s"].default
)
DOWN_STATUSES = {"unavailable", "timeout"}


@dataclass
class Answer:
    """One gateway request as a client saw it."""

    started: float
    ended: float
    # None: no answer at all (the client gave up or lost the connection).
    status: int | None
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def took_s(self) -> float:
        return self.ended - self.started

    @property
    def whoop(self) -> str | None:
        sources = self.body.get("sources") or {}
        return (sources.get("whoop") or {}).get("status")

    @property
    def whoop_days(self) -> int:
        """Days carrying a WHOOP cycle."""
        return sum(1 for d in self.body.get("days", []) if d["whoop"]["cycle"])


async def wait_synced(client: httpx2.AsyncClient, service: str, user_id: str) -> None:
    """Until the first sync (a job queued by connecting) has stored every type."""
    deadline = time.monotonic() + 60
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        resp = await client.get(
            f"{service}/internal/sync/status/{user_id}", headers={"X-API-Key": KEY}
        )
        states = {k: v["status"] for k, v in resp.json()["sync"].items()}
        if len(states) == 4 and set(states.values()) == {"success"}:
            return
        await asyncio.sleep(0.2)
    pytest.fail(f"the first sync did not finish: {states}")


async def drive(
    client: httpx2.AsyncClient,
    path: str,
    params: dict[str, str],
    headers: dict[str, str],
    stop: asyncio.Event,
    answers: list[Answer],
) -> None:
    """One client: request after request until `stop`."""
    while not stop.is_set():
        started = time.monotonic()
        try:
            resp = await client.get(path, params=params, headers=headers)
        except httpx2.HTTPError:
            answers.append(Answer(started, time.monotonic(), None))
        else:
            try:
                body = resp.json()
            except ValueError:  # not JSON: the status assertion shows it
                body = {}
            answers.append(
                Answer(
                    started,
                    time.monotonic(),
                    resp.status_code,
                    dict(resp.headers),
                    body,
                )
            )
        await asyncio.sleep(THINK_S)


async def poll(condition: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Until `condition()` holds; when it did (monotonic)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout_s:.0f} s")
        await asyncio.sleep(0.05)
    return time.monotonic()


@pytest.mark.slow
async def test_gateway_under_load_while_the_whoop_service_is_killed_and_restarted(
    tmp_path: Path,
) -> None:
    whoop = App(
        "sandbox.whoop:create_app",
        {
            "SANDBOX_WHOOP_CLIENT_ID": WHOOP_CLIENT[0],
            "SANDBOX_WHOOP_CLIENT_SECRET": WHOOP_CLIENT[1],
            "SANDBOX_WHOOP_HISTORY_DAYS": "10",
        },
        tmp_path,
        tmp_path / "whoop.log",
    )
    sahha = App(
        "sandbox.sahha:create_app",
        {
            "SANDBOX_SAHHA_CLIENT_ID": SAHHA_CLIENT[0],
            "SANDBOX_SAHHA_CLIENT_SECRET": SAHHA_CLIENT[1],
        },
        tmp_path,
        tmp_path / "sahha.log",
    )
    service = App(
        "whoop_service.main:create_app",
        {
            "ENVIRONMENT": "development",
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/whoop.db",
            "INTERNAL_API_KEYS": KEY,
            # Fixed, so that the restarted process still reads the tokens it stored.
            "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "WHOOP_CLIENT_ID": WHOOP_CLIENT[0],
            "WHOOP_CLIENT_SECRET": WHOOP_CLIENT[1],
            "WHOOP_API_BASE_URL": f"{whoop.url}/developer",
            "WHOOP_OAUTH_BASE_URL": f"{whoop.url}/oauth/oauth2",
            "SCHEDULER_ENABLED": "false",
            "LOG_LEVEL": "warning",
            "VAR_DIR": str(tmp_path / "var-service"),
        },
        tmp_path,
        tmp_path / "service.log",
    )
    gateway = App(
        "gateway.main:create_app",
        {
            "ENVIRONMENT": "development",
            "SAHHA_API_BASE_URL": sahha.url,
            "SAHHA_CLIENT_ID": SAHHA_CLIENT[0],
            "SAHHA_CLIENT_SECRET": SAHHA_CLIENT[1],
            "SAHHA_TIMEOUT_S": str(SERVICE_TIMEOUT_S),
            "WHOOP_SERVICE_URL": service.url,
            "WHOOP_SERVICE_API_KEY": KEY,
            "WHOOP_SERVICE_TIMEOUT_S": str(SERVICE_TIMEOUT_S),
            "REQUEST_DEADLINE_S": str(DEADLINE_S),
            # The load here is one user's; the per-user limit is tests/gateway/test_ratelimit's.
            "PUBLIC_RATE_LIMIT_PER_MINUTE": "1000000",
            "SUPABASE_JWT_SECRET": JWT_SECRET,
            "LOG_LEVEL": "warning",
            "VAR_DIR": str(tmp_path / "var-gateway"),
        },
        tmp_path,
        tmp_path / "gateway.log",
    )
    apps = [whoop, sahha, service, gateway]
    user_id = "fault-user"
    today = datetime.now(UTC).date()
    params = {
        "start_date": (today - timedelta(days=3)).isoformat(),
        "end_date": (today - timedelta(days=1)).isoformat(),
    }
    headers = {"Authorization": f"Bearer {token_for(user_id)}"}
    answers: list[Answer] = []
    stop = asyncio.Event()
    try:
        for app, path in (
            (whoop, "/docs"),
            (sahha, "/docs"),
            (service, "/health/ready"),
            (gateway, "/health/ready"),
        ):
            await asyncio.to_thread(app.wait_ready, path)
        async with httpx2.AsyncClient(timeout=30) as setup:
            await connect_user(setup, service.url, user_id, KEY)
            await wait_synced(setup, service.url, user_id)
        async with httpx2.AsyncClient(
            base_url=gateway.url, timeout=DEADLINE_S + 10
        ) as client:
            load_started = time.monotonic()
            clients = [
                asyncio.create_task(
                    drive(
                        client,
                        f"/api/v1/health/{user_id}",
                        params,
                        headers,
                        stop,
                        answers,
                    )
                )
                for _ in range(CLIENTS)
            ]
            try:
                await poll(
                    lambda: (
                        time.monotonic() - load_started > WARM_S
                        and sum(a.whoop == "ok" for a in answers) >= 3 * CLIENTS
                    ),
                    30,
                    "no WHOOP data under load",
                )
                killed_at = time.monotonic()
                await asyncio.to_thread(service.kill)
                await poll(
                    lambda: any(
                        a.started > killed_at and a.whoop in DOWN_STATUSES
                        for a in answers
                    ),
                    DEADLINE_S + SLACK_S,
                    "no answer said WHOOP was down",
                )
                # The outage itself: a scenario's length, not a wait for a condition.
                await asyncio.sleep(max(0.0, killed_at + DOWN_S - time.monotonic()))
                respawned_at = time.monotonic()
                service.restart()
                await asyncio.to_thread(service.wait_ready, "/health/ready")
                recovery_s = BREAKER_RESET_S + DEADLINE_S + SLACK_S
                recovered_at = await poll(
                    lambda: any(
                        a.started > respawned_at and a.whoop == "ok" for a in answers
                    ),
                    recovery_s,
                    "answers did not recover to WHOOP data after the restart",
                )
                # Keep the load on a while after recovery: the breaker must stay closed.
                await asyncio.sleep(max(2.0, load_started + LOAD_S - time.monotonic()))
            finally:
                stop.set()
                await asyncio.gather(*clients)
    finally:
        for app in reversed(apps):
            await asyncio.to_thread(app.stop)

    assert len(answers) >= 10 * CLIENTS, len(answers)
    unanswered = [a for a in answers if a.status is None]
    assert not unanswered, f"{len(unanswered)} requests got no answer"
    slowest = max(a.took_s for a in answers)
    assert slowest <= DEADLINE_S + SLACK_S, f"an answer took {slowest:.2f} s"
    for a in answers:
        assert a.status in (200, 502), (a.status, a.body)
        if a.status == 502:
            assert a.headers["content-type"].startswith("application/problem+json")
            assert a.body["code"] == "sources_unavailable"
            assert a.whoop in DOWN_STATUSES, a.body
        elif a.whoop == "ok":
            assert a.whoop_days > 0, a.body
            sahha_ok = a.body["sources"]["sahha"]["status"] == "ok"
            assert a.body["complete"] is sahha_ok, a.body["sources"]
        else:
            assert a.whoop in DOWN_STATUSES, a.body
            assert a.body["complete"] is False
            assert a.headers["cache-control"] == "no-store"
    before = [a for a in answers if a.ended < killed_at]
    assert before
    assert all(a.whoop == "ok" for a in before), "WHOOP answered before the kill"
    down = [a for a in answers if a.started > killed_at and a.ended < respawned_at]
    assert down
    assert all(a.whoop in DOWN_STATUSES for a in down)
    after = [a for a in answers if a.started > recovered_at]
    assert after
    assert all(a.whoop == "ok" for a in after), "the breaker closed and stayed closed"


# The score each stored row must carry as WHOOP holds it (None unless SCORED).
SCORES = {
    "cycle": "strain",
    "recovery": "recovery_score",
    "sleep": "sleep_performance_percentage",
    "workout": "strain",
}
USERS = 5
# Each data page: first syncs take seconds, so the restart lands in the middle of them.
WHOOP_DELAY_S = 0.4
SLOW_PATHS = ("/v2/cycle", "/v2/recovery", "/v2/activity")
SLOW = 10_000  # more than the test ever asks for


def whoop_pages_in_flight(h: Harness) -> int:
    """Data requests WHOOP has begun (each took one delay) but not answered yet."""
    begun = sum(SLOW - f.remaining for f in h.whoop.faults.pending)
    answered = sum(h.whoop.count_requests(f"/developer{p}") for p in SLOW_PATHS)
    return max(0, begun - answered)


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout_s: float, what: str
) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout_s:.0f} s")
        await asyncio.sleep(0.05)


def truth(h: Harness, kind: str, whoop_user: int) -> set[tuple[str, str, Any]]:
    """(id, score state, score) of every record WHOOP holds for the member now."""
    key = TABLES[kind][1]
    return {
        (
            str(r[key]),
            r["score_state"],
            r["score"].get(SCORES[kind]) if r["score_state"] == "SCORED" else None,
        )
        for r in h.whoop.records(kind, whoop_user)  # type: ignore[arg-type]
    }


async def stored(h: Harness, kind: str, user_id: str) -> list[tuple[str, str, Any]]:
    table, key = TABLES[kind]
    async with h.app.state.sessions() as session:
        rows = await session.execute(
            select(table.c[key], table.c.score_state, table.c[SCORES[kind]]).where(
                table.c.user_id == user_id
            )
        )
        return [(str(i), state, score) for i, state, score in rows.all()]


async def jobs(h: Harness) -> list[Any]:
    async with h.app.state.sessions() as session:
        rows = await session.execute(
            select(t.jobs.c.id, t.jobs.c.status, t.jobs.c.run_after, t.jobs.c.attempts)
        )
        return list(rows.all())


async def duplicates(h: Harness) -> dict[str, int]:
    """Ids stored more than once, per table."""
    found = {}
    async with h.app.state.sessions() as session:
        for kind, (table, key) in TABLES.items():
            twice = (
                select(table.c[key])
                .group_by(table.c[key])
                .having(func.count() > 1)
                .subquery()
            )
            found[kind] = (
                await session.execute(select(func.count()).select_from(twice))
            ).scalar_one()
    return found


async def last_syncs(h: Harness) -> dict[tuple[str, str], tuple[str, datetime]]:
    """(user, type) → (status, last_sync_at) of every sync state."""
    async with h.app.state.sessions() as session:
        rows = await session.execute(
            select(
                t.sync_state.c.user_id,
                t.sync_state.c.data_type,
                t.sync_state.c.status,
                t.sync_state.c.last_sync_at,
            )
        )
        return {(u, kind): (status, at) for u, kind, status, at in rows.all()}


async def ready(h: Harness) -> httpx2.Response:
    return await h.client.get("/health/ready")


@pytest.mark.slow
@pytest.mark.postgres
async def test_postgres_restarted_mid_sync_loses_and_duplicates_nothing(
    tmp_path: Path,
) -> None:
    # Its own server: the test stops it, which a shared TEST_DATABASE_URL must never see.
    with restartable_postgres() as pg:
        async with AsyncExitStack() as stack:
            h = await make_harness(stack, pg.url, tmp_path)
            members = {
                f"user-{i}": h.whoop.add_user(history_days=20).user_id
                for i in range(USERS)
            }
            for path in SLOW_PATHS:
                h.whoop.fail_next(path, status=200, count=SLOW, delay_s=WHOOP_DELAY_S)
            for user_id, whoop_user in members.items():
                resp = await h.connect(user_id, sandbox_user_id=str(whoop_user))
                assert resp.status_code == 200, resp.text

            async def first_pages_stored() -> bool:
                return bool(await stored(h, "cycle", "user-0"))

            await eventually(first_pages_stored, 30, "no sync stored a page")
            running = {j.id for j in await jobs(h) if j.status == "running"}
            await asyncio.to_thread(pg.stop)
            down = await ready(h)

            # Each running sync meets the dead database at its next step: once its page in flight
            # is answered (stored nowhere), or before it asks for the next one.
            async def no_page_in_flight() -> bool:
                return whoop_pages_in_flight(h) == 0

            await eventually(no_page_in_flight, 30, "WHOOP pages still in flight")
            still_down = await ready(h)
            await asyncio.to_thread(pg.start)
            h.whoop.faults.clear()

            async def is_ready() -> bool:
                return (await ready(h)).status_code == 200

            await eventually(is_ready, 30, "the service was not ready again")
            # Retries wait 30 s x 2^n, and a job whose worker could not record its failure (the
            # database was gone) waits for its lease. Virtual time jumps past both, but only while
            # no sync runs: a sync sees one instant, so its rows are WHOOP's at that instant.
            leftover = set(
                running
            )  # claimed before the outage; their runs died with it
            jump_s = h.app.state.settings.job_lease_s + 60
            deadline = time.monotonic() + 60
            while (rows := await jobs(h)) and any(j.status != "done" for j in rows):
                assert all(j.status != "dead" for j in rows), rows
                assert time.monotonic() < deadline, rows
                due = [
                    j
                    for j in rows
                    if (j.status == "queued" and j.run_after <= h.clock.now)
                    or (j.status == "running" and j.id not in leftover)
                ]
                if not due:
                    h.clock.advance(seconds=jump_s)
                    leftover.clear()
                    h.app.state.worker.notify()
                await asyncio.sleep(0.05)
            attempts = [j.attempts for j in rows]
            states = await last_syncs(h)
            doubles = await duplicates(h)
            have = {(u, k): await stored(h, k, u) for u in members for k in SCORES}
            # WHOOP's records as of each user's last sync (an open cycle's strain grows by the
            # minute): the clock is set back to that instant to ask the emulator.
            now = h.clock.now
            want = {}
            for u, w in members.items():
                for k in SCORES:
                    h.clock.now = states[u, k][1]
                    want[u, k] = truth(h, k, w)
            h.clock.now = now

    for status in (down, still_down):
        assert status.status_code == 503, status.text
        assert status.headers["content-type"].startswith("application/problem+json")
        assert status.json()["checks"]["database"] in ("failed", "timeout")
    assert running, "first syncs were running when PostgreSQL went down"
    assert len(attempts) == USERS
    assert max(attempts) > 1, "an interrupted sync was run again"
    assert doubles == dict.fromkeys(TABLES, 0)
    assert {k: v[0] for k, v in states.items()} == {
        (u, k): "success" for u in members for k in SCORES
    }
    for key, rows_of_user in have.items():
        ids = [i for i, _, _ in rows_of_user]
        assert len(ids) == len(set(ids)), key
        assert set(rows_of_user) == want[key], key
