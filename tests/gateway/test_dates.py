from datetime import UTC, date, datetime

import pytest

from gateway.dates import resolve_range
from shared.errors import ValidationFailed

NOW = datetime(2026, 11, 20, 23, 30, tzinfo=UTC)


def test_today_is_in_the_callers_zone():
    assert resolve_range(None, None, None, "UTC", NOW) == (date(2026, 11, 20),) * 2
    assert (
        resolve_range(None, None, None, "Pacific/Auckland", NOW)
        == (date(2026, 11, 21),) * 2
    )
    assert (
        resolve_range(None, None, None, "America/New_York", NOW)
        == (date(2026, 11, 20),) * 2
    )


def test_one_date_or_a_range():
    assert (
        resolve_range(date(2026, 1, 2), None, None, "UTC", NOW)
        == (date(2026, 1, 2),) * 2
    )
    assert resolve_range(None, date(2026, 1, 1), date(2026, 1, 31), "UTC", NOW) == (
        date(2026, 1, 1),
        date(2026, 1, 31),
    )


@pytest.mark.parametrize(
    ("day", "start", "end", "tz", "field"),
    [
        (date(2026, 1, 1), date(2026, 1, 1), date(2026, 1, 2), "UTC", "date"),
        (None, date(2026, 1, 1), None, "UTC", "end_date"),
        (None, None, date(2026, 1, 1), "UTC", "start_date"),
        (None, date(2026, 1, 2), date(2026, 1, 1), "UTC", "end_date"),
        (None, date(2026, 1, 1), date(2026, 2, 1), "UTC", "end_date"),
        (None, None, None, "Mars/Olympus", "tz"),
        (None, None, None, "../etc/passwd", "tz"),
    ],
)
def test_bad_requests_name_the_field(day, start, end, tz, field):
    with pytest.raises(ValidationFailed) as err:
        resolve_range(day, start, end, tz, NOW)
    assert err.value.extra["errors"][0]["field"] == field
