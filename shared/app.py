"""What every service app has: error handlers, request context, a body-size limit, `/health/*`
and `/metrics`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from shared.bodylimit import BodySizeLimitMiddleware
from shared.observability import Metrics, RequestContextMiddleware
from shared.problems import (
    document_problems,
    install_error_handlers,
    problem_response,
    problem_responses,
)

# Raises when the dependency is unusable (the service is not ready). Returns None when it is fine,
# or a word naming a degraded state the service still works through (reported; still ready).
ReadinessCheck = Callable[[], Awaitable[str | None]]
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]

READINESS_TIMEOUT_S = 2.0

log = structlog.get_logger()
router = APIRouter(tags=["operations"])


@router.get("/health/live")
async def live() -> dict[str, str]:
    """The process is up and serving."""
    return {"status": "ok"}


@router.get("/health/ready", response_model=None, responses=problem_responses(503))
async def ready(request: Request) -> JSONResponse | dict[str, Any]:
    """Every dependency this service needs answers; 503 problem+json naming the failing ones.

    A dependency the service works around (a local rate budget while Redis is down) is named with
    its state and `status` is "degraded", still a 200: a 503 for a dependency all replicas share
    would make a load balancer drop every replica at once.
    """
    checks: dict[str, ReadinessCheck] | None = getattr(
        request.app.state, "readiness", None
    )
    if checks is None:
        return problem_response(503, "not_ready", "The service is starting.")
    results = await asyncio.gather(*(_run_check(name, c) for name, c in checks.items()))
    states = {name: state for name, state, _ in results}
    if all(working for _, _, working in results):
        degraded = any(state != "ok" for state in states.values())
        return {"status": "degraded" if degraded else "ready", "checks": states}
    return problem_response(
        503,
        "not_ready",
        "A dependency of the service is unavailable.",
        extra={"checks": states},
    )


async def _run_check(name: str, check: ReadinessCheck) -> tuple[str, str, bool]:
    """(name, state, whether the service works with it)."""
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_S):
            state = await check()
    except TimeoutError:
        log.warning("health.check_timeout", check=name)
        return name, "timeout", False
    except Exception as exc:
        log.warning("health.check_failed", check=name, error_type=type(exc).__name__)
        return name, "failed", False
    return name, state or "ok", True


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus exposition of this app's registry."""
    registry: CollectorRegistry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


class ServiceApp(FastAPI):
    """A FastAPI app whose OpenAPI documents the problem answers of `shared.problems`."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            document_problems(super().openapi())
        return super().openapi()


def build_service_app(*, title: str, version: str, lifespan: Lifespan) -> FastAPI:
    """A FastAPI app with the shared operational surface; routes are added by the caller.

    The lifespan must set `app.state.readiness` (name → async check) once its resources exist;
    until then `/health/ready` answers 503.
    """
    app = ServiceApp(title=title, version=version, lifespan=lifespan)
    app.state.metrics = Metrics(CollectorRegistry(auto_describe=True))
    app.state.readiness = None
    install_error_handlers(app)
    # Added first, so it runs inside the request context (its 413s are logged and counted)
    # and before routing, dependencies and authentication.
    app.add_middleware(BodySizeLimitMiddleware)
    app.add_middleware(RequestContextMiddleware, metrics=app.state.metrics)
    app.include_router(router)
    return app
