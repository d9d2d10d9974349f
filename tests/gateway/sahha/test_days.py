"""Day attribution of Sahha items by CONTRACT.md §6, with plain values."""

from datetime import date
from typing import Any

from gateway.sahha.days import padded_window, to_days

NOV_19, NOV_20, NOV_21 = date(2026, 11, 19), date(2026, 11, 20), date(2026, 11, 21)


def score(when: object, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"s-{when}",
        "type": "sleep",
        "score": 0.8,
        "scoreDateTime": when,
        **extra,
    }


def marker(
    category: str, start: str | None, end: str | None, **extra: Any
) -> dict[str, Any]:
    return {
        "id": f"b-{category}-{start}",
        "category": category,
        "type": "x",
        "value": "0.948",
        "startDateTime": start,
        "endDateTime": end,
        **extra,
    }


def test_score_belongs_to_its_date_as_written_never_the_utc_date():
    plus_twelve = score("2026-11-20T00:00:00+12:00")  # 2026-11-19T12:00Z
    minus_ten = score("2026-11-19T00:00:00-10:00")  # 2026-11-19T10:00Z
    result = to_days([plus_twelve, minus_ten], [], NOV_19, NOV_20)
    assert result.days[NOV_20].scores == [plus_twelve]
    assert result.days[NOV_19].scores == [minus_ten]


def test_z_and_plus_zero_offsets_and_fractions_are_both_read():
    items = [
        score("2026-11-20T00:00:00Z"),
        score("2026-11-20T00:00:00+00:00"),
        score("2026-11-20T00:00:00.0000000+00:00"),
    ]
    result = to_days(items, [], NOV_20, NOV_20)
    assert result.days[NOV_20].scores == items
    assert result.dropped_scores == 0


def test_null_score_and_state_and_extra_fields_are_kept_as_received():
    item = score("2026-11-20T00:00:00+01:00", score=None, state=None, newField={"a": 1})
    result = to_days([item], [], NOV_20, NOV_20)
    assert result.days[NOV_20].scores == [item]
    assert result.days[NOV_20].scores[0] is item


def test_sleep_biomarker_belongs_to_its_end_day_others_to_their_start_day():
    sleep = marker("sleep", "2026-11-19T18:00:00+12:00", "2026-11-20T17:59:59+12:00")
    steps = marker("activity", "2026-11-20T00:00:00-04:00", "2026-11-20T23:59:59-04:00")
    late = marker("vitals", "2026-11-19T23:30:00-04:00", "2026-11-20T00:30:00-04:00")
    result = to_days([], [sleep, steps, late], NOV_19, NOV_20)
    assert result.days[NOV_20].biomarkers == [sleep, steps]
    assert result.days[NOV_19].biomarkers == [late]
    assert result.days[NOV_20].biomarkers[0]["value"] == "0.948"


def test_every_requested_date_is_present_and_padding_days_are_left_out():
    outside = [score("2026-11-18T00:00:00+00:00"), score("2026-11-22T00:00:00+00:00")]
    result = to_days(outside, [], NOV_19, NOV_21)
    assert list(result.days) == [NOV_19, NOV_20, NOV_21]
    assert all(d.scores == [] and d.biomarkers == [] for d in result.days.values())
    assert (result.dropped_scores, result.dropped_biomarkers) == (0, 0)


def test_items_that_cannot_be_attributed_are_dropped_and_counted():
    bad_scores = [
        {"id": "no-date"},
        score(None),
        score("yesterday"),
        score(20261120),
        "not an object",
    ]
    bad_markers = [
        marker("sleep", "2026-11-20T00:00:00Z", None),
        marker("activity", "", "2026-11-20T00:00:00Z"),
        None,
    ]
    result = to_days(bad_scores, bad_markers, NOV_20, NOV_20)
    assert (result.dropped_scores, result.dropped_biomarkers) == (5, 3)
    assert result.days[NOV_20].scores == []
    assert result.days[NOV_20].biomarkers == []


def test_padded_window_spans_a_utc_day_either_side():
    assert padded_window(NOV_20, NOV_21) == (
        "2026-11-19T00:00:00+00:00",
        "2026-11-22T23:59:59+00:00",
    )
