"""WHOOP's wire formats: timestamps, time-zone designators, ids; and the emulator's clock type."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Literal

Clock = Callable[[], datetime]
Kind = Literal["cycle", "recovery", "sleep", "workout"]
KINDS: tuple[Kind, ...] = ("cycle", "recovery", "sleep", "workout")

_TZD = re.compile(r"^(?P<sign>[+-])(?P<hh>\d{2}):(?P<mm>\d{2})$")
_INT64 = re.compile(r"^[0-9]{1,19}$")
_UUID = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)


def utc_now() -> datetime:
    """The real current instant in UTC (the default clock)."""
    return datetime.now(UTC)


def to_ms(value: datetime) -> datetime:
    """The same instant in UTC, truncated to whole milliseconds (WHOOP's precision)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime")
    utc = value.astimezone(UTC)
    return utc.replace(microsecond=utc.microsecond // 1000 * 1000)


def format_ts(value: datetime) -> str:
    """UTC ISO-8601 with milliseconds and `Z`, e.g. `2022-04-24T02:25:44.774Z`."""
    utc = to_ms(value)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def epoch_ms(value: datetime) -> int:
    """Milliseconds since the Unix epoch."""
    return int(to_ms(value).timestamp() * 1000)


def from_epoch_ms(value: int) -> datetime:
    """The UTC instant `value` milliseconds after the epoch."""
    return datetime.fromtimestamp(value / 1000, UTC)


def parse_query_ts(text: str) -> datetime:
    """A `start`/`end` query value; naive values are refused so clients always send a zone."""
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("date-time without a time-zone designator")
    return parsed.astimezone(UTC)


def parse_tzd(text: str) -> timedelta:
    """`+hh:mm`, `-hh:mm` or `Z` into an offset from UTC."""
    if text == "Z":
        return timedelta(0)
    match = _TZD.match(text)
    if match is None or int(match["hh"]) > 14 or int(match["mm"]) > 59:
        raise ValueError(f"not a time-zone designator: {text!r}")
    delta = timedelta(hours=int(match["hh"]), minutes=int(match["mm"]))
    return -delta if match["sign"] == "-" else delta


def format_tzd(offset: timedelta) -> str:
    """An offset as WHOOP writes it: always `±hh:mm` (`+00:00` for UTC)."""
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{mins:02d}"


def parse_int64(text: str) -> int:
    """A positive int64 path id; anything else raises ValueError."""
    if not _INT64.match(text) or int(text) > 2**63 - 1:
        raise ValueError(f"not an int64: {text!r}")
    return int(text)


def parse_uuid(text: str) -> str:
    """A hyphenated UUID path id, normalised to lower case; anything else raises ValueError."""
    if not _UUID.match(text):
        raise ValueError(f"not a UUID: {text!r}")
    return str(uuid.UUID(text))
