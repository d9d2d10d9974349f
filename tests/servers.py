"""PostgreSQL and Redis for tests, as CONTRACT.md §1 says.

`TEST_DATABASE_URL` / `TEST_REDIS_URL` when set; else a throwaway server from local binaries;
else the test is skipped with the reason, which is a failure when `CI=true`.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url


def unavailable(reason: str) -> None:
    """Skip, or fail under CI where every test must run."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """A PostgreSQL server in a temporary folder, on a free port; yields its asyncpg URL."""
    initdb, pg_ctl = _pg_binary("initdb"), _pg_binary("pg_ctl")
    if not (initdb and pg_ctl):
        unavailable(
            "PostgreSQL is not available: set TEST_DATABASE_URL or install PostgreSQL"
        )
    assert initdb
    assert pg_ctl
    run_as: list[str] = []
    workdir = Path(tempfile.mkdtemp(prefix="pgtest-"))
    if os.geteuid() == 0:  # initdb refuses to run as root
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            unavailable(
                "running as root and there is no 'postgres' user for a throwaway server"
            )
        os.chown(workdir, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    data, port = workdir / "data", free_port()
    subprocess.run(
        [
            *run_as,
            initdb,
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
        ],
        check=True,
        capture_output=True,
    )
    opts = f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [
            *run_as,
            pg_ctl,
            "-D",
            str(data),
            "-o",
            opts,
            "-w",
            "-l",
            str(workdir / "log"),
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*run_as, pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(workdir, ignore_errors=True)


def _asyncpg_dsn(url: str) -> str:
    return (
        make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    )


async def _admin(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_asyncpg_dsn(url), timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server of `server_url`, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        unavailable(
            f"PostgreSQL at TEST_DATABASE_URL is not reachable ({type(exc).__name__})"
        )
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with contextlib.suppress(Exception):
            asyncio.run(
                _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            )


@contextlib.contextmanager
def throwaway_redis() -> Iterator[str]:
    """A Redis server on a free port that keeps nothing on disk; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable(
            "Redis is not available: set TEST_REDIS_URL or install redis-server"
        )
    assert binary
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", port), 0.2),
            ):
                break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
