"""Benchmark 2: database-first reads of `GET /internal/data/daily` over a year of 10,000 users.

The WHOOP service runs as one uvicorn process, as in production (JSON logs at info, no worker, no
scheduler), on the seeded `bench_reads` database (`bench.read_seed`). WHOOP is a stub in this
process that counts every request it gets, so "no WHOOP call" is measured, not assumed.
32 connections ask for random users and random dates of the seeded year: mostly one day (the
gateway's usual call), some 7-day ranges. Warm-up answers are checked (served from the database,
a full day each) before the timed run. The service's CPU time per answer is read from /proc: on a
machine shared with PostgreSQL and the load generator it moves less than latency does.

`python -m bench.read_path` prints the section on its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench import read_seed
from bench.read_seed import DataSet
from tests.processes import App
from tests.servers import free_port

TARGET_P99_MS = 25.0
CONNECTIONS = 32
WARMUP_S = 3.0
SECONDS = 10.0
SHORT_S = 4.0  # the sequential run and the reference
RANGE_SHARE = 0.2  # of requests asking for 7 days instead of one
API_KEY = "bench-read-path-key"
KINDS = ("1 day", "7 days")

NextRequest = Callable[[], tuple[str, str]]  # → (kind, path and query)


class WhoopStub:
    """Stands in for WHOOP (API and OAuth): answers 503 to anything, and counts it."""

    def __init__(self) -> None:
        self.calls = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        async def anything(_: web.Request) -> web.Response:
            self.calls += 1
            return web.json_response({"error": "bench stub"}, status=503)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", anything)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def daily_requests(data: DataSet, seed: int) -> NextRequest:
    """Random users and dates within the seeded year, reproducibly; some 7-day ranges."""
    rng = random.Random(seed)
    span = (data.last_date - data.first_date).days + 1

    def next_request() -> tuple[str, str]:
        user = data.users[int(rng.random() * len(data.users))]
        days = 7 if rng.random() < RANGE_SHARE else 1
        first = data.first_date + timedelta(days=int(rng.random() * (span - days + 1)))
        last = first + timedelta(days=days - 1)
        path = f"/internal/data/daily/{user}?start_date={first}&end_date={last}"
        return KINDS[days > 1], path

    return next_request


def _live() -> tuple[str, str]:
    return "live", "/health/live"


def _service(data: DataSet, whoop_url: str, workdir: Path) -> App:
    return App(
        "whoop_service.main:create_app",
        {
            "ENVIRONMENT": "production",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "info",
            "DATABASE_URL": data.database_url,
            "DB_AUTO_MIGRATE": "false",
            "INTERNAL_API_KEYS": API_KEY,
            "TOKEN_ENCRYPTION_KEYS": read_seed.TOKEN_KEY,
            "WHOOP_CLIENT_ID": "bench-client",
            "WHOOP_CLIENT_SECRET": "bench-secret",
            "WHOOP_API_BASE_URL": f"{whoop_url}/developer",
            "WHOOP_OAUTH_BASE_URL": f"{whoop_url}/oauth/oauth2",
            "WORKER_ENABLED": "false",
            "SCHEDULER_ENABLED": "false",
            "VAR_DIR": str(workdir / "var"),
        },
        workdir,
        workdir / "whoop_service.log",
    )


def _cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system) the process has used; None off Linux."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _check(body: dict[str, Any]) -> bool:
    """A database answer with a cycle, its recovery and a sleep on every day asked for."""
    return (
        body["data_source"] == "database"
        and body["connection"] == "connected"
        and not body["stale"]
        and all(d["cycle"] and d["recovery"] and d["sleeps"] for d in body["days"])
    )


@dataclass
class Sample:
    """What one load run saw, by kind of request."""

    seconds: float
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    cpu_s: float | None = None
    checked: int = 0
    wrong: int = 0


async def _load(
    service: App,
    next_request: NextRequest,
    connections: int,
    seconds: float,
    *,
    check: bool = False,
) -> Sample:
    """Closed loop: each connection sends its next request when its last one is answered."""
    sample = Sample(seconds)
    stop_at = time.monotonic() + seconds
    headers = {"X-API-Key": API_KEY}
    cpu_before = _cpu_s(service.proc.pid)
    conn = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=conn) as http:

        async def worker() -> None:
            while time.monotonic() < stop_at:
                kind, path = next_request()
                started = time.perf_counter()
                try:
                    async with http.get(service.url + path, headers=headers) as r:
                        body = await r.read()
                        ok = r.status == 200
                except aiohttp.ClientError:
                    ok = False
                if not ok:
                    sample.errors[kind] = sample.errors.get(kind, 0) + 1
                    continue
                elapsed_ms = (time.perf_counter() - started) * 1000
                sample.latencies_ms.setdefault(kind, []).append(elapsed_ms)
                # Warm-up only: parsing in the timed run would slow its client down.
                if check:
                    sample.checked += 1
                    sample.wrong += not _check(json.loads(body))

        await asyncio.gather(*(worker() for _ in range(connections)))
    cpu_after = _cpu_s(service.proc.pid)
    if cpu_before is not None and cpu_after is not None:
        sample.cpu_s = cpu_after - cpu_before
    return sample


@dataclass
class Row:
    load: str
    connections: int
    requests: int
    errors: int
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float | None  # the service's CPU time per answer


def _row(label: str, connections: int, sample: Sample, kinds: tuple[str, ...]) -> Row:
    latencies = [x for k in kinds for x in sample.latencies_ms.get(k, [])]
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    whole = set(sample.latencies_ms) <= set(kinds)
    cpu = sample.cpu_s if whole and latencies else None  # not split by kind
    return Row(
        label,
        connections,
        len(latencies),
        sum(sample.errors.get(k, 0) for k in kinds),
        len(latencies) / sample.seconds,
        q[49],
        q[98],
        None if cpu is None else cpu * 1000 / len(latencies),
    )


async def _forced_refresh(service: App, user: str, day: date) -> bool:
    """The positive control: a read told to refresh must reach the stub (else 0 proves nothing).

    It leaves that user's sync state failed; `read_seed.prepare` resets it on the next run.
    """
    headers = {"X-API-Key": API_KEY, "X-Request-Deadline-Ms": "3000"}
    path = f"/internal/data/daily/{user}?start_date={day}&force_refresh=true"
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(service.url + path, headers=headers) as r,
        ):
            await r.read()
            return r.status == 200
    except aiohttp.ClientError:
        return False


@dataclass
class Measured:
    rows: list[Row]
    whoop_calls: int
    control_reached: bool
    checked: int
    wrong: int
    load_avg: float


async def measure(data: DataSet) -> Measured:
    """Start the stub and the service, warm up (checking answers), then time the runs."""
    workdir = Path(os.environ.get("BENCH_WORKDIR", "/tmp/bench-read-path"))
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    whoop = WhoopStub()
    await whoop.start()
    service = _service(data, whoop.url, workdir)
    try:
        await asyncio.to_thread(service.wait_ready, "/health/ready")
        load_avg = os.getloadavg()[0]
        requests = daily_requests(data, seed=1)
        warm = await _load(service, requests, CONNECTIONS, WARMUP_S, check=True)
        timed = await _load(service, requests, CONNECTIONS, SECONDS)
        one = await _load(service, requests, 1, SHORT_S)
        live = await _load(service, _live, CONNECTIONS, SHORT_S)
        calls = whoop.calls
        reached = await _forced_refresh(service, data.users[0], data.last_date)
        reached = reached and whoop.calls > calls
    finally:
        await asyncio.to_thread(service.stop)
        await whoop.stop()
    mix = f"mix ({1 - RANGE_SHARE:.0%} 1 day, {RANGE_SHARE:.0%} 7 days)"
    return Measured(
        rows=[
            _row(mix, CONNECTIONS, timed, KINDS),
            *(_row(f"of which {k}", CONNECTIONS, timed, (k,)) for k in KINDS),
            _row(mix, 1, one, KINDS),
            _row("reference: GET /health/live", CONNECTIONS, live, ("live",)),
        ],
        whoop_calls=calls,
        control_reached=reached,
        checked=warm.checked,
        wrong=warm.wrong + sum(warm.errors.values()),
        load_avg=load_avg,
    )


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


async def run() -> list[str]:
    """The markdown lines of section 2."""
    data = await read_seed.prepare()
    m = await measure(data)
    lines = [
        "## 2. Database-first read",
        "",
        f"`GET /internal/data/daily` on {read_seed.USERS:,} users x {read_seed.DAYS} days in"
        f" PostgreSQL {data.server_version} ({data.rows:,} records), one whoop_service"
        " process, JSON logs at info; random users and dates; closed loop, warm-up"
        f" {WARMUP_S:.0f} s then {SECONDS:.0f} s timed ({SHORT_S:.0f} s for the last two rows).",
        "",
        "| requests | connections | answered | errors | req/s | p50 ms | p99 ms"
        " | service CPU ms/answer |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in m.rows:
        lines.append(
            f"| {r.load} | {r.connections} | {r.requests} | {r.errors} | {r.rps:.0f} |"
            f" {r.p50_ms:.1f} | {r.p99_ms:.1f} | {_cell(r.cpu_ms)} |"
        )
    mix, live = m.rows[0], m.rows[-1]
    met = (
        mix.p99_ms <= TARGET_P99_MS
        and m.whoop_calls == 0
        and m.control_reached
        and mix.errors == 0
    )
    # Closed loop: each connection waits for its answer, so latency ~ connections / throughput.
    needed_rps = CONNECTIONS / (TARGET_P99_MS / 1000)
    seeding = (
        f"seeded by this run in {data.seed_s:.0f} s"
        if data.seeded
        else f"reused (seeded earlier in {data.seed_s:.0f} s)"
    )
    lines += [
        "",
        f"- Target: p99 <= {TARGET_P99_MS:.0f} ms at {CONNECTIONS} connections and no WHOOP"
        f" call. {'Met' if met else 'Not met'}: p99 {mix.p99_ms:.1f} ms, p50"
        f" {mix.p50_ms:.1f} ms, {mix.errors} errors, {m.whoop_calls} WHOOP calls.",
        f"- WHOOP calls: {m.whoop_calls}, counted by the WHOOP stub from service start"
        " through every row above, warm-up included. A read with `force_refresh=true` sent"
        f" afterwards {'did' if m.control_reached else 'did NOT'} reach the stub, so the"
        f" count {'can' if m.control_reached else 'cannot'} be trusted.",
        f"- With {CONNECTIONS} connections each waiting for its answer, p99 <="
        f" {TARGET_P99_MS:.0f} ms takes at least {needed_rps:,.0f} answers/s from the"
        f" process, about {1000 / needed_rps:.2f} ms of CPU per answer on one core; the read"
        f" used {_cell(mix.cpu_ms)} ms, a request that touches no database"
        f" {_cell(live.cpu_ms)} ms.",
        f"- Warm-up answers checked: {m.checked}, {m.wrong} not a full day from the"
        " database.",
        f"- Data: {data.first_date} to {data.last_date}, {seeding}; every sync marked"
        " just done before the run.",
        f"- Load average (1 min) as the warm-up began: {m.load_avg:.2f} on"
        f" {os.cpu_count()} cores, which the service, PostgreSQL and the load generator"
        " share.",
        "",
    ]
    return lines


def main() -> int:
    from bench.__main__ import _machine

    lines = asyncio.run(run())
    sys.stdout.write(f"On {_machine()}.\n\n" + "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
