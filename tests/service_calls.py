"""Driving a running WHOOP service the way its callers do: the `migrate` command, a member's
connection (internal connect, consent at the WHOOP emulator, callback) and the job table's state.
Shared by the multi-process tests and the benchmarks."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx2
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


async def migrate(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -m whoop_service migrate` with `env` on top of this process's environment."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "whoop_service", "migrate"],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def connect_user(
    client: httpx2.AsyncClient, service: str, user_id: str, api_key: str
) -> None:
    """The internal connect flow, the member's consent at the WHOOP emulator, the callback and
    the completion by the same user."""
    headers = {"X-API-Key": api_key}
    started = await client.post(
        f"{service}/internal/auth/connect/{user_id}", headers=headers
    )
    assert started.status_code == 200, started.text
    at_whoop = await client.get(started.json()["authorization_url"])
    assert at_whoop.status_code == 302, at_whoop.text
    query = parse_qs(urlsplit(at_whoop.headers["location"]).query)
    done = await client.post(
        f"{service}/internal/auth/callback",
        json={"code": query["code"][0], "state": query["state"][0]},
        headers=headers,
    )
    assert done.status_code == 200, done.text
    linked = await client.post(
        f"{service}/internal/auth/complete",
        json={"completion": done.json()["completion"], "user_id": user_id},
        headers=headers,
    )
    assert linked.status_code == 200, linked.text


async def job_states(engine: AsyncEngine) -> dict[str, int]:
    """How many jobs are in each status."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT status, count(*) FROM whoop.jobs GROUP BY status")
        )
        return {status: n for status, n in rows.all()}
