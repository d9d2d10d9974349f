"""`/internal/sync/*`: sync a user now (pull to refresh) and read where syncs stand."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Body

from shared.contracts import SyncRequest, SyncResponse, SyncStatusResponse
from shared.params import UserIdPath
from shared.time import utc_now
from whoop_service.db.connections import ConnectionRepository
from whoop_service.db.jobs import JobRepository
from whoop_service.db.records import RecordRepository
from whoop_service.deps import DeadlineDep, EngineDep
from whoop_service.domain import DATA_TYPES, ConnectionStatus
from whoop_service.errors import WhoopNeedsReauth, WhoopNotConnected
from whoop_service.sync.plan import type_statuses
from whoop_service.whoop.ratelimit import Priority

router = APIRouter(prefix="/internal/sync", tags=["sync"])


@router.post("/{user_id}")
async def sync_now(
    user_id: UserIdPath,
    engine: EngineDep,
    deadline: DeadlineDep,
    body: Annotated[SyncRequest | None, Body()] = None,
) -> SyncResponse:
    """Sync now, within the rate budget and the deadline; records stored or changed per type."""
    request = body or SyncRequest()
    async with engine.sessions() as session:
        conn = await ConnectionRepository(session).get_connection(user_id)
    if conn is None:
        raise WhoopNotConnected("This user has not connected WHOOP.")
    if conn.status is ConnectionStatus.NEEDS_REAUTH:
        raise WhoopNeedsReauth("WHOOP access must be granted again.")
    start = end = None
    priority = Priority.INTERACTIVE
    if request.start_date is not None:
        # Local days reach 14 h either side of UTC: pad so every record of those days comes.
        start = datetime.combine(request.start_date, time(0), tzinfo=UTC) - timedelta(
            days=1
        )
        last = request.end_date or request.start_date
        end = datetime.combine(last, time(0), tzinfo=UTC) + timedelta(days=2)
        priority = Priority.BACKFILL
    report = await engine.sync_user(
        user_id,
        data_types=request.data_types or DATA_TYPES,
        start=start,
        end=end,
        priority=priority,
        deadline=deadline,
    )
    return SyncResponse(
        user_id=user_id,
        synced={k: r.records for k, r in report.types.items()},
        api_calls=report.api_calls,
        status=report.status,
        errors={k: r.error for k, r in report.types.items() if r.error},
    )


@router.get("/status/{user_id}")
async def sync_status(user_id: UserIdPath, engine: EngineDep) -> SyncStatusResponse:
    """Per data type: last sync, its status, records synced, error, and whether one is due."""
    async with engine.sessions() as session:
        states = await RecordRepository(session).list_sync_states(user_id)
        jobs = await JobRepository(session).counts(user_id)
    return SyncStatusResponse(
        user_id=user_id, sync=type_statuses(states, utc_now(), engine.policy), jobs=jobs
    )
