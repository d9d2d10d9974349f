"""WHOOP v2 records as JSON dicts, from the plans in `plan` and the current time.

Scores are seeded by the activity, so only the time-dependent parts (score state, `updated_at`, the
in-progress cycle's accrued strain) change as the clock moves.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sandbox.whoop.plan import Activity, Night, WhoopUser
from sandbox.whoop.wire import format_ts, format_tzd, to_ms

Record = dict[str, Any]
_HOUR_MS = 3_600_000
_DISTANCE_M_PER_MIN = {
    "running": (150.0, 220.0),
    "cycling": (300.0, 500.0),
    "walking": (70.0, 100.0),
    "swimming": (30.0, 50.0),
    "rowing": (150.0, 220.0),
    "hiking/rucking": (50.0, 80.0),
}
_CLIMBING = ("running", "cycling", "hiking/rucking")


@dataclass(frozen=True)
class Delays:
    """How long WHOOP takes to score what just ended."""

    sleep: timedelta
    workout: timedelta


def _ms(delta: timedelta) -> int:
    return int(delta.total_seconds() * 1000)


def score_state(
    activity: Activity, delay: timedelta, now: datetime
) -> tuple[str, datetime]:
    """The activity's score state at `now` and the `updated_at` that goes with it."""
    scored_at = activity.end + delay
    if activity.forced_state is not None:
        return activity.forced_state, activity.created_at
    if now < scored_at:
        return "PENDING_SCORE", activity.created_at
    return ("UNSCORABLE" if activity.unscorable else "SCORED"), scored_at


def baseline(user: WhoopUser, seed: int) -> tuple[float, float]:
    """The user's typical HRV (ms) and resting heart rate (bpm)."""
    rng = random.Random(f"{seed}:{user.user_id}:baseline")
    return rng.uniform(35, 110), rng.uniform(45, 65)


def _common(
    user: WhoopUser, activity: Activity, state: str, updated: datetime
) -> Record:
    return {
        "id": activity.id,
        "user_id": user.user_id,
        "created_at": format_ts(activity.created_at),
        "updated_at": format_ts(updated),
        "start": format_ts(activity.start),
        "end": format_ts(activity.end),
        "timezone_offset": format_tzd(activity.offset),
        "score_state": state,
    }


def sleep_record(
    user: WhoopUser,
    activity: Activity,
    night: Night,
    *,
    nap: bool,
    delays: Delays,
    now: datetime,
) -> Record:
    """A Sleep; a nap carries the cycle it falls in, a main sleep the cycle it starts."""
    state, updated = score_state(activity, delays.sleep, now)
    record = _common(user, activity, state, updated)
    record["cycle_id"] = night.cycle_id
    record["nap"] = nap
    if activity.v1_shape == "int":
        record["v1_id"] = activity.v1_id
    if state == "SCORED":
        record["score"] = sleep_score(activity, nap=nap, calibrating=night.calibrating)
    return record


