"""The WHOOP service wired to the WHOOP emulator over ASGI, on SQLite or PostgreSQL."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx2
from cryptography.fernet import Fernet
from fastapi import FastAPI

from sandbox.whoop import WhoopSandbox, WhoopSandboxSettings
from sandbox.whoop import create_app as create_whoop
from tests.clock import MutableClock
from tests.conftest import running
from whoop_service.main import create_app
from whoop_service.settings import WhoopSettings

API_KEY = "test-internal-key"
WHOOP_HOST = "http://whoop.test"
CLIENT_ID, CLIENT_SECRET = "test-client", "test-client-secret"
FERNET_KEY = Fernet.generate_key().decode()


def service_settings(database_url: str, var_dir, **overrides) -> WhoopSettings:
    return WhoopSettings(
        _env_file=None,
        var_dir=var_dir,
        database_url=database_url,
        db_auto_migrate=True,
        internal_api_keys=[API_KEY],
        token_encryption_keys=[FERNET_KEY],
        whoop_client_id=CLIENT_ID,
        whoop_client_secret=CLIENT_SECRET,
        whoop_api_base_url=f"{WHOOP_HOST}/developer",
        whoop_oauth_base_url=f"{WHOOP_HOST}/oauth/oauth2",
        whoop_redirect_uri="http://127.0.0.1:8000/api/v1/whoop/callback",
        # Tests see a webhook's record at once unless they ask for batching (webhook_settle_s).
        **({"scheduler_enabled": False, "webhook_settle_s": 0} | overrides),
    )


@dataclass
class Harness:
    """One emulated WHOOP and one or more WHOOP-service apps sharing a database."""

    whoop: WhoopSandbox
    whoop_app: FastAPI
    clock: MutableClock
    database_url: str
    var_dir: object
    stack: AsyncExitStack
    apps: list[FastAPI]
    clients: list[httpx2.AsyncClient]
    service_overrides: dict[str, object]

    @property
    def app(self) -> FastAPI:
        return self.apps[0]

    @property
    def client(self) -> httpx2.AsyncClient:
        return self.clients[0]

    async def add_instance(self) -> tuple[FastAPI, httpx2.AsyncClient]:
        """Another service instance (its own engine, clients and locks) on the same database."""
        app = create_app(
            service_settings(self.database_url, self.var_dir, **self.service_overrides),
            whoop_transport=httpx2.ASGITransport(app=self.whoop_app),
            clock=self.clock,
        )
        await self.stack.enter_async_context(running(app))
        client = await self.stack.enter_async_context(
            httpx2.AsyncClient(
                transport=httpx2.ASGITransport(app=app),
                base_url="http://whoop-service",
                headers={"X-API-Key": API_KEY},
            )
        )
        self.apps.append(app)
        self.clients.append(client)
        return app, client

    async def whoop_accepts(self, token: str) -> bool:
        """Whether WHOOP (the emulator) takes `token` for a data call."""
        async with httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=self.whoop_app), base_url=WHOOP_HOST
        ) as c:
            resp = await c.get(
                "/developer/v2/user/profile/basic",
                headers={"Authorization": f"Bearer {token}"},
            )
        return resp.status_code == 200

    async def authorize(
        self, user_id: str, **browser_params: str
    ) -> dict[str, list[str]]:
        """Start a connection and play the member's browser at WHOOP; the redirect's query."""
        started = await self.client.post(f"/internal/auth/connect/{user_id}")
        assert started.status_code == 200, started.text
        url = started.json()["authorization_url"]
        if browser_params:
            url += "&" + "&".join(f"{k}={v}" for k, v in browser_params.items())
        async with httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=self.whoop_app)
        ) as b:
            redirect = await b.get(url)
        assert redirect.status_code == 302, redirect.text
        return parse_qs(urlsplit(redirect.headers["location"]).query)

    async def exchange(self, user_id: str, **browser_params: str) -> httpx2.Response:
        """Consent at WHOOP and the callback: the answer holds the pending `completion`."""
        query = await self.authorize(user_id, **browser_params)
        return await self.client.post(
            "/internal/auth/callback",
            json={"code": query["code"][0], "state": query["state"][0]},
        )

    async def connect(self, user_id: str, **browser_params: str) -> httpx2.Response:
        """The whole flow, completed by the user who started it; the completion's answer (a
        problem from the callback is answered as it is)."""
        pending = await self.exchange(user_id, **browser_params)
        if pending.status_code != 200:
            return pending
        return await self.client.post(
            "/internal/auth/complete",
            json={"completion": pending.json()["completion"], "user_id": user_id},
        )


class LateTransport(httpx2.AsyncBaseTransport):
    """An ASGI transport whose app is set later (the emulator and the service know each other)."""

    def __init__(self) -> None:
        self.app: FastAPI | None = None

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        assert self.app is not None
        return await httpx2.ASGITransport(app=self.app).handle_async_request(request)


async def make_harness(
    stack: AsyncExitStack,
    database_url: str,
    var_dir,
    service_overrides: dict[str, object] | None = None,
    **whoop_settings,
) -> Harness:
    clock = MutableClock()
    webhooks = LateTransport()
    settings = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "webhook_url": "http://whoop-service/webhooks/whoop",
    }
    whoop_app = create_whoop(
        WhoopSandboxSettings(**(settings | whoop_settings)),
        clock=clock,
        webhook_transport=webhooks,
    )
    harness = Harness(
        whoop=whoop_app.state.sandbox,
        whoop_app=whoop_app,
        clock=clock,
        database_url=database_url,
        var_dir=var_dir,
        stack=stack,
        apps=[],
        clients=[],
        service_overrides=service_overrides or {},
    )
    await harness.add_instance()
    webhooks.app = harness.app
    return harness
