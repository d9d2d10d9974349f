"""Fixtures every test folder shares: the network guard, databases, Redis, app lifespans."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import stamina
from fastapi import FastAPI

from tests import servers

_real_getaddrinfo = socket.getaddrinfo
_real_connect = socket.socket.connect
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def _is_local(host: Any) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode()
    host = str(host).strip("[]")
    if host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if not _is_local(host):
        raise OSError(f"network guard: tests may not resolve {host!r}")
    return _real_getaddrinfo(host, *args, **kwargs)


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
        raise OSError(f"network guard: tests may not connect to {address[0]!r}")
    return _real_connect(self, address)


@pytest.fixture(autouse=True, scope="session")
def network_guard() -> Iterator[None]:
    """Fail any test that reaches beyond this machine (the real WHOOP or Sahha above all)."""
    socket.getaddrinfo = _guarded_getaddrinfo  # type: ignore[assignment]
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    yield
    socket.getaddrinfo = _real_getaddrinfo
    socket.socket.connect = _real_connect  # type: ignore[method-assign]


@pytest.fixture(autouse=True, scope="session")
def instant_retries() -> Iterator[None]:
    """Retries still happen (capped at 4 attempts) but without their backoff sleeps."""
    with stamina.set_testing(True, attempts=4, cap=True):
        yield


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """URL of a PostgreSQL server the session may create databases on."""
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        yield given
        return
    with servers.throwaway_postgres() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh empty PostgreSQL database for one test."""
    with servers.fresh_database(postgres_server_url) as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a Redis server (TEST_REDIS_URL, else a throwaway one)."""
    given = os.environ.get("TEST_REDIS_URL")
    if given:
        yield given
        return
    with servers.throwaway_redis() as url:
        yield url


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Any]:
    """A client of the test Redis (reachable, or the test is skipped: a failure under CI)."""
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    try:
        await client.ping()
    except Exception as exc:  # the server may be gone
        servers.unavailable(
            f"Redis at {redis_url} is not reachable ({type(exc).__name__})"
        )
    yield client
    await client.aclose()


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[FastAPI]:
    """Run `app`'s lifespan around a block (ASGITransport does not run it)."""
    async with app.router.lifespan_context(app):
        yield app
