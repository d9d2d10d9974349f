"""Pure: WHOOP v2 records (the shapes and examples of whoop-openapi.yml) → the rows of their tables.

Plain values only: wire dicts validated by the `Whoop*` models, then mapped.
"""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from whoop_service.db import tables
from whoop_service.sync.mapping import cycle_row, recovery_row, sleep_row, workout_row
from whoop_service.whoop.schemas import (
    WhoopCycle,
    WhoopRecovery,
    WhoopSleep,
    WhoopWorkout,
)

SYNCED = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
CREATED = datetime(2022, 4, 24, 11, 25, 44, 774000, tzinfo=UTC)
UPDATED = datetime(2022, 4, 24, 14, 25, 44, 774000, tzinfo=UTC)
START = datetime(2022, 4, 24, 2, 25, 44, 774000, tzinfo=UTC)
END = datetime(2022, 4, 24, 10, 25, 44, 774000, tzinfo=UTC)
SLEEP_ID = "ecfc6a15-4661-442f-a9a4-f160dd7afae8"

TIMES = {
    "created_at": "2022-04-24T11:25:44.774Z",
    "updated_at": "2022-04-24T14:25:44.774Z",
}
SPAN = {
    **TIMES,
    "start": "2022-04-24T02:25:44.774Z",
    "end": "2022-04-24T10:25:44.774Z",
    "timezone_offset": "-05:00",
}
CYCLE_SCORE = {
    "strain": 5.2951527,
    "kilojoule": 8288.297,
    "average_heart_rate": 68,
    "max_heart_rate": 141,
}
RECOVERY_SCORE = {
    "user_calibrating": False,
    "recovery_score": 44.0,
    "resting_heart_rate": 64.0,
    "hrv_rmssd_milli": 31.813562,
    "spo2_percentage": 95.6875,
    "skin_temp_celsius": 33.7,
}
STAGES = {
    "total_in_bed_time_milli": 30272735,
    "total_awake_time_milli": 1403507,
    "total_no_data_time_milli": 0,
    "total_light_sleep_time_milli": 14905851,
    "total_slow_wave_sleep_time_milli": 6630370,
    "total_rem_sleep_time_milli": 5879573,
    "sleep_cycle_count": 3,
    "disturbance_count": 12,
}
SLEEP_SCORE = {
    "stage_summary": STAGES,
    "sleep_needed": {
        "baseline_milli": 27395716,
        "need_from_sleep_debt_milli": 352230,
        "need_from_recent_strain_milli": 208595,
        "need_from_recent_nap_milli": -12312,
    },
    "respiratory_rate": 16.11328125,
    "sleep_performance_percentage": 98.0,
    "sleep_consistency_percentage": 90.0,
    "sleep_efficiency_percentage": 91.69533848,
}
WORKOUT_SCORE = {
    "strain": 8.2463,
    "average_heart_rate": 123,
    "max_heart_rate": 146,
    "kilojoule": 1569.34033203125,
    "percent_recorded": 100.0,
    "distance_meter": 1772.77035916,
    "altitude_gain_meter": 46.64384460449,
    "altitude_change_meter": -0.781372010707855,
    "zone_durations": {"zone_zero_milli": 300000, "zone_one_milli": 600000},
}


def cycle(**over):
    return WhoopCycle.model_validate(
        {"id": 93845, "user_id": 10129, **SPAN, "score_state": "SCORED"}
        | {"score": CYCLE_SCORE}
        | over
    )


def recovery(**over):
    return WhoopRecovery.model_validate(
        {"cycle_id": 93845, "sleep_id": SLEEP_ID, "user_id": 10129, **TIMES}
        | {"score_state": "SCORED", "score": RECOVERY_SCORE}
        | over
    )


def sleep(**over):
    return WhoopSleep.model_validate(
        {"id": SLEEP_ID, "cycle_id": 93845, "v1_id": 93845, "user_id": 10129, **SPAN}
        | {"nap": False, "score_state": "SCORED", "score": SLEEP_SCORE}
        | over
    )


def workout(**over):
    return WhoopWorkout.model_validate(
        {"id": SLEEP_ID, "v1_id": 1043, "user_id": 9012, **SPAN, "sport_id": 1}
        | {"sport_name": "running", "score_state": "SCORED", "score": WORKOUT_SCORE}
        | over
    )


CYCLE_COLUMNS = ["strain", "kilojoule", "average_heart_rate", "max_heart_rate"]
RECOVERY_COLUMNS = list(RECOVERY_SCORE)
SLEEP_COLUMNS = [
    "sleep_performance_percentage",
    "sleep_efficiency_percentage",
    "sleep_consistency_percentage",
    "respiratory_rate",
    "total_in_bed_time_milli",
    "total_light_sleep_time_milli",
    "total_slow_wave_sleep_time_milli",
    "total_rem_sleep_time_milli",
]
WORKOUT_COLUMNS = [*CYCLE_COLUMNS, "distance_meter"]

