"""Deterministic, realistic Sahha data: one profile's scores and biomarkers for one local day.

Pure: values in, values out. The same seed, externalId and local date always give the same numbers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Final

from sandbox.sahha.catalog import GENERATED_BIOMARKERS, SLEEP_CATEGORY, BiomarkerSpec
from sandbox.sahha.metrics import SLEEP_DAY_START, DayMetrics, day_metrics, day_rng
from sandbox.sahha.scoring import build_scores
from sandbox.sahha.wire import JsonObject, local_iso, local_iso_minutes, stable_uuid

# About one day in twenty has no data at all (phone left at home, app not opened).
MISSING_DAY_RATE: Final = 0.05

# Offsets a default profile may get; the extremes catch clients that read local days as UTC.
_DEFAULT_OFFSETS_MIN: Final = (
    -600,
    -420,
    -300,
    -240,
    -180,
    0,
    60,
    120,
    330,
    480,
    540,
    600,
    720,
)
_DEVICES: Final = (
    ("sahha-ios", "1.4.2", "iPhone15,2"),
    ("sahha-android", "1.3.8", "Pixel 8"),
    ("sahha-ios", "1.4.1", "iPhone14,5"),
    ("sahha-android", "1.3.8", "SM-S911B"),
)


@dataclass(frozen=True, slots=True)
class SahhaProfile:
    """One profile of the emulated account and the shape of its data."""

    external_id: str
    profile_id: str
    tz_offset: timezone
    created_at: datetime
    with_vitals: bool = True
    with_data: bool = True
    # None: about one day in twenty is missing at random; a set: exactly those days are missing.
    days_without_data: frozenset[date] | None = None
    sdk_id: str | None = None
    sdk_version: str | None = None
    device_type: str | None = None


@dataclass(frozen=True, slots=True)
class ScoreItem:
    """A score object and the instant its `scoreDateTime` stands for."""

    local_date: date
    score_at: datetime
    type: str
    body: JsonObject


@dataclass(frozen=True, slots=True)
class BiomarkerItem:
    """A biomarker object and the instant of its `startDateTime`."""

    local_date: date
    start_at: datetime
    category: str
    type: str
    body: JsonObject


@dataclass(frozen=True, slots=True)
class DayData:
    """Everything one profile has for one local day, visible from `ready_at` on."""

    local_date: date
    ready_at: datetime
    scores: tuple[ScoreItem, ...]
    biomarkers: tuple[BiomarkerItem, ...]


def default_tz_offset(external_id: str) -> timezone:
    """The UTC offset a profile gets when none is given: stable per externalId."""
    minutes = random.Random(f"tz|{external_id}").choice(_DEFAULT_OFFSETS_MIN)
    return timezone(timedelta(minutes=minutes))


def default_device(external_id: str) -> tuple[str, str, str]:
    """The (sdkId, sdkVersion, deviceType) a profile gets when its data came from an SDK."""
    return random.Random(f"device|{external_id}").choice(_DEVICES)


def generate_day(seed: int, profile: SahhaProfile, day: date) -> DayData | None:
    """The data of `day` (a local date), or None for a day without any data."""
    if not profile.with_data:
        return None
    if profile.days_without_data is not None:
        if day in profile.days_without_data:
            return None
    elif day_rng(seed, profile.external_id, day, "missing").random() < MISSING_DAY_RATE:
        return None
    metrics = day_metrics(seed, profile.external_id, profile.tz_offset, day)
    midnight = datetime.combine(day, time(0), profile.tz_offset)
    scores = tuple(
        ScoreItem(day, midnight, body["type"], body)
        for body in build_scores(
            seed, profile.external_id, metrics, with_vitals=profile.with_vitals
        )
    )
    biomarkers = tuple(
        _biomarker(seed, profile, metrics, spec)
        for spec in GENERATED_BIOMARKERS
        if profile.with_vitals or not spec.wearable_only
    )
    return DayData(day, metrics.ready_at, scores, biomarkers)


def _window(spec: BiomarkerSpec, day: date, tz: timezone) -> tuple[datetime, datetime]:
    if spec.category == SLEEP_CATEGORY:
        # A sleep day ends on the wake day at 17:59:59 local (captured sandbox data).
        start = datetime.combine(day - timedelta(days=1), SLEEP_DAY_START, tz)
    else:
        start = datetime.combine(day, time(0), tz)
    return start, start + timedelta(days=1, seconds=-1)


def _value(spec: BiomarkerSpec, m: DayMetrics) -> str:
    raw: dict[str, int | float | datetime] = {
        "steps": m.steps,
        "active_energy_burned": m.active_kcal,
        "total_energy_burned": m.total_kcal,
        "active_hours": m.active_hours,
        "sleep_duration": m.sleep_min,
        "sleep_debt": m.sleep_debt_h,
        "sleep_in_bed_duration": m.in_bed_min,
        "sleep_light_duration": m.light_min,
        "sleep_rem_duration": m.rem_min,
        "sleep_deep_duration": m.deep_min,
        "sleep_efficiency": m.sleep_efficiency,
        "sleep_start_time": m.sleep_start,
        "sleep_end_time": m.sleep_end,
        "heart_rate_resting": m.resting_hr,
        "heart_rate_variability_rmssd": m.hrv_rmssd,
        "respiratory_rate": m.respiratory_rate,
        "oxygen_saturation": m.spo2,
    }
    value = raw[spec.type]
    # Sahha sends every biomarker value as a JSON string, whatever its valueType (§3.2).
    if isinstance(value, datetime):
        return local_iso_minutes(value)
    if spec.value_type == "integer":
        return str(int(value))
    return str(float(value))


def _biomarker(
    seed: int, profile: SahhaProfile, m: DayMetrics, spec: BiomarkerSpec
) -> BiomarkerItem:
    start, end = _window(spec, m.local_date, profile.tz_offset)
    body: JsonObject = {
        "id": stable_uuid(
            seed, profile.external_id, "biomarker", spec.type, m.local_date
        ),
        "category": spec.category,
        "type": spec.type,
        "periodicity": "daily",
        "aggregation": spec.aggregation,
        "value": _value(spec, m),
        "unit": spec.unit,
        "valueType": spec.value_type,
        "startDateTime": local_iso(start),
        "endDateTime": local_iso(end),
    }
    return BiomarkerItem(m.local_date, start, spec.category, spec.type, body)
