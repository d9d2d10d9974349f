"""Benchmark 1: the gateway's own cost per request, next to a minimal aiohttp aggregator.

Emulated Sahha answers in 40 ms (its two calls run at once) and the WHOOP service in 10 ms, so a
sequential answer cannot take less than 50 ms: overhead = latency - 50 ms. Both aggregators run
as one process each, loaded by the same generator in the same run.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import aiohttp
import jwt

from bench.upstreams import SAHHA_LATENCY_S, WHOOP_LATENCY_S
from tests.processes import App
from tests.servers import free_port

FLOOR_MS = (SAHHA_LATENCY_S + WHOOP_LATENCY_S) * 1000
SECRET = "bench-supabase-secret-at-least-32-bytes-long!!"
USERS = [f"bench-user-{i:04d}" for i in range(500)]
DAYS = [(date(2025, 1, 1) + timedelta(days=i)).isoformat() for i in range(365)]


@dataclass
class Row:
    target: str
    connections: int
    requests: int
    errors: int
    rps: float
    p50_ms: float
    p99_ms: float

    @property
    def overhead_p50_ms(self) -> float:
        return self.p50_ms - FLOOR_MS

    @property
    def overhead_p99_ms(self) -> float:
        return self.p99_ms - FLOOR_MS


def _upstream(role: str, *args: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.upstreams", role, str(port), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc, f"http://127.0.0.1:{port}"


async def _wait(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            try:
                async with http.get(url) as r:
                    if r.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise TimeoutError(url)


async def _load(
    url_for, headers_for, connections: int, seconds: float
) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    stop_at = time.monotonic() + seconds
    counter = iter(range(10**9))
    conn = aiohttp.TCPConnector(limit=connections, force_close=False)
    async with aiohttp.ClientSession(connector=conn) as http:

        async def worker() -> None:
            nonlocal errors
            while time.monotonic() < stop_at:
                i = next(counter)
                started = time.perf_counter()
                try:
                    async with http.get(url_for(i), headers=headers_for(i)) as r:
                        await r.read()
                        ok = r.status == 200
                except aiohttp.ClientError:
                    ok = False
                if ok:
                    latencies.append((time.perf_counter() - started) * 1000)
                else:
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(connections)))
    return latencies, errors


def _row(
    target: str, connections: int, latencies: list[float], errors: int, seconds: float
) -> Row:
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return Row(
        target,
        connections,
        len(latencies),
        errors,
        len(latencies) / seconds,
        q[49],
        q[98],
    )


async def run(seconds: float = 8.0, warmup_s: float = 2.0) -> list[Row]:
    sahha, sahha_url = _upstream("sahha")
    whoop, whoop_url = _upstream("whoop_service")
    reference, ref_url = _upstream("reference", sahha_url, whoop_url)
    workdir = Path(os.environ.get("BENCH_WORKDIR", "/tmp/bench-gateway"))
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    gateway = App(
        "gateway.main:create_app",
        {
            "ENVIRONMENT": "development",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "info",
            "SAHHA_API_BASE_URL": sahha_url,
            "SAHHA_CLIENT_ID": "bench",
            "SAHHA_CLIENT_SECRET": "bench",
            "WHOOP_SERVICE_URL": whoop_url,
            "WHOOP_SERVICE_API_KEY": "bench-key",
            "SUPABASE_JWT_SECRET": SECRET,
            "VAR_DIR": str(workdir / "var"),
        },
        workdir,
        Path(os.devnull),
    )
    tokens = {
        u: jwt.encode(
            {
                "sub": u,
                "aud": "authenticated",
                "role": "authenticated",
                "exp": int(time.time()) + 3600,
            },
            SECRET,
            algorithm="HS256",
        )
        for u in USERS
    }
    targets = {
        "gateway": (
            lambda i: (
                f"{gateway.url}/api/v1/health/{USERS[i % 500]}?date={DAYS[(i // 500) % 365]}"
            ),
            lambda i: {"Authorization": f"Bearer {tokens[USERS[i % 500]]}"},
        ),
        "aiohttp reference": (
            lambda i: (
                f"{ref_url}/api/v1/health/{USERS[i % 500]}?date={DAYS[(i // 500) % 365]}"
            ),
            lambda i: {},
        ),
    }
    rows: list[Row] = []
    try:
        for url in (
            sahha_url + "/api/v1/profile/score/x?startDateTime=2025-01-01",
            whoop_url + "/x",
        ):
            await _wait(url)
        await _wait(ref_url + "/x")
        gateway.wait_ready("/health/ready")
        for connections in (1, 16, 64):
            for name, (url_for, headers_for) in targets.items():
                await _load(url_for, headers_for, connections, warmup_s)
                latencies, errors = await _load(
                    url_for, headers_for, connections, seconds
                )
                rows.append(_row(name, connections, latencies, errors, seconds))
    finally:
        gateway.stop()
        for proc in (sahha, whoop, reference):
            proc.terminate()
            proc.wait(timeout=10)
    return rows


async def section() -> list[str]:
    """The markdown section of benchmark 1."""
    rows = await run()
    lines = [
        "## 1. Gateway overhead (Sahha 40 ms, WHOOP service 10 ms: a 50 ms floor, sequential)",
        "",
        "| target | connections | requests | errors | req/s | p50 ms | p99 ms"
        " | overhead p50 ms | overhead p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.target} | {r.connections} | {r.requests} | {r.errors} | {r.rps:.0f} | "
            f"{r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.overhead_p50_ms:.1f} | {r.overhead_p99_ms:.1f} |"
        )
    by = {(r.target, r.connections): r for r in rows}
    lines.append("")
    for c in (1, 16, 64):
        g, ref = by[("gateway", c)], by[("aiohttp reference", c)]
        lines.append(
            f"- {c} connections: gateway throughput = {g.rps / ref.rps:.0%} of the reference."
        )
    lines += [
        "",
        "Targets: overhead p50 <= 2 ms and p99 <= 10 ms at 16 connections; throughput >= 60 % of",
        "the reference. The gateway verifies a JWT, validates, logs a JSON line and merges",
        "per request; the reference does none of that.",
        "",
    ]
    return lines
