"""Per-request context and metrics: request id, access log and Prometheus counters.

A pure ASGI middleware: it binds `request_id` for every log line of the request, returns it as
`X-Request-ID`, and records count and latency by route template (never the raw path, which would
carry user ids) and status. Each app has its own registry so tests can build many apps.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

log = structlog.get_logger()


class Metrics:
    """The HTTP metrics of one app."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests by method, route template and status.",
            ("method", "route", "status"),
            registry=registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency by method and route template.",
            ("method", "route"),
            registry=registry,
            buckets=(
                0.001,
                0.0025,
                0.005,
                0.01,
                0.025,
                0.05,
                0.1,
                0.25,
                0.5,
                1,
                2.5,
                5,
                10,
                15,
            ),
        )


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """The caller's `X-Request-ID` when well-formed, else a fresh one."""
    for name, value in headers:
        if name.lower() == b"x-request-id":
            text = value.decode("latin-1")
            if _VALID_REQUEST_ID.match(text):
                return text
            break
    return uuid.uuid4().hex


class RequestContextMiddleware:
    """Bind a request id, propagate it, log the request and record its metrics."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope.get("headers", []))
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() != b"x-request-id"
                ]
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self._record(scope, status, time.perf_counter() - started)
            structlog.contextvars.clear_contextvars()

    def _record(self, scope: Scope, status: int, elapsed_s: float) -> None:
        route: Any = scope.get("route")
        template = getattr(route, "path", None) or "<unmatched>"
        method = scope.get("method", "")
        self.metrics.requests.labels(method, template, str(status)).inc()
        self.metrics.latency.labels(method, template).observe(elapsed_s)
        log.info(
            "http.request",
            method=method,
            route=template,
            status=status,
            duration_ms=round(elapsed_s * 1000, 2),
        )
