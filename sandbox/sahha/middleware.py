"""ASGI middleware that logs every request and serves injected faults before any route runs."""

from __future__ import annotations

import asyncio
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.sahha.errors import INTERNAL_LOCATION, error_response
from sandbox.sahha.state import LoggedRequest, SahhaSandbox

TOKEN_PATH: Final = "/api/v1/oauth/account/token"


class SandboxMiddleware:
    """Counts token requests, answers injected faults, and records (method, path, query, status)."""

    def __init__(self, app: ASGIApp, sandbox: SahhaSandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        path: str = scope["path"]
        query = bytes(scope.get("query_string", b"")).decode("latin-1")
        if method == "POST" and path.rstrip("/") == TOKEN_PATH:
            # Counted here, not in the route, so failed and faulted attempts count too.
            self.sandbox.token_requests += 1
        status = 500
        try:
            fault = self.sandbox.take_fault(path)
            if fault is not None:
                if fault.delay_s:
                    await asyncio.sleep(fault.delay_s)
                status = fault.status
                location = INTERNAL_LOCATION if status >= 500 else "sandbox"
                await error_response(status, location)(scope, receive, send)
                return

            async def send_and_watch(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                await send(message)

            await self.app(scope, receive, send_and_watch)
        finally:
            self.sandbox.request_log.append(LoggedRequest(method, path, query, status))
