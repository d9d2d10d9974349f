"""The five Sahha scores of one day, with their factors, derived from that day's metrics."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Final

from sandbox.sahha.catalog import SCORE_TYPES, ScoreType
from sandbox.sahha.metrics import DayMetrics, day_rng
from sandbox.sahha.wire import JsonObject, local_iso, stable_uuid, utc_z

SCORE_VERSION: Final = 1
# Sahha leaves `score` and `state` null now and then (sahha-api.md §6.3); clients must cope.
NULL_SCORE_RATE: Final = 0.02

_FACTORS_OF: Final[dict[ScoreType, tuple[str, ...]]] = {
    "sleep": (
        "sleep_duration",
        "sleep_regularity",
        "sleep_continuity",
        "sleep_debt",
        "circadian_alignment",
        "physical_recovery",
        "mental_recovery",
    ),
    "activity": (
        "steps",
        "active_hours",
        "active_calories",
        "intense_activity_duration",
        "extended_inactivity",
    ),
    "readiness": (
        "sleep_duration",
        "sleep_debt",
        "walking_strain_capacity",
        "exercise_strain_capacity",
        "resting_heart_rate",
        "heart_rate_variability",
    ),
    "wellbeing": (
        "sleep_duration",
        "sleep_regularity",
        "steps",
        "active_hours",
        "circadian_alignment",
    ),
    "mental_wellbeing": (
        "steps",
        "active_hours",
        "sleep_regularity",
        "circadian_alignment",
        "sleep_duration",
    ),
}

# Phone-only profiles lack what needs a wearable (sahha-api.md §6.3).
_WEARABLE_FACTORS: Final = frozenset(
    {
        "sleep_continuity",
        "physical_recovery",
        "mental_recovery",
        "resting_heart_rate",
        "heart_rate_variability",
    }
)

_DATA_SOURCES: Final[dict[ScoreType, tuple[str, ...]]] = {
    "sleep": ("sleep",),
    "activity": ("activity",),
    "readiness": ("sleep", "activity"),
    "wellbeing": ("age", "sleep", "activity"),
    "mental_wellbeing": ("sleep", "activity"),
}


@dataclass(frozen=True, slots=True)
class _Factor:
    value: float
    goal: float
    unit: str
    score: float


def state_of(score: float) -> str:
    """Sahha's state word for a 0-1 score."""
    if score >= 0.75:
        return "high"
    if score >= 0.5:
        return "medium"
    if score >= 0.25:
        return "low"
    return "minimal"


def _f32(value: float) -> float:
    # Real factor numbers pass through float32 (0.438 arrives as 0.43799999356269836).
    result: float = struct.unpack("f", struct.pack("f", value))[0]
    return result


def _ratio(value: float, goal: float) -> float:
    return max(0.0, min(1.0, value / goal))


def _penalty(excess: float, span: float) -> float:
    return max(0.0, min(1.0, 1.0 - excess / span))


def _all_factors(m: DayMetrics) -> dict[str, _Factor]:
    return {
        "sleep_duration": _Factor(m.sleep_min, 480, "minute", _ratio(m.sleep_min, 480)),
        "sleep_regularity": _Factor(m.sleep_regularity, 1, "index", m.sleep_regularity),
        "sleep_continuity": _Factor(m.sleep_efficiency, 1, "index", m.sleep_efficiency),
        "sleep_debt": _Factor(m.sleep_debt_h, 0, "hour", _penalty(m.sleep_debt_h, 4.0)),
        "circadian_alignment": _Factor(
            m.circadian_deviation_min,
            30,
            "minute",
            _penalty(max(0, m.circadian_deviation_min - 30), 120.0),
        ),
        "physical_recovery": _Factor(m.deep_min, 90, "minute", _ratio(m.deep_min, 90)),
        "mental_recovery": _Factor(m.rem_min, 100, "minute", _ratio(m.rem_min, 100)),
        "steps": _Factor(m.steps, 10_000, "count", _ratio(m.steps, 10_000)),
        "active_hours": _Factor(m.active_hours, 10, "hour", _ratio(m.active_hours, 10)),
        "active_calories": _Factor(
            m.active_kcal, 500, "kcal", _ratio(m.active_kcal, 500)
        ),
        "intense_activity_duration": _Factor(
            m.intense_min, 30, "minute", _ratio(m.intense_min, 30)
        ),
        "extended_inactivity": _Factor(
            m.inactivity_min,
            60,
            "minute",
            _penalty(max(0, m.inactivity_min - 60), 180.0),
        ),
        "walking_strain_capacity": _Factor(
            m.walking_strain, 1, "index", m.walking_strain
        ),
        "exercise_strain_capacity": _Factor(
            m.exercise_strain, 1, "index", m.exercise_strain
        ),
        "resting_heart_rate": _Factor(
            m.resting_hr, 55, "bpm", _penalty(max(0.0, m.resting_hr - 55), 30.0)
        ),
        "heart_rate_variability": _Factor(
            m.hrv_rmssd, 60, "millisecond", _ratio(m.hrv_rmssd, 60)
        ),
    }


def _wire_number(value: float) -> float:
    return value if isinstance(value, int) else _f32(value)


def _factor_body(score_id: str, name: str, factor: _Factor) -> JsonObject:
    return {
        "id": stable_uuid(score_id, name),
        "name": name,
        "value": _wire_number(factor.value),
        "goal": factor.goal,
        "score": _f32(round(factor.score, 2)),
        "state": state_of(factor.score),
        "unit": factor.unit,
    }


def build_scores(
    seed: int, external_id: str, metrics: DayMetrics, *, with_vitals: bool
) -> list[JsonObject]:
    """Every score type of `metrics.local_date`, as REST score objects."""
    rng = day_rng(seed, external_id, metrics.local_date, "scores")
    factors = _all_factors(metrics)
    midnight = datetime.combine(metrics.local_date, time(0), metrics.sleep_start.tzinfo)
    bodies: list[JsonObject] = []
    for score_type in SCORE_TYPES:
        score_id = stable_uuid(
            seed, external_id, "score", score_type, metrics.local_date
        )
        names = [
            n
            for n in _FACTORS_OF[score_type]
            if with_vitals or n not in _WEARABLE_FACTORS
        ]
        created_at = metrics.ready_at - timedelta(seconds=rng.randint(0, 240))
        score: float | None = round(
            sum(factors[n].score for n in names) / len(names), 2
        )
        if rng.random() < NULL_SCORE_RATE:
            score, names = None, []
        bodies.append(
            {
                "id": score_id,
                "type": score_type,
                "state": None if score is None else state_of(score),
                "score": score,
                "factors": [_factor_body(score_id, n, factors[n]) for n in names],
                "dataSources": list(_DATA_SOURCES[score_type]),
                "scoreDateTime": local_iso(midnight),
                "createdAtUtc": utc_z(created_at),
                "version": SCORE_VERSION,
            }
        )
    return bodies
