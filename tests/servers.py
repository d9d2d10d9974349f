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
import signal
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


class PostgresServer:
    """A throwaway PostgreSQL server a test may stop and start again, on the same port and data."""

    def __init__(
        self, pg_ctl: str, workdir: Path, port: int, run_as: list[str]
    ) -> None:
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
        self.port = port
        self._pg_ctl = pg_ctl
        self._workdir = workdir
        self._data = workdir / "data"
        self._run_as = run_as

    def start(self) -> None:
        """Start the server and wait until it accepts connections (crash recovery included)."""
        opts = (
            f"-p {self.port} -k {self._workdir} -c listen_addresses=127.0.0.1"
            " -c fsync=off"
        )
        subprocess.run(
            [
                *self._run_as,
                self._pg_ctl,
                "-D",
                str(self._data),
                "-o",
                opts,
                "-w",
                "-l",
                str(self._workdir / "log"),
                "start",
            ],
            check=True,
            capture_output=True,
        )

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server; `immediate` drops every connection at once, as a crash would."""
        subprocess.run(
            [*self._run_as, self._pg_ctl, "-D", str(self._data), "-m", mode, "stop"],
            check=True,
            capture_output=True,
        )

    def restart(self, mode: str = "immediate") -> None:
        self.stop(mode)
        self.start()


@contextlib.contextmanager
def restartable_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server in a temporary folder, on a free port, removed afterwards."""
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
    subprocess.run(
        [
            *run_as,
            initdb,
            "-D",
            str(workdir / "data"),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
        ],
        check=True,
        capture_output=True,
    )
    server = PostgresServer(pg_ctl, workdir, free_port(), run_as)
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            server.stop()  # already stopped by the test: nothing to do
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """A PostgreSQL server in a temporary folder, on a free port; yields its asyncpg URL."""
    with restartable_postgres() as server:
        yield server.url


def _asyncpg_dsn(url: str) -> str:
    return (
        make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    )


async def _admin(url: str, sql: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

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


class RedisServer:
    """A throwaway Redis server a test may stop, start again (empty, as after a crash without
    persistence) on the same port, or pause (it then holds connections and answers nothing)."""

    def __init__(self, binary: str, port: int) -> None:
        self.url = f"redis://127.0.0.1:{port}/0"
        self.port = port
        self._binary = binary
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        if self._proc is not None and self._proc.poll() is None:
            raise RuntimeError(f"{self.url} is still running")
        self._proc = subprocess.Popen(
            [
                *(self._binary, "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        """Stop the server (its data is gone); a no-op when it is not running."""
        if self._proc is not None and self._proc.poll() is None:
            self.resume()
            self._proc.terminate()
            self._proc.wait(timeout=10)

    def pause(self) -> None:
        """Freeze the process: connections stay open and every call runs into its timeout."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGCONT)


@contextlib.contextmanager
def restartable_redis() -> Iterator[RedisServer]:
    """A Redis server on a free port that keeps nothing on disk, stopped afterwards."""
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable(
            "Redis is not available: install redis-server (TEST_REDIS_URL serves the"
            " tests that need no server of their own)"
        )
    assert binary
    server = RedisServer(binary, free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def throwaway_redis() -> Iterator[str]:
    """A Redis server on a free port that keeps nothing on disk; yields its URL."""
    with restartable_redis() as server:
        yield server.url
