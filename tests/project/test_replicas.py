"""Three WHOOP-service processes on one PostgreSQL and one Redis, against the WHOOP emulator with a
low rate limit: 100 users synced, every job done once, no duplicate rows, no 429, never more than
the budget in any minute, and a replica killed mid-run loses nothing."""

import asyncio
import time
from datetime import UTC, datetime

import httpx2
import pytest
from cryptography.fernet import Fernet
from redis.asyncio import Redis
from sqlalchemy import text

from tests.processes import App
from tests.service_calls import connect_user, job_states, migrate
from whoop_service.db.session import make_engine

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

USERS = 100
PER_MINUTE = 300  # low enough that ~530 requests must wait across several windows
BUDGET = int(PER_MINUTE * 0.9)
KEY = "replica-test-key"


async def test_three_replicas_sync_100_users_within_the_budget(
    tmp_path, postgres_url, redis_url
):
    redis_db = redis_url.rsplit("/", 1)[0] + "/7"
    redis = Redis.from_url(redis_db)
    await redis.flushdb()
    await redis.aclose()
    secret = "replica-client-secret"
    whoop = App(
        "sandbox.whoop:create_app",
        {
            "SANDBOX_WHOOP_CLIENT_ID": "replica-client",
            "SANDBOX_WHOOP_CLIENT_SECRET": secret,
            "SANDBOX_WHOOP_RATE_LIMIT_PER_MINUTE": str(PER_MINUTE),
            "SANDBOX_WHOOP_HISTORY_DAYS": "10",
        },
        tmp_path,
        tmp_path / "whoop.log",
    )
    env = {
        "ENVIRONMENT": "development",
        "DATABASE_URL": postgres_url,
        "DB_AUTO_MIGRATE": "false",
        "REDIS_URL": redis_db,
        "INTERNAL_API_KEYS": KEY,
        "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "WHOOP_CLIENT_ID": "replica-client",
        "WHOOP_CLIENT_SECRET": secret,
        "WHOOP_API_BASE_URL": f"{whoop.url}/developer",
        "WHOOP_OAUTH_BASE_URL": f"{whoop.url}/oauth/oauth2",
        "WHOOP_RATE_LIMIT_PER_MINUTE": str(PER_MINUTE),
        "SCHEDULER_ENABLED": "false",
        "JOB_LEASE_S": "90",  # longer than any wait for a rate window (60 s)
        "LOG_LEVEL": "warning",
        "VAR_DIR": str(tmp_path / "var"),
    }
    migrated = await migrate(env, tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    replicas = [
        App(
            "whoop_service.main:create_app", env, tmp_path, tmp_path / f"replica{i}.log"
        )
        for i in range(3)
    ]
    engine = make_engine(postgres_url)
    try:
        whoop.wait_ready("/docs")
        for r in replicas:
            r.wait_ready("/health/ready")
        async with httpx2.AsyncClient(timeout=30) as client:
            sem = asyncio.Semaphore(10)

            async def one(i: int) -> None:
                async with sem:
                    await connect_user(
                        client, replicas[i % 3].url, f"user-{i:03d}", KEY
                    )

            syncs_started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
            await asyncio.gather(*(one(i) for i in range(USERS)))
            # Kill a replica once the work is under way (some done, some still queued).
            deadline = time.monotonic() + 120
            while (await job_states(engine)).get(
                "done", 0
            ) < 10 and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            replicas[2].kill()
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                states = await job_states(engine)
                if states == {"done": USERS}:
                    break
                await asyncio.sleep(1)
            assert states == {"done": USERS}, states
            stats = (await client.get(f"{whoop.url}/sandbox/stats")).json()
            async with engine.connect() as conn:
                users = (
                    await conn.execute(
                        text("SELECT user_id, whoop_user_id FROM whoop.connections")
                    )
                ).all()
                taken_over = (
                    await conn.execute(
                        text("SELECT count(*) FROM whoop.jobs WHERE attempts > 1")
                    )
                ).scalar_one()
                synced = (
                    await conn.execute(
                        text(
                            "SELECT count(*) FROM whoop.sync_state WHERE status = 'success'"
                        )
                    )
                ).scalar_one()
                stored: dict[tuple[str, str], set[str]] = {}
                for kind, table, key in (
                    ("cycle", "cycles", "id"),
                    ("sleep", "sleeps", "id"),
                    ("workout", "workouts", "id"),
                    ("recovery", "recoveries", "cycle_id"),
                ):
                    rows = await conn.execute(
                        text(f"SELECT user_id, {key} FROM whoop.{table}")
                    )
                    for user_id, record_id in rows.all():
                        stored.setdefault((user_id, kind), set()).add(str(record_id))
            # The emulator lives on real time, so a member may start a new cycle while the test
            # runs: every record that appeared before the syncs started must be stored, and
            # nothing WHOOP does not hold. Keys make duplicates impossible; the killed replica
            # lost nothing.
            for user_id, whoop_user in users[:: max(1, USERS // 20)]:
                truth = {
                    kind: (
                        await client.get(
                            f"{whoop.url}/sandbox/users/{whoop_user}/records/{kind}"
                        )
                    ).json()
                    for kind in ("cycle", "sleep", "workout", "recovery")
                }
                # When each record appeared at WHOOP: a cycle once its opening sleep ended (its
                # created_at, not its start), a sleep or workout once it ended, a recovery with
                # its sleep.
                sleep_end = {x["id"]: x["end"] for x in truth["sleep"]}
                for kind, records in truth.items():
                    key = "cycle_id" if kind == "recovery" else "id"
                    appeared = {
                        str(r[key]): (
                            r["created_at"]
                            if kind == "cycle"
                            else sleep_end.get(r["sleep_id"], "9999")
                            if kind == "recovery"
                            else r["end"]
                        )
                        for r in records
                    }
                    have = stored.get((user_id, kind), set())
                    before = {i for i, at in appeared.items() if at < syncs_started}
                    assert before <= have, (user_id, kind, sorted(before - have))
                    assert have <= set(appeared), (
                        user_id,
                        kind,
                        sorted(have - set(appeared)),
                    )
    finally:
        await engine.dispose()
        for r in replicas:
            r.stop()
        whoop.stop()
    assert len(users) == USERS
    assert synced == USERS * 4
    assert taken_over >= 1, (
        "the killed replica's running jobs were claimed again and finished"
    )
    assert stats["rate_limited"] == 0, stats
    assert stats["peak_requests_per_minute"] <= BUDGET, stats
    assert stats["admitted"] >= USERS * 5, "a profile and four collections per user"