def sleep_score(activity: Activity, *, nap: bool, calibrating: bool) -> Record:
    """Stage totals that add up to the time in bed, and a need split into its parts."""
    rng = random.Random(activity.seed + ":score")
    in_bed = _ms(activity.end - activity.start)
    awake = int(in_bed * rng.uniform(0.05, 0.15))
    no_data = 0 if rng.random() < 0.8 else int(in_bed * rng.uniform(0, 0.03))
    asleep = in_bed - awake - no_data
    slow_wave = int(asleep * rng.uniform(0.15, 0.25))
    rem = int(asleep * rng.uniform(0.18, 0.27))
    score: Record = {
        "stage_summary": {
            "total_in_bed_time_milli": in_bed,
            "total_awake_time_milli": awake,
            "total_no_data_time_milli": no_data,
            "total_light_sleep_time_milli": asleep - slow_wave - rem,
            "total_slow_wave_sleep_time_milli": slow_wave,
            "total_rem_sleep_time_milli": rem,
            "sleep_cycle_count": max(0, in_bed // (90 * 60_000)),
            "disturbance_count": rng.randint(0, 3) if nap else rng.randint(3, 20),
        },
        "sleep_needed": {
            "baseline_milli": int(rng.uniform(7.5, 8.5) * _HOUR_MS),
            "need_from_sleep_debt_milli": int(rng.uniform(0, 1) * _HOUR_MS),
            "need_from_recent_strain_milli": int(rng.uniform(0, 0.5) * _HOUR_MS),
            "need_from_recent_nap_milli": 0
            if rng.random() < 0.75
            else -rng.randint(1, 90) * 60_000,
        },
        "respiratory_rate": round(rng.uniform(13, 18), 4),
        "sleep_efficiency_percentage": round(rng.uniform(80, 98), 4),
    }
    # WHOOP leaves these out until it knows enough about the member's sleep.
    if not calibrating:
        score["sleep_performance_percentage"] = float(rng.randint(50, 100))
        score["sleep_consistency_percentage"] = float(rng.randint(40, 100))
    return score


def recovery_record(
    user: WhoopUser, night: Night, *, delays: Delays, now: datetime, seed: int
) -> Record | None:
    """The recovery of the night's cycle; none when its sleep could not be scored."""
    if night.sleep.unscorable:
        return None
    state, updated = score_state(night.sleep, delays.sleep, now)
    record: Record = {
        "cycle_id": night.cycle_id,
        "sleep_id": night.sleep.id,
        "user_id": user.user_id,
        "created_at": format_ts(night.sleep.created_at),
        "updated_at": format_ts(updated),
        "score_state": state,
    }
    if state == "SCORED":
        record["score"] = recovery_score(user, night, seed)
    return record


def recovery_score(user: WhoopUser, night: Night, seed: int) -> Record:
    """Recovery tracks HRV against the user's baseline; SpO2 and skin temperature need a 4.0."""
    hrv_base, rhr_base = baseline(user, seed)
    rng = random.Random(night.seed + ":recovery")
    hrv = min(150.0, max(20.0, hrv_base * rng.uniform(0.7, 1.3)))
    recovery = 55 + (hrv / hrv_base - 1) * 150 + rng.gauss(0, 8)
    score: Record = {
        "user_calibrating": night.calibrating,
        "recovery_score": float(round(min(99.0, max(1.0, recovery)))),
        "resting_heart_rate": float(
            round(min(75.0, max(40.0, rhr_base + rng.uniform(-5, 8))))
        ),
        "hrv_rmssd_milli": round(hrv, 6),
    }
    if user.device == "4.0":
        score["spo2_percentage"] = round(rng.uniform(94, 99), 4)
        score["skin_temp_celsius"] = round(rng.uniform(32, 35), 4)
    return score


def cycle_record(
    user: WhoopUser, night: Night, next_night: Night, *, ended: bool, now: datetime
) -> Record:
    """A Cycle from this night's sleep onset to the next one's; open and accruing while current."""
    rng = random.Random(night.seed + ":cycle")
    strain = min(20.9, rng.uniform(4, 16) + 1.5 * len(night.workouts))
    kilojoule = rng.uniform(6000, 11000) + 1200 * len(night.workouts)
    start, next_start = night.sleep.start, next_night.sleep.start
    if ended:
        share, updated = 1.0, next_night.sleep.created_at
    else:
        elapsed = (now - start) / (next_start - start)
        share = min(1.0, max(0.01, elapsed))
        # The open cycle is rescored continuously; WHOOP-like minute granularity.
        updated = max(
            night.sleep.created_at, to_ms(now).replace(second=0, microsecond=0)
        )
    record: Record = {
        "id": night.cycle_id,
        "user_id": user.user_id,
        "created_at": format_ts(night.sleep.created_at),
        "updated_at": format_ts(updated),
        "start": format_ts(start),
        "timezone_offset": format_tzd(night.offset),
        "score_state": "SCORED",
        "score": {
            "strain": round(strain * share, 4),
            "kilojoule": round(min(15000.0, kilojoule * share), 4),
            "average_heart_rate": rng.randint(55, 80),
            "max_heart_rate": rng.randint(130, 190),
        },
    }
    if ended:
        record["end"] = format_ts(next_start)
    return record


def workout_record(
    user: WhoopUser, activity: Activity, *, delays: Delays, now: datetime
) -> Record:
    """A WorkoutV2 with legacy fields in the shapes seen in the wild (int, null or absent)."""
    state, updated = score_state(activity, delays.workout, now)
    record = _common(user, activity, state, updated)
    sport_name, sport_id = activity.sport or ("activity", -1)
    if activity.v1_shape != "absent":
        record["v1_id"] = activity.v1_id if activity.v1_shape == "int" else None
    record["sport_name"] = sport_name
    if activity.sport_id_shown:
        record["sport_id"] = sport_id
    if state == "SCORED":
        record["score"] = workout_score(activity, sport_name)
    return record


def workout_score(activity: Activity, sport_name: str) -> Record:
    """Heart-rate zones that add up to the workout's duration, optional distance and altitude."""
    rng = random.Random(activity.seed + ":score")
    minutes = (activity.end - activity.start).total_seconds() / 60
    average = rng.randint(95, 165)
    weights = [rng.random() for _ in range(6)]
    total_ms, zones = _ms(activity.end - activity.start), []
    for weight in weights[:-1]:
        zones.append(int(total_ms * weight / sum(weights)))
    zones.append(total_ms - sum(zones))
    names = ("zero", "one", "two", "three", "four", "five")
    score: Record = {
        "strain": round(rng.uniform(3, 18), 4),
        "average_heart_rate": average,
        "max_heart_rate": average + rng.randint(10, 40),
        "kilojoule": round(minutes * rng.uniform(20, 50), 4),
        "percent_recorded": round(
            rng.uniform(85, 100) if rng.random() < 0.95 else rng.uniform(0, 85), 4
        ),
        "zone_durations": {
            f"zone_{name}_milli": ms for name, ms in zip(names, zones, strict=True)
        },
    }
    pace = _DISTANCE_M_PER_MIN.get(sport_name)
    if pace is not None and rng.random() < 0.6:
        score["distance_meter"] = round(minutes * rng.uniform(*pace), 4)
    if sport_name in _CLIMBING and rng.random() < 0.7:
        score["altitude_gain_meter"] = round(rng.uniform(5, 500), 4)
        score["altitude_change_meter"] = round(rng.uniform(-50, 50), 4)
    return score
