from datetime import UTC, datetime, timedelta

import pytest

from shared.time import isoformat_z, parse_utc_offset, require_aware, utc_now


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("Z", 0),
        ("+00:00", 0),
        ("-04:00", -240),
        ("+05:30", 330),
        ("+12:00", 720),
        ("-0930", -570),
    ],
)
def test_parses_time_zone_designators(text, minutes):
    assert parse_utc_offset(text).utcoffset(None) == timedelta(minutes=minutes)


@pytest.mark.parametrize("text", ["", "EST", "+5", "+25:00", "+05:61", "05:00"])
def test_refuses_bad_offsets(text):
    with pytest.raises(ValueError, match="offset"):
        parse_utc_offset(text)


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="naive"):
        require_aware(datetime(2026, 1, 1))  # noqa: DTZ001 - the point of the test
    assert utc_now().tzinfo is UTC


def test_isoformat_z_has_milliseconds_in_utc():
    local = datetime(2026, 11, 20, 9, 12, 3, 456789, tzinfo=parse_utc_offset("+02:00"))
    assert isoformat_z(local) == "2026-11-20T07:12:03.456Z"
