from datetime import UTC, date, datetime

import pytest

from gateway import aggregate
from gateway.schemas import SUMMARY_KEYS, SahhaSourceOut, Sources, WhoopSourceOut
from shared.contracts import CycleOut, RecoveryOut, SleepOut, WhoopDayOut

T = datetime(2026, 11, 20, 7, tzinfo=UTC)


def whoop_day(**overrides) -> WhoopDayOut:
    cycle = CycleOut(
        id=1,
        start=T,
        end=None,
        timezone_offset="-04:00",
        score_state="SCORED",
        strain=12.5,
        kilojoule=8368.0,
        average_heart_rate=70,
        max_heart_rate=150,
        updated_at=T,
    )
    recovery = RecoveryOut(
        cycle_id=1,
        sleep_id="s",
        score_state="SCORED",
        recovery_score=66.0,
        resting_heart_rate=52.0,
        hrv_rmssd_milli=71.5,
        spo2_percentage=96.5,
        skin_temp_celsius=33.4,
        user_calibrating=False,
        updated_at=T,
    )
    main = SleepOut(
        id="s",
        cycle_id=1,
        start=T,
        end=T,
        timezone_offset="-04:00",
        nap=False,
        main=True,
        score_state="SCORED",
        sleep_performance_percentage=91.0,
        sleep_efficiency_percentage=90.0,
        sleep_consistency_percentage=80.0,
        respiratory_rate=15.5,
        total_in_bed_time_milli=30_000_000,
        total_light_sleep_time_milli=12_000_000,
        total_slow_wave_sleep_time_milli=6_000_000,
        total_rem_sleep_time_milli=6_000_000,
        updated_at=T,
    )
    nap = main.model_copy(
        update={
            "id": "n",
            "nap": True,
            "main": False,
            "sleep_performance_percentage": 10.0,
        }
    )
    values = {
        "date": date(2026, 11, 20),
        "cycle": cycle,
        "recovery": recovery,
        "sleeps": [nap, main],
    }
    return WhoopDayOut(**(values | overrides))


SCORES = [
    {"type": "readiness", "score": 0.5, "createdAtUtc": "2026-11-20T06:00:00Z"},
    {"type": "readiness", "score": 0.8, "createdAtUtc": "2026-11-20T09:00:00Z"},
    {"type": "sleep", "score": 0.7, "createdAtUtc": "2026-11-20T06:00:00Z"},
    {"type": "activity", "score": 0.61, "createdAtUtc": "2026-11-20T06:00:00Z"},
    {"type": "wellbeing", "score": None, "state": None},
    {"type": "mental_wellbeing", "score": 0.9},
]
BIOMARKERS = [
    {
        "type": "steps",
        "value": "8123",
        "unit": "count",
        "endDateTime": "2026-11-20T23:59:59-04:00",
    },
    {
        "type": "sleep_duration",
        "value": "7.5",
        "unit": "hour",
        "endDateTime": "2026-11-20T17:59:59-04:00",
    },
    {"type": "heart_rate_resting", "value": "58", "unit": "bpm"},
    {"type": "heart_rate_variability_rmssd", "value": "44.2", "unit": "millisecond"},
    {"type": "total_energy_burned", "value": "2400", "unit": "kcal"},
    {"type": "oxygen_saturation", "value": "0.97", "unit": "percentage"},
    {"type": "respiratory_rate", "value": "14", "unit": "breaths_per_minute"},
]


def values(summary):
    return {k: (m.value, m.source, m.metric) if m else None for k, m in summary.items()}


