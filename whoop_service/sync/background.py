"""Syncs that run after the answer: a new connection's first 30 days, at backfill priority."""

from __future__ import annotations

import asyncio

import structlog

from whoop_service.errors import WhoopNeedsReauth, WhoopNotConnected
from whoop_service.sync.engine import SyncEngine
from whoop_service.whoop.ratelimit import Priority

log = structlog.get_logger()


class BackgroundSyncs:
    """In-process background syncs, cancelled cleanly at shutdown."""

    def __init__(self, engine: SyncEngine) -> None:
        self._engine = engine
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, user_id: str) -> None:
        task = asyncio.create_task(self._run(user_id), name=f"first-sync:{user_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, user_id: str) -> None:
        try:
            await self._engine.sync_user(user_id, priority=Priority.BACKFILL)
        except (WhoopNotConnected, WhoopNeedsReauth) as exc:
            log.info(
                "whoop.sync.background_skipped",
                user_id=user_id,
                reason=exc.instance_code,
            )
        except Exception as exc:
            # Reconciliation retries later; the failure must not vanish silently.
            log.error("whoop.sync.background_failed", user_id=user_id, exc_info=exc)

    async def wait(self) -> None:
        """Wait for every running sync (tests, graceful shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
