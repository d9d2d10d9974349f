"""The public gateway: `uvicorn --factory gateway.main:create_app` (port 8000)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI

from gateway.settings import GatewaySettings, get_settings
from shared.app import build_service_app
from shared.logging import configure_logging

log = structlog.get_logger()


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    """Build the app; shared resources are made in its lifespan."""
    settings = (settings or get_settings()).with_dev_defaults()
    configure_logging(settings.log_level, json=settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The gateway's readiness is its own: an upstream failing is degraded service, which the
        # health answers report per source; it must not take every gateway out of rotation.
        app.state.readiness = {}
        log.info("gateway.started", environment=settings.environment)
        try:
            yield
        finally:
            app.state.readiness = None
            log.info("gateway.stopped")

    app = build_service_app(title="Health gateway", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    return app
