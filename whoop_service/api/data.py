"""`/internal/data/*`: the WHOOP data the gateway reads, database first (CONTRACT.md §7)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from shared.api_key import API_KEY_RESPONSES
from shared.contracts import DailyResponse, RecordsResponse, date_in_range
from shared.errors import ValidationFailed
from shared.params import UserIdPath
from whoop_service.deps import DeadlineDep, ReaderDep

router = APIRouter(prefix="/internal/data", tags=["data"], responses=API_KEY_RESPONSES)

MAX_DAYS = 31
MAX_RECORD_SPAN = timedelta(days=93)
PATH_KINDS = {
    "recovery": "recovery",
    "sleep": "sleep",
    "workouts": "workout",
    "cycles": "cycle",
}

ForceRefresh = Annotated[
    bool, Query(description="Sync from WHOOP first, deadline allowing.")
]


def _bad(field: str, message: str) -> ValidationFailed:
    return ValidationFailed.for_field(field, message)


@router.get("/daily/{user_id}")
async def daily(
    user_id: UserIdPath,
    reader: ReaderDep,
    deadline: DeadlineDep,
    start_date: Annotated[date, Query(description="First local day (YYYY-MM-DD).")],
    end_date: Annotated[
        date | None, Query(description="Last local day; default start_date.")
    ] = None,
    force_refresh: ForceRefresh = False,
) -> DailyResponse:
    """The WHOOP part of each local day in the range (at most 31 days)."""
    end = end_date or start_date
    for name, value in (("start_date", start_date), ("end_date", end)):
        if not date_in_range(value):
            raise _bad(name, "dates must be between 2000-01-01 and 2100-12-31")
    if end < start_date:
        raise _bad("end_date", "end_date is before start_date")
    if (end - start_date).days + 1 > MAX_DAYS:
        raise _bad("end_date", f"at most {MAX_DAYS} days at once")
    return await reader.daily(
        user_id, start_date, end, force_refresh=force_refresh, deadline=deadline
    )


@router.get("/{data_type}/{user_id}")
async def records(
    data_type: Literal["recovery", "sleep", "workouts", "cycles"],
    user_id: UserIdPath,
    reader: ReaderDep,
    deadline: DeadlineDep,
    start: Annotated[
        datetime | None, Query(description="Records starting at or after.")
    ] = None,
    end: Annotated[
        datetime | None, Query(description="Records starting before.")
    ] = None,
    force_refresh: ForceRefresh = False,
) -> RecordsResponse:
    """One data type's records starting in [start, end): default the last 7 days."""
    for name, given in (("start", start), ("end", end)):
        if given is not None and not date_in_range(given.date()):
            raise _bad(name, "times must be between 2000-01-01 and 2100-12-31")
    end_at = _aware(end) if end else datetime.now(UTC)
    start_at = _aware(start) if start else end_at - timedelta(days=7)
    if end_at <= start_at:
        raise _bad("end", "end must be after start")
    if end_at - start_at > MAX_RECORD_SPAN:
        raise _bad("end", "at most 93 days at once")
    return await reader.records(
        PATH_KINDS[data_type],
        user_id,
        start_at,
        end_at,
        force_refresh=force_refresh,
        deadline=deadline,
    )


def _aware(value: datetime) -> datetime:
    """A time without an offset is taken as UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
