"""Pure: which local calendar day each WHOOP record belongs to (CONTRACT.md §6).

Local time is the record's UTC instant shifted by its own `timezone_offset`. A cycle's main sleep is
its non-nap sleep with that `cycle_id`; the cycle, its recovery and its main sleep belong to the
local date on which that sleep ended (the wake-up day). A cycle with no main sleep yet belongs to
the local date of its start, plus one day if it started at or after 12:00 local. Naps and workouts
belong to the local date of their start.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from shared.time import parse_utc_offset

Rec = Mapping[Any, Any]
NOON = time(12, 0)


@dataclass
class WhoopDay:
    """The WHOOP records of one local day."""

    date: date
    cycle: Rec | None = None
    recovery: Rec | None = None
    sleeps: list[Rec] = field(default_factory=list)
    workouts: list[Rec] = field(default_factory=list)

    @property
    def main_sleep(self) -> Rec | None:
        if self.cycle is None:
            return None
        mains = [
            s for s in self.sleeps if not s["nap"] and s["cycle_id"] == self.cycle["id"]
        ]
        return max(mains, key=_duration) if mains else None


def local(instant: datetime, offset: str) -> datetime:
    """`instant` as wall-clock time at `offset` (WHOOP's `timezone_offset`)."""
    try:
        tz = parse_utc_offset(offset)
    except ValueError:
        # An unreadable offset: UTC rather than dropping the record.
        tz = parse_utc_offset("Z")
    return instant.astimezone(tz)


def _duration(sleep: Rec) -> timedelta:
    end: datetime = sleep["end"]
    start: datetime = sleep["start"]
    return end - start


def main_sleeps(sleeps: Iterable[Rec]) -> dict[int, Rec]:
    """cycle_id → its main sleep (the longest non-nap sleep, should WHOOP send several)."""
    out: dict[int, Rec] = {}
    for s in sleeps:
        if s["nap"]:
            continue
        current = out.get(s["cycle_id"])
        if current is None or _duration(s) > _duration(current):
            out[s["cycle_id"]] = s
    return out


def cycle_date(cycle: Rec, main_sleep: Rec | None) -> date:
    """The local day a cycle (and its recovery and main sleep) belongs to."""
    if main_sleep is not None:
        return local(main_sleep["end"], main_sleep["timezone_offset"]).date()
    start = local(cycle["start"], cycle["timezone_offset"])
    return start.date() + timedelta(days=1) if start.time() >= NOON else start.date()


def attribute(
    cycles: Iterable[Rec],
    recoveries: Iterable[Rec],
    sleeps: Iterable[Rec],
    workouts: Iterable[Rec],
    start_date: date,
    end_date: date,
) -> list[WhoopDay]:
    """One `WhoopDay` per date from `start_date` to `end_date` inclusive, records attributed."""
    days = {
        start_date + timedelta(days=i): WhoopDay(start_date + timedelta(days=i))
        for i in range((end_date - start_date).days + 1)
    }
    sleeps = list(sleeps)
    mains = main_sleeps(sleeps)
    cycle_days: dict[int, date] = {}
    for c in sorted(cycles, key=lambda c: c["start"]):
        day = cycle_date(c, mains.get(c["id"]))
        cycle_days[c["id"]] = day
        if day in days and (days[day].cycle is None or c["id"] in mains):
            # Two cycles on one day (a short cycle after travel): the one with a main sleep wins.
            days[day].cycle = c
    for s in sleeps:
        if s["nap"]:
            day = local(s["start"], s["timezone_offset"]).date()
        else:
            day = (
                cycle_days.get(s["cycle_id"])
                or local(s["end"], s["timezone_offset"]).date()
            )
        if day in days:
            days[day].sleeps.append(s)
    sleep_days = {
        s["id"]: local(s["end"], s["timezone_offset"]).date() for s in mains.values()
    }
    for r in recoveries:
        found = cycle_days.get(r["cycle_id"]) or sleep_days.get(r["sleep_id"])
        target = days.get(found) if found is not None else None
        if target is not None and (
            target.cycle is None or target.cycle["id"] == r["cycle_id"]
        ):
            target.recovery = r
    for w in workouts:
        day = local(w["start"], w["timezone_offset"]).date()
        if day in days:
            days[day].workouts.append(w)
    for d in days.values():
        d.sleeps.sort(key=lambda s: s["start"])
        d.workouts.sort(key=lambda w: w["start"])
    return [days[k] for k in sorted(days)]


def query_window(start_date: date, end_date: date) -> tuple[datetime, datetime]:
    """UTC bounds wide enough to hold every record of these local days.

    Offsets reach -12:00 and +14:00, and a cycle with its main sleep can start the evening before
    its day (or, with no sleep yet, up to a day and a half before), so two days either side.
    """
    lo = datetime.combine(start_date - timedelta(days=2), time(0), tzinfo=UTC)
    hi = datetime.combine(end_date + timedelta(days=3), time(0), tzinfo=UTC)
    return lo, hi
