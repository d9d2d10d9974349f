"""Pure: merge Sahha and WHOOP into the public days, the summary and the sources block.

The summary follows CONTRACT.md §5: for each key the first source that has the value wins.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any

from gateway.schemas import (
    SUMMARY_KEYS,
    DayOut,
    Metric,
    SahhaDayOut,
    SahhaSourceOut,
    Sources,
    SourceStatus,
    WhoopDayPart,
    WhoopSourceOut,
)
from shared.contracts import SleepOut, WhoopDayOut

FAILED: frozenset[str] = frozenset({"timeout", "unavailable", "error"})
KJ_PER_KCAL = 4.184

Item = Mapping[str, Any]


def latest_score(scores: Sequence[Item], kind: str) -> float | None:
    """A Sahha score (0-1) of `kind` on the 0-100 scale; the newest if Sahha sent several."""
    found = [
        s
        for s in scores
        if s.get("type") == kind and isinstance(s.get("score"), int | float)
    ]
    if not found:
        return None
    newest = max(found, key=lambda s: str(s.get("createdAtUtc") or ""))
    return round(float(newest["score"]) * 100, 1)


def biomarker(biomarkers: Sequence[Item], kind: str) -> float | None:
    """A Sahha biomarker's number (values arrive as strings), in the unit the summary uses."""
    found = [b for b in biomarkers if b.get("type") == kind]
    if not found:
        return None
    newest = max(found, key=lambda b: str(b.get("endDateTime") or ""))
    try:
        value = float(str(newest.get("value")))
    except ValueError:
        return None
    unit = str(newest.get("unit") or "").lower()
    if unit == "hour":
        value *= 60
    elif unit in ("percentage", "percent") and value <= 1.0:
        value *= 100  # Sahha sends percentages as fractions
    return round(value, 1)


def _sleep_minutes(sleep: SleepOut | None) -> float | None:
    if sleep is None:
        return None
    parts = (
        sleep.total_light_sleep_time_milli,
        sleep.total_slow_wave_sleep_time_milli,
        sleep.total_rem_sleep_time_milli,
    )
    if any(p is None for p in parts):
        return None
    return round(sum(p for p in parts if p is not None) / 60_000, 1)


def summarize(
    scores: Sequence[Item], biomarkers: Sequence[Item], whoop: WhoopDayOut | None
) -> dict[str, Metric | None]:
    """Every summary key, `{value, source, metric}` from the first source that has it, or None."""
    cycle = whoop.cycle if whoop else None
    recovery = whoop.recovery if whoop else None
    main = next((s for s in whoop.sleeps if s.main), None) if whoop else None
    kcal = (
        round(cycle.kilojoule / KJ_PER_KCAL, 1) if cycle and cycle.kilojoule else None
    )

    def whoop_(value: float | None, metric: str) -> Callable[[], Metric | None]:
        return lambda: (
            None
            if value is None
            else Metric(value=value, source="whoop", metric=metric)
        )

    def sahha_(value: float | None, metric: str) -> Callable[[], Metric | None]:
        return lambda: (
            None
            if value is None
            else Metric(value=value, source="sahha", metric=metric)
        )

    rules: dict[str, list[Callable[[], Metric | None]]] = {
        "readiness": [
            whoop_(recovery.recovery_score if recovery else None, "recovery_score"),
            sahha_(latest_score(scores, "readiness"), "readiness"),
        ],
        "sleep": [
            whoop_(
                main.sleep_performance_percentage if main else None,
                "sleep_performance_percentage",
            ),
            sahha_(latest_score(scores, "sleep"), "sleep"),
        ],
        "activity": [sahha_(latest_score(scores, "activity"), "activity")],
        "wellbeing": [sahha_(latest_score(scores, "wellbeing"), "wellbeing")],
        "mental_wellbeing": [
            sahha_(latest_score(scores, "mental_wellbeing"), "mental_wellbeing")
        ],
        "strain": [whoop_(cycle.strain if cycle else None, "strain")],
        "hrv_rmssd_ms": [
            whoop_(recovery.hrv_rmssd_milli if recovery else None, "hrv_rmssd_milli"),
            sahha_(
                biomarker(biomarkers, "heart_rate_variability_rmssd"),
                "heart_rate_variability_rmssd",
            ),
        ],
        "resting_heart_rate_bpm": [
            whoop_(
                recovery.resting_heart_rate if recovery else None, "resting_heart_rate"
            ),
            sahha_(biomarker(biomarkers, "heart_rate_resting"), "heart_rate_resting"),
        ],
        "sleep_duration_min": [
            whoop_(_sleep_minutes(main), "light_slow_wave_rem_sleep"),
            sahha_(biomarker(biomarkers, "sleep_duration"), "sleep_duration"),
        ],
        "steps": [sahha_(biomarker(biomarkers, "steps"), "steps")],
        "energy_kcal": [
            whoop_(kcal, "kilojoule"),
            sahha_(biomarker(biomarkers, "total_energy_burned"), "total_energy_burned"),
        ],
        "spo2_percent": [
            whoop_(recovery.spo2_percentage if recovery else None, "spo2_percentage"),
            sahha_(biomarker(biomarkers, "oxygen_saturation"), "oxygen_saturation"),
        ],
        "skin_temp_c": [
            whoop_(
                recovery.skin_temp_celsius if recovery else None, "skin_temp_celsius"
            )
        ],
        "respiratory_rate": [
            whoop_(main.respiratory_rate if main else None, "respiratory_rate"),
            sahha_(biomarker(biomarkers, "respiratory_rate"), "respiratory_rate"),
        ],
    }
    out: dict[str, Metric | None] = {}
    for key in SUMMARY_KEYS:
        out[key] = next(
            (m for m in (rule() for rule in rules[key]) if m is not None), None
        )
    return out


def build_days(
    dates: Sequence[date],
    sahha_days: Mapping[date, tuple[Sequence[Item], Sequence[Item]]],
    whoop_days: Mapping[date, WhoopDayOut],
) -> list[DayOut]:
    """One merged day per date: Sahha's (scores, biomarkers) and WHOOP's records, summarized."""
    out = []
    for day in dates:
        scores, biomarkers = sahha_days.get(day, ((), ()))
        whoop = whoop_days.get(day)
        out.append(
            DayOut(
                date=day,
                summary=summarize(scores, biomarkers, whoop),
                sahha=SahhaDayOut(scores=list(scores), biomarkers=list(biomarkers)),
                whoop=WhoopDayPart(
                    cycle=whoop.cycle if whoop else None,
                    recovery=whoop.recovery if whoop else None,
                    sleeps=list(whoop.sleeps) if whoop else [],
                    workouts=list(whoop.workouts) if whoop else [],
                ),
            )
        )
    return out


def is_complete(sources: Sources) -> bool:
    """Every connected source answered with fresh data."""
    parts: list[tuple[SourceStatus, bool]] = [
        (sources.sahha.status, sources.sahha.stale),
        (sources.whoop.status, sources.whoop.stale),
    ]
    return all(
        status == "not_connected" or (status == "ok" and not stale)
        for status, stale in parts
    )


def all_connected_failed(sources: Sources) -> bool:
    """True when every connected source failed (the answer is then a 502)."""
    statuses = [
        s for s in (sources.sahha.status, sources.whoop.status) if s != "not_connected"
    ]
    return bool(statuses) and all(s in FAILED for s in statuses)


def make_sources(sahha: SahhaSourceOut, whoop: WhoopSourceOut) -> Sources:
    return Sources(sahha=sahha, whoop=whoop)
