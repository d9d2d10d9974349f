"""The internal WHOOP service: `uvicorn --factory whoop_service.main:create_app` (port 8001)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import structlog
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.api_key import ApiKeyCheck
from shared.app import build_service_app
from shared.logging import configure_logging
from whoop_service.db.migrate import upgrade_to_head_async
from whoop_service.db.session import make_engine, make_session_factory, ping
from whoop_service.settings import WhoopSettings, get_settings

log = structlog.get_logger()


def create_app(
    settings: WhoopSettings | None = None, *, engine: AsyncEngine | None = None
) -> FastAPI:
    """Build the app; resources (engine, clients) are made in its lifespan unless passed in."""
    settings = (settings or get_settings()).with_dev_defaults()
    configure_logging(settings.log_level, json=settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = engine or make_engine(settings.database_url)
        try:
            if settings.auto_migrate:
                await upgrade_to_head_async(settings.database_url)
            app.state.engine = db
            app.state.session_factory = make_session_factory(db)
            app.state.readiness = {"database": partial(ping, db)}
            log.info("whoop_service.started", environment=settings.environment)
            yield
        finally:
            app.state.readiness = None
            if engine is None:
                await db.dispose()
            log.info("whoop_service.stopped")

    app = build_service_app(
        title="WHOOP service (internal)", version="0.1.0", lifespan=lifespan
    )
    app.state.settings = settings
    app.state.api_key = ApiKeyCheck(
        [k.get_secret_value() for k in settings.internal_api_keys]
    )
    return app
