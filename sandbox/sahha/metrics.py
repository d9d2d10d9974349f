"""One profile's raw day: the numbers scores and biomarkers are both derived from.

Everything comes from `random.Random` seeded with a string, which hashes with SHA-512 and so gives
the same numbers in every process (unlike `hash()`, which PYTHONHASHSEED changes).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

# Sahha's sleep day runs from 18:00 local on the previous day (sahha-api.md §6.1).
SLEEP_DAY_START = time(18, 0)
# Scores of a day are computed after waking, never before this local hour.
READY_LOCAL_HOUR = 6


@dataclass(frozen=True, slots=True)
class _Baseline:
    steps: int
    bmr_kcal: int
    sleep_min: int
    bedtime_min: int  # minutes after 18:00 local
    resting_hr: float
    hrv_rmssd: float


@dataclass(frozen=True, slots=True)
class DayMetrics:
    """What one profile did on one local day (the night before it counts as its sleep)."""

    local_date: date
    steps: int
    active_hours: int
    active_kcal: int
    total_kcal: int
    intense_min: int
    inactivity_min: int
    sleep_start: datetime
    sleep_min: int
    in_bed_min: int
    light_min: int
    rem_min: int
    deep_min: int
    sleep_debt_h: float
    sleep_regularity: float
    circadian_deviation_min: int
    resting_hr: float
    hrv_rmssd: float
    respiratory_rate: float
    spo2: float
    walking_strain: float
    exercise_strain: float
    ready_at: datetime

    @property
    def sleep_end(self) -> datetime:
        """When the profile got out of bed (local)."""
        return self.sleep_start + timedelta(minutes=self.in_bed_min)

    @property
    def sleep_efficiency(self) -> float:
        """Asleep over in bed, as a fraction."""
        return round(self.sleep_min / self.in_bed_min, 3)


def day_rng(seed: int, external_id: str, day: date, purpose: str) -> random.Random:
    """The random stream of one profile, day and purpose."""
    return random.Random(f"{seed}|{external_id}|{day.isoformat()}|{purpose}")


def _baseline(seed: int, external_id: str) -> _Baseline:
    rng = random.Random(f"{seed}|{external_id}|baseline")
    return _Baseline(
        steps=rng.randint(4_000, 12_000),
        bmr_kcal=rng.randint(1_350, 2_000),
        sleep_min=rng.randint(380, 500),
        bedtime_min=rng.randint(210, 360),
        resting_hr=round(rng.uniform(48.0, 70.0), 1),
        hrv_rmssd=round(rng.uniform(25.0, 95.0), 1),
    )


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def day_metrics(
    seed: int, external_id: str, tz_offset: timezone, day: date
) -> DayMetrics:
    """The deterministic raw numbers of `day` (a local date) for one profile."""
    base = _baseline(seed, external_id)
    rng = day_rng(seed, external_id, day, "metrics")
    weekend = day.weekday() >= 5
    steps = int(
        _clamp(
            rng.gauss(base.steps * (0.85 if weekend else 1.0), base.steps * 0.25),
            300,
            40_000,
        )
    )
    active_kcal = int(steps * rng.uniform(0.035, 0.05))
    bedtime = int(_clamp(rng.gauss(base.bedtime_min, 35), 150, 450))
    sleep_start = datetime.combine(
        day - timedelta(days=1), SLEEP_DAY_START, tz_offset
    ) + timedelta(minutes=bedtime)
    sleep_min = int(_clamp(rng.gauss(base.sleep_min, 45), 240, 600))
    in_bed_min = sleep_min + rng.randint(8, 55)
    deep_min = round(sleep_min * rng.uniform(0.12, 0.22))
    rem_min = round(sleep_min * rng.uniform(0.18, 0.26))
    woke_at = sleep_start + timedelta(minutes=in_bed_min)
    earliest = datetime.combine(day, time(READY_LOCAL_HOUR), tz_offset)
    ready_at = max(earliest, woke_at) + timedelta(
        minutes=rng.randint(5, 50), seconds=rng.randint(0, 59)
    )
    return DayMetrics(
        local_date=day,
        steps=steps,
        active_hours=int(_clamp(round(steps / 900 + rng.uniform(-1.5, 1.5)), 1, 16)),
        active_kcal=active_kcal,
        total_kcal=base.bmr_kcal + active_kcal,
        intense_min=int(_clamp(rng.gauss(25, 15), 0, 180)),
        inactivity_min=rng.randint(30, 200),
        sleep_start=sleep_start,
        sleep_min=sleep_min,
        in_bed_min=in_bed_min,
        light_min=sleep_min - deep_min - rem_min,
        rem_min=rem_min,
        deep_min=deep_min,
        sleep_debt_h=round(max(0.0, (480 - sleep_min) / 60 + rng.uniform(0.0, 1.2)), 3),
        sleep_regularity=round(rng.uniform(0.6, 0.99), 3),
        circadian_deviation_min=abs(bedtime - base.bedtime_min),
        resting_hr=round(rng.gauss(base.resting_hr, 2.5), 1),
        hrv_rmssd=round(max(10.0, rng.gauss(base.hrv_rmssd, 9.0)), 1),
        respiratory_rate=round(rng.gauss(14.5, 1.0), 1),
        spo2=round(rng.uniform(0.94, 0.99), 3),
        walking_strain=round(rng.uniform(0.5, 1.0), 2),
        exercise_strain=round(rng.uniform(0.4, 1.0), 2),
        ready_at=ready_at,
    )
