"""The internal WHOOP service: `uvicorn --factory whoop_service.main:create_app` (port 8001)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

import httpx2
import structlog
from fastapi import Depends, FastAPI
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.api_key import ApiKeyCheck, require_app_api_key
from shared.app import ReadinessCheck, build_service_app
from shared.http import make_async_client
from shared.logging import configure_logging
from shared.time import Clock, utc_now
from whoop_service.api import auth, data, sync, webhooks
from whoop_service.auth.crypto import TokenCipher
from whoop_service.auth.flow import ConnectFlow
from whoop_service.auth.tokens import TokenManager
from whoop_service.db.migrate import upgrade_to_head_async
from whoop_service.db.session import make_engine, make_session_factory, ping
from whoop_service.jobs.handlers import JobHandlers
from whoop_service.jobs.scheduler import Scheduler
from whoop_service.jobs.worker import Worker
from whoop_service.reads import DataReader
from whoop_service.settings import WhoopSettings, get_settings
from whoop_service.sync.engine import SyncEngine
from whoop_service.sync.plan import SyncPolicy
from whoop_service.whoop.budget import LocalBudget, RateBudget
from whoop_service.whoop.client import WhoopClient
from whoop_service.whoop.failover import FailoverBudget
from whoop_service.whoop.oauth import WhoopOAuth
from whoop_service.whoop.ratelimit import BudgetLimits
from whoop_service.whoop.redis_budget import RedisBudget
from whoop_service.whoop.user_limits import UserLimits

log = structlog.get_logger()

# How often each replica looks for pending grants past their 10 minutes.
PENDING_SWEEP_S = 60.0


@dataclass
class Overrides:
    """Collaborators tests pass in (production builds them from settings)."""

    engine: AsyncEngine | None = None
    whoop_transport: httpx2.AsyncBaseTransport | None = None
    clock: Clock = utc_now
    budget: RateBudget | None = None


def create_app(
    settings: WhoopSettings | None = None,
    *,
    engine: AsyncEngine | None = None,
    whoop_transport: httpx2.AsyncBaseTransport | None = None,
    clock: Clock = utc_now,
    budget: RateBudget | None = None,
) -> FastAPI:
    """Build the app; resources (engine, clients) are made in its lifespan unless passed in."""
    settings = (settings or get_settings()).with_dev_defaults()
    configure_logging(settings.log_level, json=settings.log_json)
    cipher = TokenCipher([k.get_secret_value() for k in settings.token_encryption_keys])
    overrides = Overrides(
        engine=engine, whoop_transport=whoop_transport, clock=clock, budget=budget
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await _start(app, settings, cipher, overrides, stack)
            log.info("whoop_service.started", environment=settings.environment)
            try:
                yield
            finally:
                app.state.readiness = None
                log.info("whoop_service.stopping")

    app = build_service_app(
        title="WHOOP service (internal)", version="0.1.0", lifespan=lifespan
    )
    app.state.settings = settings
    app.state.api_key = ApiKeyCheck(
        [k.get_secret_value() for k in settings.internal_api_keys]
    )
    for router in (auth.router, data.router, sync.router):
        app.include_router(router, dependencies=[Depends(require_app_api_key)])
    app.include_router(webhooks.router)  # WHOOP signs these; no API key
    return app


async def _start(
    app: FastAPI,
    settings: WhoopSettings,
    cipher: TokenCipher,
    overrides: Overrides,
    stack: AsyncExitStack,
) -> None:
    """Build every collaborator; `stack` closes them in reverse order on shutdown."""
    engine = overrides.engine or make_engine(settings.database_url)
    if overrides.engine is None:
        stack.push_async_callback(engine.dispose)
    if settings.auto_migrate:
        await upgrade_to_head_async(settings.database_url)
    sessions = make_session_factory(engine)
    oauth_http = await stack.enter_async_context(
        make_async_client(
            settings.whoop_oauth_base_url, 10.0, transport=overrides.whoop_transport
        )
    )
    api_http = await stack.enter_async_context(
        make_async_client(
            settings.whoop_api_base_url, 10.0, transport=overrides.whoop_transport
        )
    )
    readiness: dict[str, ReadinessCheck] = {"database": partial(ping, engine)}
    budget: RateBudget = overrides.budget or LocalBudget(_limits(settings))
    redis = None
    if settings.redis_url:
        # Short timeouts: a hung Redis must hand the budget to the local share at once.
        redis = Redis.from_url(
            settings.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5
        )
        stack.push_async_callback(redis.aclose)
    if overrides.budget is None and redis is not None:
        budget = await stack.enter_async_context(
            FailoverBudget(RedisBudget(redis, _limits(settings)))
        )
    user_limits = UserLimits(
        settings.user_sync_cooldown_s,
        settings.user_whoop_requests_per_day,
        redis=redis,
        clock=overrides.clock,
        # While Redis is down each replica keeps its share, as the budget does.
        replicas=(lambda: budget.replicas)
        if isinstance(budget, FailoverBudget)
        else None,
    )
    if isinstance(budget, FailoverBudget):
        readiness["redis"] = budget.redis_state
        readiness["rate_budget"] = budget.budget_state
    whoop = WhoopClient(api_http, budget=budget, user_quota=user_limits)
    oauth = None
    if settings.whoop_client_id and settings.whoop_client_secret:
        oauth = WhoopOAuth(
            oauth_http,
            client_id=settings.whoop_client_id,
            client_secret=settings.whoop_client_secret.get_secret_value(),
            redirect_uri=settings.whoop_redirect_uri,
            scopes=settings.whoop_scopes.split(),
            budget=budget,
        )
    tokens = TokenManager(sessions, cipher, oauth, clock=overrides.clock)
    stack.push_async_callback(tokens.settle)  # before the clients it uses close
    policy = SyncPolicy(
        freshness={
            k: timedelta(minutes=m) for k, m in settings.whoop_freshness_minutes.items()
        }
    )
    sync_engine = SyncEngine(
        sessions, whoop, tokens, clock=overrides.clock, policy=policy
    )
    app.state.engine = engine
    app.state.sessions = sessions
    app.state.tokens = tokens
    app.state.whoop = whoop
    app.state.sync_engine = sync_engine
    app.state.user_limits = user_limits
    app.state.reader = DataReader(
        sessions, sync_engine, limits=user_limits, clock=overrides.clock
    )
    app.state.clock = overrides.clock
    handlers = JobHandlers(
        sessions,
        whoop,
        tokens,
        sync_engine,
        clock=overrides.clock,
        run_limit_s=settings.job_lease_s * 0.8,
        settle=timedelta(seconds=settings.webhook_settle_s),
    )
    worker = Worker(
        sessions,
        handlers,
        clock=overrides.clock,
        lease=timedelta(seconds=settings.job_lease_s),
    )
    app.state.worker = worker
    app.state.scheduler = Scheduler(
        sessions, settings.sync_schedule, clock=overrides.clock, on_queued=worker.notify
    )
    app.state.connect_flow = ConnectFlow(
        sessions,
        cipher,
        tokens,
        oauth,
        whoop,
        oauth_base_url=settings.whoop_oauth_base_url,
        client_id=settings.whoop_client_id,
        redirect_uri=settings.whoop_redirect_uri,
        scopes=settings.whoop_scopes.split(),
        clock=overrides.clock,
        policy=sync_engine.policy,
        on_connected=lambda: app.state.worker.notify(),
        limits=user_limits,
    )
    await _start_loops(app, settings, stack)
    app.state.readiness = readiness


async def _start_loops(
    app: FastAPI, settings: WhoopSettings, stack: AsyncExitStack
) -> None:
    """The worker and the scheduler run beside the API and stop with it (running jobs finish)."""
    stop = asyncio.Event()
    loops = []
    if settings.worker_enabled:
        loops.append(
            asyncio.create_task(app.state.worker.run_forever(stop), name="job-worker")
        )
    if settings.scheduler_enabled:
        loops.append(
            asyncio.create_task(app.state.scheduler.run_forever(stop), name="scheduler")
        )
        loops.append(
            asyncio.create_task(
                _expire_pending_grants(app.state.connect_flow, stop),
                name="pending-grants",
            )
        )

    async def shut_down() -> None:
        stop.set()
        _, pending = await asyncio.wait(loops, timeout=30) if loops else (set(), set())
        # A job still running after 30 s is claimed again after its lease.
        for task in pending:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)

    stack.push_async_callback(shut_down)


async def _expire_pending_grants(
    flow: ConnectFlow, stop: asyncio.Event, every_s: float = PENDING_SWEEP_S
) -> None:
    """Revoke and forget the pending grants nobody completed within their 10 minutes."""
    while not stop.is_set():
        try:
            await flow.expire_pending(deadline=time.monotonic() + every_s / 2)
        except Exception:
            # The next round tries again; a failing round must not end the loop.
            log.exception("whoop.connect.pending_sweep_failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)


def _limits(settings: WhoopSettings) -> BudgetLimits:
    return BudgetLimits.from_whoop(
        settings.whoop_rate_limit_per_minute,
        settings.whoop_rate_limit_per_day,
        settings.whoop_rate_limit_headroom,
    )
