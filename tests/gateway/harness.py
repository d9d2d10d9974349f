"""The whole system in one process: gateway, WHOOP service, WHOOP and Sahha emulators, over ASGI."""

from __future__ import annotations

import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx2
import jwt

from gateway.main import Transports, create_app
from gateway.settings import GatewaySettings
from sandbox.sahha import SahhaSandbox, SahhaSandboxSettings
from sandbox.sahha import create_app as create_sahha
from tests.conftest import running
from tests.fakes.transport import FaultyTransport
from tests.whoop_service.harness import API_KEY, Harness, make_harness

JWT_SECRET = "test-supabase-jwt-secret-at-least-32-bytes!!"
APP_REDIRECT = "hosapp://whoop"


def token_for(
    user_id: str, *, role: str = "authenticated", exp_in_s: int = 3600, **claims
) -> str:
    now = int(time.time())
    payload = {
        "sub": user_id,
        "aud": "authenticated",
        "role": role,
        "iat": now,
        "exp": now + exp_in_s,
        **claims,
    }
    return jwt.encode(payload, JWT_SECRET, algorithm="HS256")


@dataclass
class Stack:
    whoop: Harness
    sahha: SahhaSandbox
    sahha_faults: FaultyTransport
    service_faults: FaultyTransport
    client: httpx2.AsyncClient  # to the gateway

    async def get(self, path: str, user_id: str | None = None, **kw) -> httpx2.Response:
        headers = {"Authorization": f"Bearer {token_for(user_id)}"} if user_id else {}
        return await self.client.get(
            path, headers=headers | kw.pop("headers", {}), **kw
        )

    async def send(self, method: str, path: str, user_id: str, **kw) -> httpx2.Response:
        headers = {"Authorization": f"Bearer {token_for(user_id)}"}
        return await self.client.request(method, path, headers=headers, **kw)

    async def link_whoop(self, user_id: str, **browser: str) -> httpx2.Response:
        """The whole connect flow, completed by the app of the user who started it: the
        completion's answer (the callback's redirect when it carried no completion)."""
        back = await self.connect_whoop(user_id, **browser)
        query = parse_qs(urlsplit(back.headers.get("location", "")).query)
        if "completion" not in query:
            return back
        return await self.send(
            "POST",
            f"/api/v1/whoop/connect/{user_id}/complete",
            user_id,
            json={"completion": query["completion"][0]},
        )

    async def connect_whoop(self, user_id: str, **browser: str) -> httpx2.Response:
        """The app's connect, the member's browser at WHOOP, and WHOOP's redirect to us (the
        link is pending until `complete`: see `link_whoop`)."""
        started = await self.send("POST", f"/api/v1/whoop/connect/{user_id}", user_id)
        assert started.status_code == 200, started.text
        url = started.json()["authorization_url"]
        if browser:
            url += "&" + "&".join(f"{k}={v}" for k, v in browser.items())
        async with httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=self.whoop.whoop_app)
        ) as b:
            at_whoop = await b.get(url)
        assert at_whoop.status_code == 302
        back = urlsplit(at_whoop.headers["location"])
        assert back.path == "/api/v1/whoop/callback"
        return await self.client.get(
            back.path, params={k: v[0] for k, v in parse_qs(back.query).items()}
        )


async def make_stack(
    stack: AsyncExitStack,
    database_url: str,
    var_dir,
    service_overrides: dict[str, object] | None = None,
    **gateway_settings,
) -> Stack:
    whoop = await make_harness(stack, database_url, var_dir, service_overrides)
    sahha_app = create_sahha(SahhaSandboxSettings(), clock=whoop.clock)
    sahha_faults = FaultyTransport(httpx2.ASGITransport(app=sahha_app))
    service_faults = FaultyTransport(httpx2.ASGITransport(app=whoop.app))
    values = {
        "var_dir": var_dir,
        "sahha_api_base_url": "http://sahha.test",
        "sahha_client_id": "sandbox-sahha-client",
        "sahha_client_secret": "sandbox-sahha-secret",
        "whoop_service_url": "http://whoop-service",
        "whoop_service_api_key": API_KEY,
        "supabase_jwt_secret": JWT_SECRET,
        "app_redirect_url": APP_REDIRECT,
    }
    settings = GatewaySettings(_env_file=None, **(values | gateway_settings))
    app = create_app(
        settings,
        transports=Transports(sahha=sahha_faults, whoop_service=service_faults),
    )
    await stack.enter_async_context(running(app))
    client = await stack.enter_async_context(
        httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app), base_url="http://gateway"
        )
    )
    return Stack(whoop, sahha_app.state.sandbox, sahha_faults, service_faults, client)
