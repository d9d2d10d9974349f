"""Benchmark 3: WHOOP requests per user per day, and how many users one WHOOP app can serve.

Not a model: the real WHOOP service (jobs, webhooks, scheduler, sync engine, on SQLite) runs
against the WHOOP emulator over ASGI on a virtual clock. Every 5 virtual minutes the emulator
sends the webhooks that fell due (records created, then scored 45 min (sleep) or 20 min (workout)
later, as its data plan says), the scheduler ticks, and the worker runs what is due. After the
first sync and a warm-up, the emulator counts every data-API request for `days` days.

The seed design is the same code with webhooks off and every `SYNC_SCHEDULE` slot syncing every
type for every user: polling all four types four times a day. Reads are not simulated: what a
user's own reads cost depends on how often they open the app, and is stated beside the table.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections import Counter
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2

from sandbox.whoop import WhoopSandboxSettings
from sandbox.whoop import create_app as create_whoop
from tests.clock import MutableClock
from tests.conftest import running
from tests.whoop_service.harness import (
    API_KEY,
    CLIENT_ID,
    CLIENT_SECRET,
    LateTransport,
    service_settings,
)
from whoop_service.main import create_app
from whoop_service.settings import WhoopSettings

STEP = timedelta(minutes=5)
DAILY_LIMIT, HEADROOM = 10_000, 0.9
TARGET_PER_USER_DAY = 6.0


@dataclass(frozen=True)
class Design:
    name: str
    webhooks: bool
    # Every slot syncs every type for every user, whatever webhooks said (the seed design).
    poll_everything: bool = False


CURRENT = Design("this design (webhooks + reconciliation)", webhooks=True)
SEED = Design(
    "seed design (poll 4 types at 4 slots)", webhooks=False, poll_everything=True
)


@dataclass
class SimResult:
    design: Design
    users: int
    days: int
    requests: int
    by_type: Counter[str]
    token_refreshes: int
    webhooks: int
    wall_s: float
    per_day: list[int] = field(default_factory=list)

    @property
    def per_user_day(self) -> float:
        return self.requests / (self.users * self.days)

    @property
    def max_users(self) -> int:
        return int(DAILY_LIMIT * HEADROOM / self.per_user_day)


def _kind(path: str) -> str:
    for kind in ("recovery", "sleep", "workout", "cycle"):
        if kind in path:
            return kind
    return "other"


async def _connect(client: httpx2.AsyncClient, whoop: Any, user_id: str) -> None:
    started = await client.post(f"/internal/auth/connect/{user_id}")
    started.raise_for_status()
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=whoop)) as b:
        redirect = await b.get(started.json()["authorization_url"])
    query = parse_qs(urlsplit(redirect.headers["location"]).query)
    done = await client.post(
        "/internal/auth/callback",
        json={"code": query["code"][0], "state": query["state"][0]},
    )
    done.raise_for_status()
    linked = await client.post(
        "/internal/auth/complete",
        json={"completion": done.json()["completion"], "user_id": user_id},
    )
    linked.raise_for_status()


async def simulate(
    design: Design, *, users: int = 40, days: int = 30, warmup_days: int = 2
) -> SimResult:
    """Run `users` members for `warmup_days` + `days` virtual days; count the last `days`."""
    clock = MutableClock(datetime(2026, 10, 1, 6, 0, tzinfo=UTC))
    hooks = LateTransport()
    whoop_app = create_whoop(
        WhoopSandboxSettings(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            webhook_url="http://whoop-service/webhooks/whoop"
            if design.webhooks
            else None,
            rate_limit_per_minute=10**9,
            rate_limit_per_day=10**9,
        ),
        clock=clock,
        webhook_transport=hooks,
    )
    sandbox = whoop_app.state.sandbox
    with tempfile.TemporaryDirectory(prefix="bench-budget-") as tmp:
        settings = service_settings(
            f"sqlite+aiosqlite:///{Path(tmp) / 'whoop.db'}",
            Path(tmp),
            worker_enabled=False,
            log_level="warning",  # a month of jobs would print ~100,000 lines
            # The production default (the test harness fetches at once).
            webhook_settle_s=WhoopSettings.model_fields["webhook_settle_s"].default,
            whoop_rate_limit_per_minute=10**9,
            whoop_rate_limit_per_day=10**9,
        )
        app = create_app(
            settings, whoop_transport=httpx2.ASGITransport(app=whoop_app), clock=clock
        )
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(running(app))
            hooks.app = app
            client = await stack.enter_async_context(
                httpx2.AsyncClient(
                    transport=httpx2.ASGITransport(app=app),
                    base_url="http://whoop-service",
                    headers={"X-API-Key": API_KEY},
                )
            )
            for i in range(users):
                await _connect(client, whoop_app, f"sim-user-{i:04d}")
            worker, scheduler = app.state.worker, app.state.scheduler
            if design.poll_everything:
                scheduler.poll_everything = True
            await worker.run_once()  # the first syncs: a backfill, not the steady state

            async def step() -> None:
                clock.advance(seconds=STEP.total_seconds())
                if design.webhooks:
                    await sandbox.emit_due_webhooks()
                await scheduler.tick()
                await worker.run_once()

            for _ in range(int(timedelta(days=warmup_days) / STEP)):
                await step()
            sandbox.reset_counters()
            started = time.perf_counter()
            by_type: Counter[str] = Counter()
            per_day, refreshes, webhooks = [], 0, 0
            for _ in range(days):
                for _ in range(int(timedelta(days=1) / STEP)):
                    await step()
                data = [
                    r for r in sandbox.request_log if r.path.startswith("/developer")
                ]
                by_type.update(_kind(r.path) for r in data)
                per_day.append(len(data))
                refreshes += sandbox.token_requests["refresh_token"]
                webhooks += len(sandbox.webhook_log)
                sandbox.reset_counters()
            return SimResult(
                design=design,
                users=users,
                days=days,
                requests=sum(per_day),
                by_type=by_type,
                token_refreshes=refreshes,
                webhooks=webhooks,
                wall_s=time.perf_counter() - started,
                per_day=per_day,
            )


async def run(users: int = 10, days: int = 30) -> list[str]:
    """The markdown section of benchmark 3."""
    results = [await simulate(d, users=users, days=days) for d in (CURRENT, SEED)]
    lines = [
        "## 3. WHOOP budget (simulation: real service and emulator, virtual clock)",
        "",
        f"{users} users for {days} virtual days after their first sync and a 2-day warm-up;"
        " the emulator",
        "counts every data-API request. Users that fit = 10,000/day x 0.9 headroom"
        " / requests per user per day.",
        "",
        "| design | requests | per user per day | cycle | sleep | recovery | workout"
        " | webhooks received | token refreshes | users that fit | simulated in |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        per = {k: r.by_type[k] / (r.users * r.days) for k in _TYPES}
        lines.append(
            f"| {r.design.name} | {r.requests} | {r.per_user_day:.2f} | "
            + " | ".join(f"{per[k]:.2f}" for k in _TYPES)
            + f" | {r.webhooks} | {r.token_refreshes} | {r.max_users} | {r.wall_s:.0f} s |"
        )
    ours = results[0]
    met = "met" if ours.per_user_day <= TARGET_PER_USER_DAY else "NOT met"
    lines += [
        "",
        f"- Target <= {TARGET_PER_USER_DAY:g} requests per user per day (so >= 1,500 users):"
        f" {met} ({ours.per_user_day:.2f}, {ours.max_users} users).",
        f"- Requests per day over the {days} days (this design):"
        f" min {min(ours.per_day)}, max {max(ours.per_day)}.",
        "",
    ]
    return lines


_TYPES = ("cycle", "sleep", "recovery", "workout")


if __name__ == "__main__":
    import sys

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    d = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    sys.stdout.write("\n".join(asyncio.run(run(users=n, days=d))) + "\n")