# (map, build a record, its table, its score columns)
KINDS = {
    "cycle": (cycle_row, cycle, tables.cycles, CYCLE_COLUMNS),
    "recovery": (recovery_row, recovery, tables.recoveries, RECOVERY_COLUMNS),
    "sleep": (sleep_row, sleep, tables.sleeps, SLEEP_COLUMNS),
    "workout": (workout_row, workout, tables.workouts, WORKOUT_COLUMNS),
}


@pytest.mark.parametrize("kind", KINDS)
def test_a_row_has_exactly_the_columns_of_its_table(kind):
    to_row, build, table, _ = KINDS[kind]
    for state in ("SCORED", "PENDING_SCORE", "UNSCORABLE"):
        row = to_row(build(score_state=state), "u-1", SYNCED)
        assert set(row) == {c.name for c in table.columns}, state


@pytest.mark.parametrize("kind", KINDS)
def test_every_row_carries_our_user_whoops_user_and_the_record_times(kind):
    to_row, build, _, _ = KINDS[kind]
    record = build()
    row = to_row(record, "u-1", SYNCED)
    assert row["user_id"] == "u-1"
    assert row["whoop_user_id"] == record.user_id
    assert row["score_state"] == "SCORED"
    assert (row["created_at"], row["updated_at"]) == (CREATED, UPDATED)
    assert row["synced_at"] == SYNCED


@pytest.mark.parametrize("kind", ["cycle", "sleep", "workout"])
def test_a_timed_row_keeps_its_span_and_offset(kind):
    to_row, build, _, _ = KINDS[kind]
    row = to_row(build(), "u-1", SYNCED)
    assert (row["start"], row["end"], row["timezone_offset"]) == (START, END, "-05:00")


@pytest.mark.parametrize(
    ("offset", "start", "instant"),
    [
        (
            "-05:00",
            "2026-11-19T23:10:00-05:00",
            datetime(2026, 11, 20, 4, 10, tzinfo=UTC),
        ),
        (
            "+05:30",
            "2026-11-19T23:10:00+05:30",
            datetime(2026, 11, 19, 17, 40, tzinfo=UTC),
        ),
        (
            "+12:00",
            "2026-11-19T23:10:00+12:00",
            datetime(2026, 11, 19, 11, 10, tzinfo=UTC),
        ),
        ("Z", "2026-11-19T23:10:00Z", datetime(2026, 11, 19, 23, 10, tzinfo=UTC)),
    ],
)
def test_times_in_any_offset_are_the_same_instant_and_the_offset_is_kept_verbatim(
    offset, start, instant
):
    for to_row, build in [
        (cycle_row, cycle),
        (sleep_row, sleep),
        (workout_row, workout),
    ]:
        row = to_row(
            build(start=start, end="2026-11-20T12:00:00Z", timezone_offset=offset),
            "u-1",
            SYNCED,
        )
        assert row["start"] == instant
        assert row["start"].utcoffset() is not None
        assert row["timezone_offset"] == offset


def test_a_timestamp_without_an_offset_is_refused():
    with pytest.raises(ValueError, match="timezone"):
        cycle(start="2022-04-24T02:25:44.774")


def test_a_scored_cycle_row():
    row = cycle_row(cycle(), "u-1", SYNCED)
    assert row["id"] == 93845
    assert {k: row[k] for k in CYCLE_COLUMNS} == CYCLE_SCORE


def test_the_current_cycle_has_no_end():
    record = cycle(end=None, score_state="PENDING_SCORE", score=None)
    assert cycle_row(record, "u-1", SYNCED)["end"] is None
    assert "end" not in cycle_row(record, "u-1", SYNCED)["raw"]


def test_a_scored_recovery_row():
    row = recovery_row(recovery(), "u-1", SYNCED)
    assert (row["cycle_id"], row["sleep_id"]) == (93845, SLEEP_ID)
    assert {k: row[k] for k in RECOVERY_COLUMNS} == RECOVERY_SCORE
    assert row["user_calibrating"] is False


def test_a_recovery_without_the_4_0_measurements_has_them_empty():
    score = {
        k: v
        for k, v in RECOVERY_SCORE.items()
        if k not in ("spo2_percentage", "skin_temp_celsius")
    }
    row = recovery_row(recovery(score=score | {"user_calibrating": True}), "u", SYNCED)
    assert row["spo2_percentage"] is None
    assert row["skin_temp_celsius"] is None
    assert row["recovery_score"] == 44.0
    assert row["user_calibrating"] is True


def test_a_scored_sleep_row():
    row = sleep_row(sleep(), "u-1", SYNCED)
    assert (row["id"], row["cycle_id"], row["nap"]) == (SLEEP_ID, 93845, False)
    assert row["sleep_performance_percentage"] == 98.0
    assert row["sleep_efficiency_percentage"] == 91.69533848
    assert row["sleep_consistency_percentage"] == 90.0
    assert row["respiratory_rate"] == 16.11328125
    assert row["total_in_bed_time_milli"] == 30272735
    assert row["total_light_sleep_time_milli"] == 14905851
    assert row["total_slow_wave_sleep_time_milli"] == 6630370
    assert row["total_rem_sleep_time_milli"] == 5879573


