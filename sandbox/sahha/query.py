"""Strict parsing of the query parameters of Sahha's data routes; every failure is a 400.

Where Sahha's behaviour is unconfirmed the emulator picks the strictest plausible reading
(sahha-api.md §3), so a client bug fails here rather than in production.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

from sandbox.sahha.errors import SahhaError

# Without dates a real `types=sleep` call returned 13 daily scores: the default is about two weeks.
DEFAULT_WINDOW: Final = timedelta(days=14)

_DATE_ONLY: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# An offset is required: a naive time is ambiguous, and a `+` sent unencoded arrives as a space.
_DATE_TIME: Final = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,7})?)?(?:Z|[+-]\d{2}:\d{2})$"
)


def parse_bound(name: str, text: str, *, is_end: bool) -> datetime:
    """An aware instant from an ISO-8601 date-time with offset, or a date.

    A date alone stands for that whole UTC day: its start for a start bound, its last instant
    for an end bound. A captured `endDateTime=2025-07-11` returned a score dated
    `2025-07-12T00:00:00+12:00` (12:00 UTC on the 11th), which this reading reproduces.
    """
    try:
        if _DATE_ONLY.match(text):
            day = date.fromisoformat(text)
            return datetime.combine(day, time.max if is_end else time.min, UTC)
        if _DATE_TIME.match(text):
            return datetime.fromisoformat(text)
    except ValueError:
        pass
    raise SahhaError(
        400, "query", name, f"The value '{text}' is not a valid date-time."
    )


def resolve_window(
    start_text: str | None, end_text: str | None, now: datetime
) -> tuple[datetime, datetime]:
    """The inclusive [start, end] instants a data read covers."""
    end = (
        parse_bound("endDateTime", end_text, is_end=True)
        if end_text is not None
        else now
    )
    if start_text is not None:
        start = parse_bound("startDateTime", start_text, is_end=False)
    else:
        start = end - DEFAULT_WINDOW
    if start > end:
        raise SahhaError(
            400,
            "query",
            "startDateTime",
            "startDateTime must not be after endDateTime.",
        )
    return start, end


def array_values(
    name: str, values: Sequence[str] | None, allowed: Collection[str], *, required: bool
) -> list[str] | None:
    """The distinct values of a repeated-key array parameter, each checked against `allowed`.

    A comma-joined value (`types=activity,sleep`) is not split: whether Sahha splits it is
    unconfirmed, so here it is one unknown value and a 400.
    """
    if not values:
        if required:
            raise SahhaError(400, "query", name, f"The {name} field is required.")
        return None
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise SahhaError(
            400,
            "query",
            name,
            *(f"The value '{v}' is not valid for {name}." for v in unknown),
        )
    return list(dict.fromkeys(values))


def parse_version(text: str | None) -> int | None:
    """The optional `version` filter of score reads."""
    if text is None:
        return None
    if not text.isdigit():
        raise SahhaError(
            400, "query", "version", f"The value '{text}' is not valid for version."
        )
    return int(text)
