"""Sahha's vocabulary: score types, biomarker categories and types, and the biomarkers we generate.

The known-name sets follow the official SDK enums (sahha-api.md §3.2), so a name Sahha knows but the
emulator does not generate is valid and simply has no data, while a misspelt name is a 400.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

ScoreType = Literal["wellbeing", "activity", "sleep", "readiness", "mental_wellbeing"]
Aggregation = Literal["total", "average", "none"]
ValueType = Literal["integer", "double", "datetime"]

SCORE_TYPES: Final[tuple[ScoreType, ...]] = (
    "wellbeing",
    "activity",
    "sleep",
    "readiness",
    "mental_wellbeing",
)

SCORE_STATES: Final[tuple[str, ...]] = ("minimal", "low", "medium", "high")

BIOMARKER_CATEGORIES: Final[frozenset[str]] = frozenset(
    {
        "activity",
        "body",
        "characteristic",
        "reproductive",
        "sleep",
        "vitals",
        "exercise",
        "device",
        "nutrition",
    }
)

KNOWN_BIOMARKER_TYPES: Final[frozenset[str]] = frozenset(
    {
        # activity
        "steps",
        "floors_climbed",
        "active_hours",
        "active_duration",
        "activity_low_intensity_duration",
        "activity_mid_intensity_duration",
        "activity_high_intensity_duration",
        "activity_sedentary_duration",
        "active_energy_burned",
        "total_energy_burned",
        # body
        "height",
        "weight",
        "body_mass_index",
        "body_fat",
        "lean_mass",
        "resting_energy_burned",
        # sleep
        "sleep_start_time",
        "sleep_end_time",
        "sleep_mid_time",
        "sleep_duration",
        "sleep_debt",
        "sleep_in_bed_duration",
        "sleep_awake_duration",
        "sleep_light_duration",
        "sleep_rem_duration",
        "sleep_deep_duration",
        "sleep_regularity",
        "sleep_latency",
        "sleep_efficiency",
        # vitals
        "heart_rate_resting",
        "heart_rate_variability_sdnn",
        "heart_rate_variability_rmssd",
        "respiratory_rate",
        "oxygen_saturation",
        "vo2_max",
        "blood_glucose",
        "blood_pressure_systolic",
        "blood_pressure_diastolic",
        # characteristic, reproductive
        "age",
        "biological_sex",
        "menstrual_cycle_length",
        "menstrual_cycle_start_date",
        "menstrual_cycle_end_date",
        "menstrual_phase",
        "menstrual_phase_start_date",
        "menstrual_phase_length",
    }
)


@dataclass(frozen=True, slots=True)
class BiomarkerSpec:
    """How one generated daily biomarker is described on the wire."""

    category: str
    type: str
    aggregation: Aggregation
    unit: str
    value_type: ValueType
    wearable_only: bool = False


def _spec(
    category: str,
    type_: str,
    aggregation: Aggregation,
    unit: str,
    value_type: ValueType,
    *,
    wearable_only: bool = False,
) -> BiomarkerSpec:
    return BiomarkerSpec(category, type_, aggregation, unit, value_type, wearable_only)


# Units and value types follow captured sandbox responses where one exists (§3.2); `percentage`
# carries a fraction (0.972), as the captured sleep_regularity did.
GENERATED_BIOMARKERS: Final[tuple[BiomarkerSpec, ...]] = (
    _spec("activity", "steps", "total", "count", "integer"),
    _spec("activity", "active_energy_burned", "total", "kcal", "integer"),
    _spec("activity", "total_energy_burned", "total", "kcal", "integer"),
    _spec("activity", "active_hours", "total", "hour", "integer"),
    _spec("sleep", "sleep_duration", "total", "minute", "integer"),
    _spec("sleep", "sleep_debt", "total", "hour", "double"),
    _spec("sleep", "sleep_in_bed_duration", "total", "minute", "integer"),
    # A phone alone cannot tell sleep stages apart.
    _spec(
        "sleep",
        "sleep_light_duration",
        "total",
        "minute",
        "integer",
        wearable_only=True,
    ),
    _spec(
        "sleep", "sleep_rem_duration", "total", "minute", "integer", wearable_only=True
    ),
    _spec(
        "sleep", "sleep_deep_duration", "total", "minute", "integer", wearable_only=True
    ),
    _spec("sleep", "sleep_efficiency", "average", "percentage", "double"),
    _spec("sleep", "sleep_start_time", "none", "datetime", "datetime"),
    _spec("sleep", "sleep_end_time", "none", "datetime", "datetime"),
    _spec(
        "vitals", "heart_rate_resting", "average", "bpm", "double", wearable_only=True
    ),
    _spec(
        "vitals",
        "heart_rate_variability_rmssd",
        "average",
        "millisecond",
        "double",
        wearable_only=True,
    ),
    _spec(
        "vitals",
        "respiratory_rate",
        "average",
        "breaths_per_minute",
        "double",
        wearable_only=True,
    ),
    _spec(
        "vitals",
        "oxygen_saturation",
        "average",
        "percentage",
        "double",
        wearable_only=True,
    ),
)

SLEEP_CATEGORY: Final = "sleep"
