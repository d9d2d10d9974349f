"""The public gateway: `uvicorn --factory gateway.main:create_app` (port 8000)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import httpx2
import structlog
from fastapi import FastAPI
from redis.asyncio import Redis

from gateway.auth import TokenVerifier
from gateway.breaker import CircuitBreaker
from gateway.ratelimit import PublicRateLimiter
from gateway.routes import health, webhooks, whoop
from gateway.sahha.cache import MemorySahhaCache, RedisSahhaCache, SahhaCache
from gateway.sahha.client import SahhaClient
from gateway.settings import GatewaySettings, get_settings
from gateway.whoop_service_client import WhoopServiceClient
from shared.app import build_service_app
from shared.http import make_async_client
from shared.logging import configure_logging

log = structlog.get_logger()


@dataclass
class Transports:
    """Where tests send the gateway's outbound calls (production: the network)."""

    sahha: httpx2.AsyncBaseTransport | None = None
    whoop_service: httpx2.AsyncBaseTransport | None = None
    jwks: httpx2.AsyncBaseTransport | None = None


def create_app(
    settings: GatewaySettings | None = None, *, transports: Transports | None = None
) -> FastAPI:
    """Build the app; the shared upstream clients are made in its lifespan."""
    settings = (settings or get_settings()).with_dev_defaults()
    configure_logging(settings.log_level, json=settings.log_json)
    transports = transports or Transports()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await _start(app, settings, transports, stack)
            log.info("gateway.started", environment=settings.environment)
            try:
                yield
            finally:
                app.state.readiness = None
                log.info("gateway.stopping")

    app = build_service_app(title="Health gateway", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    for router in (health.router, whoop.router, webhooks.router):
        app.include_router(router)
    return app


async def _start(
    app: FastAPI,
    settings: GatewaySettings,
    transports: Transports,
    stack: AsyncExitStack,
) -> None:
    """Build every collaborator; `stack` closes them in reverse order on shutdown."""
    sahha_http = await stack.enter_async_context(
        make_async_client(
            settings.sahha_api_base_url,
            settings.sahha_timeout_s,
            transport=transports.sahha,
        )
    )
    whoop_http = await stack.enter_async_context(
        make_async_client(
            settings.whoop_service_url,
            settings.whoop_service_timeout_s,
            transport=transports.whoop_service,
        )
    )
    memory_cache = MemorySahhaCache(max_bytes=settings.sahha_cache_max_bytes)
    cache: SahhaCache = memory_cache
    redis: Redis | None = None
    if settings.redis_url:
        redis = Redis.from_url(settings.redis_url, socket_timeout=1.0)
        stack.push_async_callback(redis.aclose)
        cache = RedisSahhaCache(redis, prefix="gateway:sahha", fallback=memory_cache)
    app.state.rate_limiter = PublicRateLimiter(
        settings.public_rate_limit_per_minute, redis=redis
    )
    app.state.sahha = SahhaClient(
        sahha_http,
        client_id=settings.sahha_client_id or "",
        client_secret=settings.sahha_client_secret.get_secret_value()
        if settings.sahha_client_secret
        else "",
        cache=cache,
        timeout_s=settings.sahha_timeout_s,
    )
    assert settings.whoop_service_api_key is not None  # with_dev_defaults() fills it
    app.state.whoop_service = WhoopServiceClient(
        whoop_http,
        api_key=settings.whoop_service_api_key.get_secret_value(),
        timeout_s=settings.whoop_service_timeout_s,
        breaker=CircuitBreaker(),
    )
    jwks_http = None
    if settings.supabase_jwks_url:
        jwks_http = await stack.enter_async_context(
            make_async_client(
                settings.supabase_jwks_url, 5.0, transport=transports.jwks
            )
        )
    verifier = TokenVerifier(
        audience=settings.jwt_audience,
        issuer=settings.supabase_jwt_issuer,
        hs256_secret=settings.supabase_jwt_secret.get_secret_value()
        if settings.supabase_jwt_secret
        else None,
        jwks_url=settings.supabase_jwks_url,
        http=jwks_http,
    )
    stack.push_async_callback(verifier.aclose)
    app.state.verifier = verifier
    # The gateway's readiness is its own: an upstream failing is degraded service, reported per
    # source in the answers; it must not take every gateway out of rotation.
    app.state.readiness = {}
