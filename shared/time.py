"""Time helpers: every datetime in this code base is timezone-aware."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

Clock = Callable[[], datetime]

_OFFSET = re.compile(r"^(?P<sign>[+-])(?P<hh>\d{2}):?(?P<mm>\d{2})$")


def utc_now() -> datetime:
    """The current instant, in UTC."""
    return datetime.now(UTC)


def require_aware(value: datetime) -> datetime:
    """Return `value` unchanged, refusing naive datetimes (they are always a bug here)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("naive datetime: a timezone is required")
    return value


def parse_utc_offset(text: str) -> timezone:
    """Parse a W3C time-zone designator (`Z`, `+hh:mm`, `-hh:mm`) into a fixed offset."""
    if text in ("Z", "z", "+00:00", "-00:00"):
        return UTC
    match = _OFFSET.match(text)
    if match is None:
        raise ValueError(f"not a UTC offset: {text!r}")
    hours, minutes = int(match["hh"]), int(match["mm"])
    if hours > 18 or minutes > 59:
        raise ValueError(f"not a UTC offset: {text!r}")
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if match["sign"] == "-" else delta)


def isoformat_z(value: datetime) -> str:
    """UTC ISO-8601 with milliseconds and a `Z`, as WHOOP writes timestamps."""
    utc = require_aware(value).astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
