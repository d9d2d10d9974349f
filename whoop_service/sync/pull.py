"""Pull to refresh (`POST /internal/sync/{user_id}`) and where a user's syncs stand: the use
cases behind the sync routes, which only validate, call these and answer."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from time import monotonic

from shared.contracts import SyncRequest, SyncResponse, SyncStatusResponse
from shared.errors import Conflict
from whoop_service.db.connections import ConnectionRepository
from whoop_service.db.jobs import JobRepository
from whoop_service.db.records import RecordRepository
from whoop_service.domain import DATA_TYPES, ConnectionStatus, granted_types
from whoop_service.errors import (
    SyncCooldown,
    TokenRefreshPending,
    UserQuotaSpent,
    WhoopNeedsReauth,
    WhoopNotConnected,
)
from whoop_service.reads import MIN_SYNC_S
from whoop_service.sync.engine import SyncEngine
from whoop_service.sync.plan import type_statuses
from whoop_service.whoop.budget import BudgetExhausted
from whoop_service.whoop.ratelimit import Priority
from whoop_service.whoop.user_limits import UserLimits, retry_after_header


async def pull_to_refresh(
    engine: SyncEngine,
    limits: UserLimits,
    user_id: str,
    request: SyncRequest,
    deadline: float,
) -> SyncResponse:
    """Sync now, within the rate budget, the deadline and the user's limits (CONTRACT.md §9);
    records stored or changed per type."""
    async with engine.sessions() as session:
        conn = await ConnectionRepository(session).get_connection(user_id)
    if conn is None:
        raise WhoopNotConnected("This user has not connected WHOOP.")
    if conn.status is ConnectionStatus.NEEDS_REAUTH:
        raise WhoopNeedsReauth("WHOOP access must be granted again.")
    data_types = request.data_types or DATA_TYPES
    quota_wait_s = await limits.quota_wait_s(user_id)
    if quota_wait_s > 0:
        raise UserQuotaSpent(
            "Today's WHOOP refreshes for this user are spent; stored data is still served.",
            headers=retry_after_header(quota_wait_s),
        )
    if deadline - monotonic() < MIN_SYNC_S:
        # No WHOOP call that cannot finish is started (CONTRACT.md §7), and no sync state is
        # marked failed: nothing failed at WHOOP.
        return SyncResponse(
            user_id=user_id,
            synced=dict.fromkeys(data_types, 0),
            api_calls=0,
            status="failed",
            errors=dict.fromkeys(data_types, "no_time_left"),
        )
    cooldown_s = await limits.start_sync(user_id)
    if cooldown_s > 0:
        raise SyncCooldown(
            "This user synced moments ago; try again shortly.",
            headers=retry_after_header(cooldown_s),
        )
    start, end = _window(request)
    try:
        report = await engine.sync_user(
            user_id,
            data_types=data_types,
            start=start,
            end=end,
            priority=Priority.INTERACTIVE,
            deadline=deadline,
        )
    except BudgetExhausted:
        # Only the wait for the user's other sync (a job) raises it here: each type's own
        # budget waits end in its report.
        raise Conflict(
            "A sync of this user is already running.", code="sync_in_progress"
        ) from None
    except TokenRefreshPending as exc:
        # The refresh goes on in the background; no type is marked failed.
        return SyncResponse(
            user_id=user_id,
            synced=dict.fromkeys(data_types, 0),
            api_calls=0,
            status="failed",
            errors=dict.fromkeys(data_types, exc.instance_code),
        )
    return SyncResponse(
        user_id=user_id,
        synced={k: r.records for k, r in report.types.items()}
        | dict.fromkeys(report.not_granted, 0),
        api_calls=report.api_calls,
        status=report.status,
        errors={k: r.error for k, r in report.types.items() if r.error}
        | dict.fromkeys(report.not_granted, "not_granted"),
    )


def _window(request: SyncRequest) -> tuple[datetime | None, datetime | None]:
    """The requested days as a UTC window (none: the incremental one)."""
    if request.start_date is None:
        return None, None
    # Local days reach 14 h either side of UTC: pad so every record of those days comes.
    start = datetime.combine(request.start_date, time(0), tzinfo=UTC) - timedelta(
        days=1
    )
    last = request.end_date or request.start_date
    end = datetime.combine(last, time(0), tzinfo=UTC) + timedelta(days=2)
    return start, end


async def sync_status(engine: SyncEngine, user_id: str) -> SyncStatusResponse:
    """Per data type: last sync, its status, records synced, error, and whether one is due."""
    async with engine.sessions() as session:
        conn, scopes, states = await RecordRepository(
            session
        ).get_grant_and_sync_states(user_id)
        jobs = await JobRepository(session).counts(user_id)
    granted = granted_types(scopes) if conn is not None else DATA_TYPES
    return SyncStatusResponse(
        user_id=user_id,
        sync=type_statuses(states, engine.clock(), engine.policy, granted),
        jobs=jobs,
    )
