"""The emulator's app factory (`uvicorn --factory sandbox.whoop:create_app`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx2
import structlog
from fastapi import FastAPI

from sandbox.whoop import admin, api, oauth
from sandbox.whoop.errors import install_error_handlers
from sandbox.whoop.middleware import SandboxMiddleware
from sandbox.whoop.settings import WhoopSandboxSettings
from sandbox.whoop.state import WhoopSandbox
from sandbox.whoop.wire import Clock, utc_now

log = structlog.get_logger()


async def _emit_webhooks_forever(sandbox: WhoopSandbox) -> None:
    """Announce records as they are created or scored, as WHOOP does, until cancelled."""
    while True:
        await asyncio.sleep(sandbox.settings.webhook_poll_interval_s)
        try:
            await sandbox.emit_due_webhooks()
        except Exception:
            # One bad round must not stop later deliveries; the failure is logged.
            log.exception("sandbox.whoop.webhook_round_failed")


def create_app(
    settings: WhoopSandboxSettings | None = None,
    *,
    clock: Clock | None = None,
    webhook_transport: httpx2.AsyncBaseTransport | None = None,
) -> FastAPI:
    """A WHOOP emulator: OAuth under /oauth/oauth2, data under /developer.

    The state is `app.state.sandbox`; settings come from `SANDBOX_WHOOP_*` when not given.
    """
    settings = settings or WhoopSandboxSettings()
    sandbox = WhoopSandbox(
        settings, clock=clock or utc_now, webhook_transport=webhook_transport
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = None
        if settings.webhook_url is not None:
            task = asyncio.create_task(_emit_webhooks_forever(sandbox))
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = FastAPI(title="WHOOP API sandbox", lifespan=lifespan)
    app.state.sandbox = sandbox
    app.include_router(oauth.router)
    app.include_router(api.router)
    app.include_router(admin.router)
    install_error_handlers(app)
    app.add_middleware(SandboxMiddleware, sandbox=sandbox)
    return app