def test_whoop_wins_where_it_has_the_value_and_sahha_fills_the_rest():
    got = values(aggregate.summarize(SCORES, BIOMARKERS, whoop_day()))
    assert list(got) == list(SUMMARY_KEYS)
    assert got == {
        "readiness": (66.0, "whoop", "recovery_score"),
        "sleep": (91.0, "whoop", "sleep_performance_percentage"),
        "activity": (61.0, "sahha", "activity"),
        "wellbeing": None,
        "mental_wellbeing": (90.0, "sahha", "mental_wellbeing"),
        "strain": (12.5, "whoop", "strain"),
        "hrv_rmssd_ms": (71.5, "whoop", "hrv_rmssd_milli"),
        "resting_heart_rate_bpm": (52.0, "whoop", "resting_heart_rate"),
        "sleep_duration_min": (400.0, "whoop", "light_slow_wave_rem_sleep"),
        "steps": (8123.0, "sahha", "steps"),
        "energy_kcal": (2000.0, "whoop", "kilojoule"),
        "spo2_percent": (96.5, "whoop", "spo2_percentage"),
        "skin_temp_c": (33.4, "whoop", "skin_temp_celsius"),
        "respiratory_rate": (15.5, "whoop", "respiratory_rate"),
    }


def test_without_whoop_sahha_answers_on_the_0_to_100_scale():
    got = values(aggregate.summarize(SCORES, BIOMARKERS, None))
    assert got["readiness"] == (80.0, "sahha", "readiness"), (
        "the newest score of the day"
    )
    assert got["sleep"] == (70.0, "sahha", "sleep")
    assert got["sleep_duration_min"] == (450.0, "sahha", "sleep_duration")
    assert got["resting_heart_rate_bpm"] == (58.0, "sahha", "heart_rate_resting")
    assert got["hrv_rmssd_ms"] == (44.2, "sahha", "heart_rate_variability_rmssd")
    assert got["energy_kcal"] == (2400.0, "sahha", "total_energy_burned")
    assert got["spo2_percent"] == (97.0, "sahha", "oxygen_saturation")
    assert got["respiratory_rate"] == (14.0, "sahha", "respiratory_rate")
    assert got["strain"] is None
    assert got["skin_temp_c"] is None


def test_unscored_whoop_records_fall_back_to_sahha():
    day = whoop_day(recovery=None, sleeps=[])
    got = values(aggregate.summarize(SCORES, BIOMARKERS, day))
    assert got["readiness"] == (80.0, "sahha", "readiness")
    assert got["sleep"] == (70.0, "sahha", "sleep")
    assert got["strain"] == (12.5, "whoop", "strain")


def test_naps_never_count_as_the_nights_sleep():
    day = whoop_day(sleeps=[whoop_day().sleeps[0]])  # the nap only
    got = values(aggregate.summarize([], [], day))
    assert got["sleep"] is None
    assert got["sleep_duration_min"] is None


def test_unparseable_biomarker_values_are_skipped():
    assert aggregate.biomarker([{"type": "steps", "value": "lots"}], "steps") is None


def source(sahha: str, whoop: str, sahha_stale=False, whoop_stale=False) -> Sources:
    return Sources(
        sahha=SahhaSourceOut(status=sahha, stale=sahha_stale, fetched_at=None),
        whoop=WhoopSourceOut(
            status=whoop, stale=whoop_stale, last_sync_at=None, data_source=None
        ),
    )


@pytest.mark.parametrize(
    ("sahha", "whoop", "complete", "failed"),
    [
        ("ok", "ok", True, False),
        ("ok", "not_connected", True, False),
        ("ok", "timeout", False, False),
        ("unavailable", "ok", False, False),
        ("unavailable", "timeout", False, True),
        ("error", "not_connected", False, True),
        ("not_connected", "not_connected", True, False),
        ("ok", "needs_reauth", False, False),
    ],
)
def test_complete_and_failure_rules(sahha, whoop, complete, failed):
    s = source(sahha, whoop)
    assert aggregate.is_complete(s) is complete
    assert aggregate.all_connected_failed(s) is failed


def test_stale_answers_are_not_complete():
    assert not aggregate.is_complete(source("ok", "ok", whoop_stale=True))
    assert not aggregate.is_complete(source("ok", "ok", sahha_stale=True))
