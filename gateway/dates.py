"""Pure: the local days a health request asks for (CONTRACT.md §5)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.contracts import date_in_range
from shared.errors import ValidationFailed

MAX_DAYS = 31


def _bad(field: str, message: str) -> ValidationFailed:
    return ValidationFailed.for_field(field, message)


def resolve_range(
    day: date | None,
    start_date: date | None,
    end_date: date | None,
    tz: str,
    now: datetime,
) -> tuple[date, date]:
    """`date`, or `start_date` and `end_date` (inclusive, at most 31 days), else today in `tz`."""
    for name, value in (
        ("date", day),
        ("start_date", start_date),
        ("end_date", end_date),
    ):
        if value is not None and not date_in_range(value):
            raise _bad(name, "dates must be between 2000-01-01 and 2100-12-31")
    if day is not None and (start_date is not None or end_date is not None):
        raise _bad("date", "give date, or start_date and end_date, not both")
    if (start_date is None) != (end_date is None):
        raise _bad(
            "end_date" if end_date is None else "start_date", "give both or neither"
        )
    if day is not None:
        return day, day
    if start_date is not None and end_date is not None:
        if end_date < start_date:
            raise _bad("end_date", "end_date is before start_date")
        if (end_date - start_date).days + 1 > MAX_DAYS:
            raise _bad("end_date", f"at most {MAX_DAYS} days at once")
        return start_date, end_date
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise _bad("tz", "not an IANA time zone") from None
    today = now.astimezone(zone).date()
    return today, today


def days_between(start: date, end: date) -> list[date]:
    """Every date from start to end, inclusive."""
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]
