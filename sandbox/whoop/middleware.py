"""ASGI middleware in front of every route: request log, rate limits, injected faults."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.whoop import pagination
from sandbox.whoop.faults import Fault
from sandbox.whoop.state import WhoopSandbox

DATA_PREFIX = "/developer"


class SandboxMiddleware:
    """Logs each request; limits `/developer` calls; answers with queued faults."""

    def __init__(self, app: ASGIApp, sandbox: WhoopSandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        query = dict(
            parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        )
        status = 500
        extra: list[tuple[bytes, bytes]] = []

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        try:
            if path.startswith(DATA_PREFIX):
                decision = self.sandbox.limiter.admit(self.sandbox.now())
                extra = [
                    (k.lower().encode(), v.encode())
                    for k, v in decision.headers.items()
                ]
                if not decision.allowed:
                    await _error(
                        send_with_headers, 429, "rate_limited", "Too many requests."
                    )
                    return
            fault = self.sandbox.faults.take(
                path, pagination.page_number(query.get("nextToken"))
            )
            if fault is None:
                await self.app(scope, receive, send_with_headers)
            else:
                await self._fail(fault, scope, receive, send_with_headers)
        finally:
            self.sandbox.log_request(scope["method"], path, query, status)

    async def _fail(
        self, fault: Fault, scope: Scope, receive: Receive, send: Send
    ) -> None:
        if fault.delay_s > 0:
            await asyncio.sleep(fault.delay_s)
        if fault.status < 400:
            await self.app(scope, receive, send)
            return
        if fault.after_handler:

            async def discard(message: Message) -> None:
                return None

            await self.app(scope, receive, discard)
        await _error(send, fault.status, "sandbox_fault", "Injected failure.")


async def _error(send: Send, status: int, error: str, description: str) -> None:
    body = json.dumps({"error": error, "error_description": description}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