def test_a_nap_is_a_nap_and_a_missing_nap_flag_is_not():
    assert sleep_row(sleep(nap=True), "u-1", SYNCED)["nap"] is True
    record = {**sleep().model_dump(mode="json")}
    del record["nap"]
    assert sleep_row(WhoopSleep.model_validate(record), "u-1", SYNCED)["nap"] is False


def test_a_sleep_score_without_stages_has_empty_stage_columns():
    score = {k: v for k, v in SLEEP_SCORE.items() if k != "stage_summary"}
    row = sleep_row(sleep(score=score), "u-1", SYNCED)
    assert row["sleep_performance_percentage"] == 98.0
    assert row["respiratory_rate"] == 16.11328125
    for column in SLEEP_COLUMNS[4:]:
        assert row[column] is None, column


def test_a_scored_workout_row():
    row = workout_row(workout(), "u-1", SYNCED)
    assert (row["id"], row["sport_name"], row["whoop_user_id"]) == (
        SLEEP_ID,
        "running",
        9012,
    )
    assert {k: row[k] for k in WORKOUT_COLUMNS} == {
        k: WORKOUT_SCORE[k] for k in WORKOUT_COLUMNS
    }


@pytest.mark.parametrize(
    ("sport", "stored"),
    [
        ("running", "running"),
        ("x" * 64, "x" * 64),
        # The column holds 64 characters; a longer name is cut, not refused.
        ("y" * 65, "y" * 64),
        (None, "unknown"),
    ],
)
def test_the_sport_name_fits_its_column(sport, stored):
    record = workout().model_dump(mode="json")
    if sport is None:
        del record["sport_name"]
    else:
        record["sport_name"] = sport
    row = workout_row(WhoopWorkout.model_validate(record), "u-1", SYNCED)
    assert row["sport_name"] == stored


def test_a_workout_without_a_distance_has_it_empty():
    score = {k: v for k, v in WORKOUT_SCORE.items() if k != "distance_meter"}
    row = workout_row(workout(score=score), "u-1", SYNCED)
    assert row["distance_meter"] is None
    assert row["strain"] == 8.2463


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("state", ["PENDING_SCORE", "UNSCORABLE"])
def test_an_unscored_record_has_empty_score_columns(kind, state):
    to_row, build, _, columns = KINDS[kind]
    row = to_row(build(score_state=state, score=None), "u-1", SYNCED)
    assert row["score_state"] == state
    assert {k: row[k] for k in columns} == dict.fromkeys(columns)
    assert "score" not in row["raw"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_score_sent_with_an_unscored_state_is_kept_raw_but_not_in_the_columns(kind):
    to_row, build, _, columns = KINDS[kind]
    scored = build()
    row = to_row(build(score_state="PENDING_SCORE"), "u-1", SYNCED)
    assert {k: row[k] for k in columns} == dict.fromkeys(columns)
    assert (
        row["raw"]["score"]
        == scored.model_dump(mode="json", exclude_none=True)["score"]
    )


@pytest.mark.parametrize("kind", KINDS)
def test_a_scored_record_without_a_score_has_empty_score_columns(kind):
    to_row, build, _, columns = KINDS[kind]
    row = to_row(build(score=None), "u-1", SYNCED)
    assert row["score_state"] == "SCORED"
    assert {k: row[k] for k in columns} == dict.fromkeys(columns)


def test_the_raw_payload_is_kept_as_json():
    row = sleep_row(sleep(), "u-1", SYNCED)
    raw = row["raw"]
    assert raw["id"] == SLEEP_ID
    assert raw["cycle_id"] == 93845
    assert raw["user_id"] == 10129
    assert raw["timezone_offset"] == "-05:00"
    assert raw["score_state"] == "SCORED"
    assert raw["score"]["stage_summary"] == STAGES
    assert raw["score"]["respiratory_rate"] == 16.11328125
    # Times as JSON strings of the same instants.
    assert datetime.fromisoformat(raw["start"]) == START
    assert datetime.fromisoformat(raw["created_at"]) == CREATED


def test_the_raw_payload_keeps_the_original_offset_of_a_time():
    row = workout_row(workout(start="2026-11-19T23:10:00+05:30"), "u-1", SYNCED)
    start = datetime.fromisoformat(row["raw"]["start"])
    assert start.utcoffset() == timedelta(hours=5, minutes=30)
    assert start == datetime(
        2026, 11, 19, 23, 10, tzinfo=timezone(timedelta(hours=5.5))
    )


def test_the_raw_payload_keeps_fields_without_a_column_and_leaves_out_nulls():
    score = RECOVERY_SCORE | {"spo2_percentage": None}
    raw = recovery_row(recovery(score=score), "u-1", SYNCED)["raw"]
    assert "spo2_percentage" not in raw["score"]
    assert raw["score"]["skin_temp_celsius"] == 33.7
    workout_raw = workout_row(workout(), "u-1", SYNCED)["raw"]
    assert workout_raw["score"]["percent_recorded"] == 100.0
    assert workout_raw["score"]["altitude_change_meter"] == -0.781372010707855
    sleep_raw = sleep_row(sleep(), "u-1", SYNCED)["raw"]
    assert sleep_raw["score"]["stage_summary"]["disturbance_count"] == 12
