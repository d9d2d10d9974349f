"""Faults at the transport, around a real app: down, slow, or answering 5xx."""

from __future__ import annotations

import asyncio

import httpx2


class FaultyTransport(httpx2.AsyncBaseTransport):
    """Passes requests to `inner` unless a fault is set; counts what reached the app."""

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self.inner = inner
        self.mode: str | None = None  # None | "down" | "slow" | "error"
        self.delay_s = 0.0
        self.status = 500
        self.forwarded = 0
        self.attempted = 0

    def heal(self) -> None:
        self.mode = None

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        self.attempted += 1
        if self.mode == "down":
            raise httpx2.ConnectError("connection refused", request=request)
        if self.mode == "error":
            return httpx2.Response(self.status, json={"title": "boom"}, request=request)
        if self.mode == "slow":
            await asyncio.sleep(self.delay_s)
        self.forwarded += 1
        return await self.inner.handle_async_request(request)
