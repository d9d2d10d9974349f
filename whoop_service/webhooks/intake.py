"""Taking in a verified WHOOP event: stored once per `trace_id`, and a job queued to process it
(the route answers WHOOP at once; the worker fetches later)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker

from whoop_service.db.jobs import JobRepository
from whoop_service.webhooks.verify import WhoopEvent
from whoop_service.whoop.ratelimit import Priority


async def take_in(
    sessions: async_sessionmaker[Any], event: WhoopEvent, now: datetime
) -> bool:
    """Store the event and queue its job in one transaction; False when WHOOP sent it before."""
    async with sessions() as session:
        repo = JobRepository(session)
        new = await repo.add_event(
            event.trace_id, event.whoop_user_id, event.type, event.object_id, now
        )
        if new:
            await repo.enqueue(
                "webhook",
                {
                    "whoop_user_id": event.whoop_user_id,
                    "object_id": event.object_id,
                    "type": event.type,
                    "trace_id": event.trace_id,
                },
                priority=int(Priority.WEBHOOK),
                now=now,
                dedupe_key=f"webhook:{event.trace_id}",
            )
        await session.commit()
    return new
