"""Pure day attribution of Sahha items (CONTRACT.md §6): values in, values out.

A score belongs to the date part of its `scoreDateTime` as given. A biomarker belongs to the local
date of its `endDateTime` (sleep) or `startDateTime` (others), local meaning the offset carried in
the timestamp; that is again the date part as written, so no timestamp is ever moved to UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final

from gateway.dates import days_between

JsonObject = dict[str, Any]

SCORE_TYPES: Final = ("readiness", "sleep", "activity", "wellbeing", "mental_wellbeing")
BIOMARKER_CATEGORIES: Final = ("sleep", "activity", "vitals")
SLEEP_CATEGORY: Final = "sleep"
_ONE_DAY: Final = timedelta(days=1)


@dataclass(frozen=True)
class SahhaDay:
    """One local day of Sahha data, items as received (camelCase keys, string values)."""

    date: date
    scores: list[JsonObject]
    biomarkers: list[JsonObject]


@dataclass(frozen=True)
class Attribution:
    """Items sorted into the requested days, and how many could not be attributed at all."""

    days: dict[date, SahhaDay]
    dropped_scores: int
    dropped_biomarkers: int


def padded_window(start_date: date, end_date: date) -> tuple[str, str]:
    """`startDateTime`/`endDateTime` covering the local days start..end under any UTC offset.

    Sahha matches items by instant; local midnight runs from UTC-14 to UTC+12, and a sleep day
    starts at 18:00 the evening before, so one UTC day of padding each side covers them all.
    """
    first = datetime.combine(start_date - _ONE_DAY, time.min, UTC)
    last = datetime.combine(end_date + _ONE_DAY, time(23, 59, 59), UTC)
    return first.isoformat(), last.isoformat()


def local_date(value: object) -> date | None:
    """The date part of an ISO-8601 timestamp as written (its own offset kept); None if not one."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).date()
    except ValueError:
        return None


def score_date(item: JsonObject) -> date | None:
    """The local day a score belongs to."""
    return local_date(item.get("scoreDateTime"))


def biomarker_date(item: JsonObject) -> date | None:
    """The local day a biomarker belongs to: sleep by its end, others by their start."""
    if item.get("category") == SLEEP_CATEGORY:
        return local_date(item.get("endDateTime"))
    return local_date(item.get("startDateTime"))


def to_days(
    scores: Iterable[object],
    biomarkers: Iterable[object],
    start_date: date,
    end_date: date,
) -> Attribution:
    """Every date of start..end with its items; items of other dates (the padding) are left out."""
    days = {d: SahhaDay(d, [], []) for d in days_between(start_date, end_date)}
    dropped_scores = _sort_into(scores, score_date, days, lambda day: day.scores)
    dropped_biomarkers = _sort_into(
        biomarkers, biomarker_date, days, lambda day: day.biomarkers
    )
    return Attribution(days, dropped_scores, dropped_biomarkers)


def _sort_into(
    items: Iterable[object],
    day_of: Callable[[JsonObject], date | None],
    days: dict[date, SahhaDay],
    bucket: Callable[[SahhaDay], list[JsonObject]],
) -> int:
    dropped = 0
    for item in items:
        day = day_of(item) if isinstance(item, dict) else None
        if day is None or not isinstance(item, dict):
            dropped += 1
        elif day in days:
            bucket(days[day]).append(item)
    return dropped
