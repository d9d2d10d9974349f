"""`/api/v1/health/*`: a user's merged day(s), and where each source stands."""

from __future__ import annotations

import asyncio
import time
from datetime import date, datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Query, Response

from gateway import aggregate
from gateway.auth import CALLER_RESPONSES, CallerDep, check_user_access
from gateway.dates import days_between, resolve_range
from gateway.deps import SahhaDep, SettingsDep, WhoopServiceDep
from gateway.sahha.client import SahhaResult
from gateway.schemas import HealthResponse, SahhaSourceOut, Sources, WhoopSourceOut
from gateway.whoop_service_client import WhoopResult
from shared.errors import AppError
from shared.params import UserIdPath
from shared.problems import problem_responses
from shared.time import utc_now

log = structlog.get_logger()
router = APIRouter(prefix="/api/v1/health", tags=["health"], responses=CALLER_RESPONSES)


@router.get(
    "/{user_id}",
    responses=problem_responses(
        502,
        descriptions={
            502: "Every connected source failed (`sources_unavailable`); the problem's "
            "`sources` block says how."
        },
    ),
)
async def health(
    user_id: UserIdPath,
    caller: CallerDep,
    sahha: SahhaDep,
    whoop: WhoopServiceDep,
    settings: SettingsDep,
    response: Response,
    day: Annotated[
        date | None, Query(alias="date", description="One local day.")
    ] = None,
    start_date: Annotated[date | None, Query(description="First local day.")] = None,
    end_date: Annotated[
        date | None, Query(description="Last local day (inclusive).")
    ] = None,
    tz: Annotated[
        str, Query(max_length=64, description="IANA zone for 'today'.")
    ] = "UTC",
    force_refresh: Annotated[
        bool,
        Query(
            description="Pull to refresh in one call: Sahha past its cache, WHOOP synced "
            "first (within the deadline and the user's sync cooldown)."
        ),
    ] = False,
) -> HealthResponse:
    """Sahha and WHOOP merged per local day, each source's status stated."""
    check_user_access(caller, user_id)
    start, end = resolve_range(day, start_date, end_date, tz, utc_now())
    deadline = time.monotonic() + settings.request_deadline_s
    fetch_sahha = sahha.fetch_days(
        user_id, start, end, deadline=deadline, force_refresh=force_refresh
    )
    if settings.aggregation_mode == "concurrent":
        sahha_result, whoop_result = await asyncio.gather(
            fetch_sahha,
            whoop.daily(
                user_id, start, end, deadline=deadline, force_refresh=force_refresh
            ),
        )
    else:
        sahha_result = await fetch_sahha
        whoop_result = await whoop.daily(
            user_id, start, end, deadline=deadline, force_refresh=force_refresh
        )
    sources = _sources(sahha_result, whoop_result)
    log.info(
        "gateway.health.answered",
        user_id=user_id,
        sahha=sources.sahha.status,
        whoop=sources.whoop.status,
        days=(end - start).days + 1,
    )
    if aggregate.all_connected_failed(sources):
        raise AppError(
            "Every connected source failed.",
            code="sources_unavailable",
            status=502,
            extra={"sources": sources.model_dump(mode="json")},
            headers={"Cache-Control": "no-store"},
        )
    daily = whoop_result.daily
    complete = aggregate.is_complete(sources)
    if not complete:
        response.headers["Cache-Control"] = "no-store"
    return HealthResponse(
        user_id=user_id,
        start_date=start,
        end_date=end,
        complete=complete,
        sources=sources,
        days=aggregate.build_days(
            days_between(start, end),
            {d: (s.scores, s.biomarkers) for d, s in sahha_result.days.items()},
            {d.date: d for d in daily.days} if daily else {},
        ),
    )


def _sources(sahha: SahhaResult, whoop: WhoopResult) -> Sources:
    # A user without WHOOP has no WHOOP data anywhere: no source to name.
    daily = whoop.daily if whoop.status != "not_connected" else None
    return Sources(
        sahha=SahhaSourceOut(
            status=sahha.status, stale=sahha.stale, fetched_at=sahha.fetched_at
        ),
        whoop=WhoopSourceOut(
            status=whoop.status,
            stale=daily.stale if daily else False,
            last_sync_at=daily.last_sync_at if daily else None,
            data_source=daily.data_source if daily else None,
        ),
    )


@router.get("/sources/{user_id}")
async def sources(
    user_id: UserIdPath,
    caller: CallerDep,
    sahha: SahhaDep,
    whoop: WhoopServiceDep,
    settings: SettingsDep,
) -> dict[str, dict[str, Any]]:
    """Whether each source is connected, its status and when it last had data."""
    check_user_access(caller, user_id)
    deadline = time.monotonic() + settings.request_deadline_s
    sahha_part, whoop_part = await asyncio.gather(
        _sahha_source(sahha, user_id, deadline), _whoop_source(whoop, user_id, deadline)
    )
    return {"sources": {"sahha": sahha_part, "whoop": whoop_part}}


async def _sahha_source(
    sahha: SahhaDep, user_id: str, deadline: float
) -> dict[str, Any]:
    try:
        profile = await sahha.fetch_profile(user_id, deadline=deadline)
    except Exception as exc:
        # Any failure is reported as the source's status, never a 500.
        log.warning("gateway.sources.sahha_failed", error_type=type(exc).__name__)
        return {"connected": None, "status": "unavailable", "last_data_at": None}
    if profile is None:
        return {"connected": False, "status": "not_connected", "last_data_at": None}
    return {
        "connected": True,
        "status": "ok",
        "last_data_at": profile.data_last_received_at,
    }


async def _whoop_source(
    whoop: WhoopServiceDep, user_id: str, deadline: float
) -> dict[str, Any]:
    try:
        status = await whoop.call(
            "GET", f"/internal/auth/status/{user_id}", deadline=deadline
        )
    except AppError as exc:
        return {"connected": None, "status": _failure(exc), "last_data_at": None}
    synced: list[datetime] = [
        datetime.fromisoformat(s["last_sync_at"])
        for s in status.get("sync", {}).values()
        if s.get("last_sync_at") and s.get("status") == "success"
    ]
    state = status.get("status", "not_connected")
    return {
        "connected": state != "not_connected",
        "status": "ok" if state == "connected" else state,
        "last_data_at": max(synced) if synced else None,
    }


def _failure(exc: AppError) -> str:
    return "timeout" if exc.status == 504 else "unavailable"
