"""Benchmark 4: backfill. 200 users connect at once; how much of WHOOP's per-minute limit do their
first syncs use, and does WHOOP ever answer 429?

Real processes, as in `tests/project/test_replicas.py`: the WHOOP emulator (600 requests a minute),
the WHOOP service under uvicorn on a fresh PostgreSQL database, and this process connecting users
through the HTTP connect flow, which queues each user's first sync as a BACKFILL job. The service
spends `WHOOP_RATE_LIMIT_HEADROOM` (0.9) of WHOOP's limit, and BACKFILL may fill only its share
(`MINUTE_SHARE`, 0.9) of each window, so backfill alone can use at most 486 of the 600.

The saturated phase is every whole minute, counted from the first WHOOP request, that ended while
a first-sync job still waited to be claimed: demand exceeded the budget throughout it, so its
requests per minute are what the budget lets through. The minutes after it only drain the last
few jobs.

Run alone with `.venv/bin/python -m bench.backfill [replicas]` (3 replicas share a Redis budget).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
from cryptography.fernet import Fernet
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.processes import App
from tests.service_calls import connect_user, job_states, migrate
from whoop_service.db.session import make_engine
from whoop_service.sync.plan import SyncPolicy
from whoop_service.whoop.ratelimit import MINUTE_SHARE, BudgetLimits, Priority

USERS = 200
PER_MINUTE = 600  # ~1,750 requests at 486 a minute: a run of 3 to 4 minutes
# High enough never to bind (nor the service's 80 % backfill share of it): minutes are measured.
PER_DAY = 1_000_000
HEADROOM = 0.9
HISTORY_DAYS = 60  # more than a first sync reaches back, as for a real member
FIRST_SYNC_DAYS = SyncPolicy().first_sync_days
BUDGET = BudgetLimits.from_whoop(PER_MINUTE, PER_DAY, HEADROOM)
BACKFILL_CAP = BUDGET.caps(Priority.BACKFILL)[0]
TARGET_SHARE = 0.85
KEY = "bench-backfill-key"
SECRET = "bench-backfill-secret"
PROFILE_PATH = "/developer/v2/user/profile/basic"
KINDS = (
    ("cycle", "cycles", "id"),
    ("sleep", "sleeps", "id"),
    ("workout", "workouts", "id"),
    ("recovery", "recoveries", "cycle_id"),
)
SAMPLE = 20
TIMEOUT_S = 900.0
DEFAULT_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


@dataclass
class Run:
    """What one backfill run measured."""

    replicas: int
    connect_s: float = 0.0
    backlog_end: float = 0.0  # epoch s: the last first-sync job was claimed
    stats: dict[str, Any] = field(default_factory=dict)
    times: list[float] = field(default_factory=list)  # data-API requests, epoch s
    page_times: list[float] = field(default_factory=list)  # collection pages only
    profiles: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    jobs: dict[str, int] = field(default_factory=dict)
    retried_jobs: int = 0
    sync_states: dict[str, int] = field(default_factory=dict)
    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def wall_s(self) -> float:
        return self.times[-1] - self.times[0]

    def minutes(self) -> list[int]:
        """Requests in each whole minute from the first request that ended in the backlog."""
        start, full = self.times[0], int((self.backlog_end - self.times[0]) // 60)
        counts = [0] * full
        for at in self.times:
            k = int((at - start) // 60)
            if k < full:
                counts[k] += 1
        return counts

    def fastest(self, window_s: float = 10.0) -> int:
        """Most collection pages answered within any `window_s`: how fast the worker can go."""
        most, first = 0, 0
        for last, at in enumerate(self.page_times):
            while self.page_times[first] <= at - window_s:
                first += 1
            most = max(most, last - first + 1)
        return most


@contextlib.asynccontextmanager
async def _database(server_url: str) -> AsyncIterator[str]:
    """A new database on the server of `server_url`, dropped afterwards."""
    name = f"bench_backfill_{uuid.uuid4().hex[:8]}"
    # CREATE/DROP DATABASE cannot run inside a transaction.
    admin = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield (
            make_url(server_url)
            .set(database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def _redis_budget(replicas: int) -> str | None:
    """A Redis database for the shared budget of several replicas, its budget keys cleared."""
    if replicas == 1:
        return None
    url = os.environ.get("TEST_REDIS_URL", DEFAULT_REDIS).rsplit("/", 1)[0] + "/9"
    redis = Redis.from_url(url)
    try:
        await redis.delete(*(f"whoop:budget:{k}" for k in ("minute", "day", "blocked")))
    finally:
        await redis.aclose()
    return url


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def _measure(run: Run, tmp: Path, database_url: str) -> None:
    whoop = App(
        "sandbox.whoop:create_app",
        {
            "SANDBOX_WHOOP_CLIENT_ID": "bench-client",
            "SANDBOX_WHOOP_CLIENT_SECRET": SECRET,
            "SANDBOX_WHOOP_RATE_LIMIT_PER_MINUTE": str(PER_MINUTE),
            "SANDBOX_WHOOP_RATE_LIMIT_PER_DAY": str(PER_DAY),
            "SANDBOX_WHOOP_HISTORY_DAYS": str(HISTORY_DAYS),
        },
        tmp,
        tmp / "whoop.log",
    )
    env = {
        "ENVIRONMENT": "development",
        "DATABASE_URL": database_url,
        "DB_AUTO_MIGRATE": "false",
        "INTERNAL_API_KEYS": KEY,
        "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "WHOOP_CLIENT_ID": "bench-client",
        "WHOOP_CLIENT_SECRET": SECRET,
        "WHOOP_API_BASE_URL": f"{whoop.url}/developer",
        "WHOOP_OAUTH_BASE_URL": f"{whoop.url}/oauth/oauth2",
        "WHOOP_RATE_LIMIT_PER_MINUTE": str(PER_MINUTE),
        "WHOOP_RATE_LIMIT_PER_DAY": str(PER_DAY),
        "WHOOP_RATE_LIMIT_HEADROOM": str(HEADROOM),
        "SCHEDULER_ENABLED": "false",  # first syncs only: no slot may add its own
        "LOG_LEVEL": "warning",
        "VAR_DIR": str(tmp / "var"),
    }
    redis_url = await _redis_budget(run.replicas)
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
    migrated = await migrate(env, tmp)
    if migrated.returncode != 0:
        raise RuntimeError(f"migrate failed: {migrated.stderr[-2000:]}")
    services = [
        App("whoop_service.main:create_app", env, tmp, tmp / f"service{i}.log")
        for i in range(run.replicas)
    ]
    engine = make_engine(database_url)
    try:
        await asyncio.to_thread(whoop.wait_ready, "/docs")
        for s in services:
            await asyncio.to_thread(s.wait_ready, "/health/ready")
        async with httpx2.AsyncClient(timeout=60) as client:
            await _backfill(run, client, engine, services)
            await _read_emulator(run, client, whoop.url)
            await _check(run, client, engine, whoop.url)
    finally:
        await engine.dispose()
        for s in services:
            s.stop()
        whoop.stop()


async def _backfill(
    run: Run, client: httpx2.AsyncClient, engine: AsyncEngine, services: list[App]
) -> None:
    """Connect every user (which queues the first syncs) and wait until each sync job is done."""
    sem = asyncio.Semaphore(10)

    async def one(i: int) -> None:
        async with sem:
            await connect_user(
                client, services[i % len(services)].url, f"u{i:03d}", KEY
            )

    began = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(USERS)))
    run.connect_s = time.monotonic() - began
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        states = await job_states(engine)
        if not run.backlog_end and not states.get("queued"):
            run.backlog_end = time.time()
        if states == {"done": USERS}:
            break
        await asyncio.sleep(0.5)
    run.jobs = states
    if states != {"done": USERS}:
        raise RuntimeError(f"first syncs unfinished after {TIMEOUT_S:.0f} s: {states}")


async def _read_emulator(run: Run, client: httpx2.AsyncClient, whoop: str) -> None:
    run.stats = (await client.get(f"{whoop}/sandbox/stats")).json()
    logged = (await client.get(f"{whoop}/sandbox/requests")).json()
    run.times = sorted(_at(r["at"]).timestamp() for r in logged)
    run.statuses = Counter(r["status"] for r in logged)
    run.profiles = sum(1 for r in logged if r["path"] == PROFILE_PATH)
    run.page_times = sorted(
        _at(r["at"]).timestamp() for r in logged if r["path"] != PROFILE_PATH
    )


async def _check(
    run: Run, client: httpx2.AsyncClient, engine: AsyncEngine, whoop: str
) -> None:
    """Every user synced every type once; a sample's rows are what WHOOP holds."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT status, count(*) FROM whoop.sync_state GROUP BY status")
        )
        run.sync_states = {status: n for status, n in rows.all()}
        run.retried_jobs = (
            await conn.execute(
                text("SELECT count(*) FROM whoop.jobs WHERE attempts > 1")
            )
        ).scalar_one()
        users = (
            await conn.execute(
                text(
                    "SELECT user_id, whoop_user_id FROM whoop.connections ORDER BY user_id"
                )
            )
        ).all()
        sample = users[:: max(1, len(users) // SAMPLE)][:SAMPLE]
        stored: dict[tuple[str, str], dict[str, Any]] = {}
        for kind, table, key in KINDS:
            result = await conn.execute(
                text(
                    f"SELECT user_id, {key}, raw FROM whoop.{table}"
                    " WHERE user_id = ANY(:ids)"
                ),
                {"ids": [u for u, _ in sample]},
            )
            for user_id, record_id, raw in result.all():
                stored.setdefault((user_id, kind), {})[str(record_id)] = raw
    first = datetime.fromtimestamp(run.times[0], UTC)
    # Each sync reached back FIRST_SYNC_DAYS from when it ran, at the latest the last request:
    # a record starting after that lies in every user's window and must be stored.
    covered_from = datetime.fromtimestamp(run.times[-1], UTC) - timedelta(
        days=FIRST_SYNC_DAYS
    )
    compared = 0
    for user_id, whoop_user in sample:
        truth = {
            kind: (
                await client.get(f"{whoop}/sandbox/users/{whoop_user}/records/{kind}")
            ).json()
            for kind, _, _ in KINDS
        }
        cycle_start = {str(c["id"]): _at(c["start"]) for c in truth["cycle"]}
        for kind, _, key in KINDS:
            have = stored.get((user_id, kind), {})
            by_id = {str(r[key]): r for r in truth[kind]}
            for record_id, record in by_id.items():
                start = (
                    cycle_start.get(record_id)
                    if kind == "recovery"
                    else _at(record["start"])
                )
                # Changed at WHOOP since the run began (the emulator lives on real time):
                # the sync may have seen either version.
                settled = _at(record["updated_at"]) < first
                if start is None or start < covered_from or not settled:
                    continue
                if record_id not in have:
                    run.problems.append(f"{user_id} {kind} {record_id} missing")
                elif not _same(have[record_id], record):
                    run.problems.append(f"{user_id} {kind} {record_id} differs")
                else:
                    compared += 1
            extra = set(have) - set(by_id)
            if extra:
                run.problems.append(f"{user_id} {kind}: not at WHOOP {sorted(extra)}")
    run.checked.append(
        f"{len(sample)} sampled users: {compared} settled records in the"
        f" {FIRST_SYNC_DAYS}-day window equal to WHOOP's"
    )


def _same(raw: dict[str, Any], record: dict[str, Any]) -> bool:
    """Every field the service kept (its schema ignores some, drops nulls) says what WHOOP says."""
    return all(_same_value(value, record.get(name)) for name, value in raw.items())


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return _same(a, b)
    if isinstance(a, str) and isinstance(b, str) and a[:2].isdigit() and "T" in a:
        with contextlib.suppress(ValueError):
            return _at(a) == _at(b)
    return bool(a == b)


def _report(run: Run) -> list[str]:
    minutes = run.minutes()
    total = len(run.times)
    per_min = total / run.wall_s * 60 if run.wall_s else 0.0
    mean = sum(minutes) / len(minutes) if minutes else 0.0
    whoop_share, budget_share = mean / PER_MINUTE, mean / BUDGET.per_minute
    rate_limited = int(run.stats.get("rate_limited", -1))
    fastest = run.fastest()
    synced_ok = run.sync_states == {"success": USERS * 4}
    setup = (
        "1 replica (in-process budget)"
        if run.replicas == 1
        else f"{run.replicas} replicas (Redis budget)"
    )
    lines = [
        f"## 4. Backfill ({USERS} users, first sync)",
        "",
        f"WHOOP emulator at {PER_MINUTE} requests/min ({PER_DAY:,}/day: never binds);"
        f" WHOOP service: {setup} on PostgreSQL, headroom {HEADROOM}, so a budget of"
        f" {BUDGET.per_minute}/min of which BACKFILL may fill"
        f" {MINUTE_SHARE[Priority.BACKFILL]:.0%} = {BACKFILL_CAP}/min. Every user connects"
        f" through the HTTP flow (10 at a time; one profile request each) and gets a"
        f" {FIRST_SYNC_DAYS}-day first sync of {HISTORY_DAYS} days of history.",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| users | {USERS} |",
        f"| WHOOP data requests (profiles + collection pages) | {total}"
        f" ({run.profiles} + {total - run.profiles}) |",
        f"| requests per user | {total / USERS:.1f} |",
        f"| connecting all users | {run.connect_s:.1f} s |",
        f"| backfill wall time (first → last request) | {run.wall_s:.1f} s |",
        f"| requests per minute achieved (whole run) | {per_min:.0f} |",
        f"| saturated minutes (requests in each) | {len(minutes)}"
        f" ({', '.join(map(str, minutes))}) |",
        f"| share of WHOOP's limit, saturated phase | {whoop_share:.1%}"
        f" ({mean:.0f} / {PER_MINUTE}) |",
        f"| share of the service's budget, saturated phase | {budget_share:.1%}"
        f" ({mean:.0f} / {BUDGET.per_minute}) |",
        f"| most pages in any 10 s (the workers' own pace) | {fastest}"
        f" ({fastest / 10:.1f}/s vs {BACKFILL_CAP / 60:.1f}/s allowed on average) |",
        f"| peak requests in any 60 s | {run.stats.get('peak_requests_per_minute')} |",
        f"| 429s | {rate_limited} |",
        f"| responses by status | "
        f"{', '.join(f'{k}: {v}' for k, v in sorted(run.statuses.items()))} |",
        f"| first-sync jobs done / retried | {run.jobs.get('done', 0)}"
        f" / {run.retried_jobs} |",
        f"| sync states | {', '.join(f'{k}: {v}' for k, v in run.sync_states.items())} |",
        "",
        "The saturated phase is each whole minute from the first request that ended before the"
        " last first-sync job was claimed: jobs were waiting for budget throughout it, so its"
        " mean is what the budget lets through; the tail only drains the last jobs. The first"
        " minute also carries the connect flow's profile requests, which are INTERACTIVE and"
        f" may fill the budget up to {BUDGET.per_minute}. Minutes are counted by when the"
        " emulator answered, the peak by when it admitted: they may differ by a request or two."
        " The whole-run rate is first to last request and the run ends on a burst of freed"
        " slots, so it may exceed the budget although no 60 s ever held more than the peak.",
        "",
        f"- Target ≥ {TARGET_SHARE:.0%} of the service's budget used:"
        f" {budget_share:.1%} — {'met' if budget_share >= TARGET_SHARE else 'NOT met'}"
        f" (backfill's ceiling is {BACKFILL_CAP / BUDGET.per_minute:.0%}: the last"
        f" {1 - MINUTE_SHARE[Priority.BACKFILL]:.0%} of each minute stays free for users'"
        f" reads and webhooks; {whoop_share:.1%} of WHOOP's own limit).",
        f"- Target zero 429s: {rate_limited} — {'met' if rate_limited == 0 else 'NOT met'}"
        f" (peak {run.stats.get('peak_requests_per_minute')} in any 60 s,"
        f" limit {PER_MINUTE}).",
        f"- Every user's sync states `success`: {'yes' if synced_ok else 'NO'}"
        f" ({run.sync_states}).",
        f"- Rows equal WHOOP's records: {'yes' if not run.problems else 'NO'}"
        f" ({'; '.join(run.checked)}"
        + (f"; problems: {'; '.join(run.problems[:5])}" if run.problems else "")
        + ").",
        "",
    ]
    return lines


async def run(replicas: int = 1) -> list[str]:
    """Run the backfill benchmark; the markdown lines of its section."""
    server = os.environ.get("TEST_DATABASE_URL", DEFAULT_SERVER)
    result = Run(replicas)
    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as tmp:
        async with _database(server) as database_url:
            await _measure(result, Path(tmp), database_url)
    return _report(result)


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    sys.stdout.write("\n".join(asyncio.run(run(count))) + "\n")
