from datetime import UTC, date, datetime, timedelta

import pytest

from whoop_service.days import attribute, cycle_date, query_window


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def cycle(cid: int, start: str, tz: str) -> dict:
    return {"id": cid, "start": at(start), "end": None, "timezone_offset": tz}


def sleep(sid: str, cid: int, start: str, end: str, tz: str, nap: bool = False) -> dict:
    return {
        "id": sid,
        "cycle_id": cid,
        "start": at(start),
        "end": at(end),
        "timezone_offset": tz,
        "nap": nap,
    }


@pytest.mark.parametrize("tz", ["-04:00", "+12:00", "+05:30", "+00:00"])
def test_a_night_belongs_to_the_local_wake_up_day(tz):
    # Asleep 23:10 local on the 19th, awake 06:50 local on the 20th, at any offset.
    c = cycle(1, f"2026-11-19T23:10:00{tz}", tz)
    main = sleep("s1", 1, f"2026-11-19T23:10:00{tz}", f"2026-11-20T06:50:00{tz}", tz)
    nap = sleep(
        "n1", 1, f"2026-11-20T15:00:00{tz}", f"2026-11-20T15:40:00{tz}", tz, nap=True
    )
    rec = {"cycle_id": 1, "sleep_id": "s1"}
    workout = {
        "id": "w1",
        "start": at(f"2026-11-20T18:30:00{tz}"),
        "timezone_offset": tz,
    }
    late = {"id": "w2", "start": at(f"2026-11-20T23:30:00{tz}"), "timezone_offset": tz}
    days = attribute(
        [c], [rec], [main, nap], [workout, late], date(2026, 11, 19), date(2026, 11, 21)
    )
    by_date = {d.date: d for d in days}
    day = by_date[date(2026, 11, 20)]
    assert day.cycle is c
    assert day.recovery is rec
    assert day.main_sleep is main
    assert [s["id"] for s in day.sleeps] == ["s1", "n1"]
    assert [w["id"] for w in day.workouts] == ["w1", "w2"]
    assert by_date[date(2026, 11, 19)].cycle is None
    assert by_date[date(2026, 11, 19)].sleeps == []


def test_utc_dates_would_be_wrong_for_far_offsets():
    """+12:00: the wake-up at 06:50 local on the 20th is 18:50 UTC on the 19th."""
    tz = "+12:00"
    main = sleep("s", 7, "2026-11-19T23:00:00+12:00", "2026-11-20T06:50:00+12:00", tz)
    assert main["end"].date() == date(2026, 11, 19)
    assert cycle_date(cycle(7, "2026-11-19T23:00:00+12:00", tz), main) == date(
        2026, 11, 20
    )


def test_a_cycle_without_main_sleep_uses_its_start_and_noon():
    morning = cycle(1, "2026-11-20T09:00:00-04:00", "-04:00")
    evening = cycle(2, "2026-11-20T22:30:00-04:00", "-04:00")
    noon = cycle(3, "2026-11-20T12:00:00-04:00", "-04:00")
    assert cycle_date(morning, None) == date(2026, 11, 20)
    assert cycle_date(evening, None) == date(2026, 11, 21)
    assert cycle_date(noon, None) == date(2026, 11, 21)


def test_current_cycle_still_asleep_counts_for_the_coming_day():
    # The current cycle began at 23:00 and its sleep has not ended (no sleep record yet).
    current = cycle(9, "2026-11-20T23:00:00-04:00", "-04:00")
    days = attribute([current], [], [], [], date(2026, 11, 20), date(2026, 11, 21))
    assert days[1].cycle is current
    assert days[0].cycle is None


def test_longest_non_nap_sleep_is_the_main_one():
    tz = "+00:00"
    c = cycle(1, "2026-11-19T22:00:00+00:00", tz)
    short = sleep("a", 1, "2026-11-19T22:00:00+00:00", "2026-11-19T23:00:00+00:00", tz)
    long = sleep("b", 1, "2026-11-20T00:00:00+00:00", "2026-11-20T07:00:00+00:00", tz)
    days = attribute([c], [], [short, long], [], date(2026, 11, 20), date(2026, 11, 20))
    assert days[0].main_sleep is long


def test_query_window_covers_every_offset():
    lo, hi = query_window(date(2026, 11, 20), date(2026, 11, 20))
    earliest_start = at("2026-11-19T18:00:00+14:00") - timedelta(hours=12)
    latest = at("2026-11-20T23:59:00-12:00")
    assert lo <= earliest_start
    assert hi > latest
