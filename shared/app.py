"""What every service app has: error handlers, request context, `/health/*` and `/metrics`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from shared.observability import Metrics, RequestContextMiddleware
from shared.problems import install_error_handlers, problem_response

ReadinessCheck = Callable[[], Awaitable[None]]
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]

READINESS_TIMEOUT_S = 2.0

log = structlog.get_logger()
router = APIRouter(tags=["operations"])


@router.get("/health/live")
async def live() -> dict[str, str]:
    """The process is up and serving."""
    return {"status": "ok"}


@router.get("/health/ready", response_model=None)
async def ready(request: Request) -> JSONResponse | dict[str, Any]:
    """Every dependency this service needs answers; 503 problem+json naming the failing ones."""
    checks: dict[str, ReadinessCheck] | None = getattr(
        request.app.state, "readiness", None
    )
    if checks is None:
        return problem_response(503, "not_ready", "The service is starting.")
    results = await asyncio.gather(*(_run_check(name, c) for name, c in checks.items()))
    states = dict(results)
    if all(state == "ok" for state in states.values()):
        return {"status": "ready", "checks": states}
    return problem_response(
        503,
        "not_ready",
        "A dependency of the service is unavailable.",
        extra={"checks": states},
    )


async def _run_check(name: str, check: ReadinessCheck) -> tuple[str, str]:
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_S):
            await check()
    except TimeoutError:
        log.warning("health.check_timeout", check=name)
        return name, "timeout"
    except Exception as exc:
        log.warning("health.check_failed", check=name, error_type=type(exc).__name__)
        return name, "failed"
    return name, "ok"


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus exposition of this app's registry."""
    registry: CollectorRegistry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def build_service_app(*, title: str, version: str, lifespan: Lifespan) -> FastAPI:
    """A FastAPI app with the shared operational surface; routes are added by the caller.

    The lifespan must set `app.state.readiness` (name → async check) once its resources exist;
    until then `/health/ready` answers 503.
    """
    app = FastAPI(title=title, version=version, lifespan=lifespan)
    app.state.metrics = Metrics(CollectorRegistry(auto_describe=True))
    app.state.readiness = None
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, metrics=app.state.metrics)
    app.include_router(router)
    return app
