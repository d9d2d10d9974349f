"""Public response models of the gateway (CONTRACT.md §5)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from shared.contracts import CycleOut, DataSource, RecoveryOut, SleepOut, WorkoutOut

SourceStatus = Literal[
    "ok", "not_connected", "needs_reauth", "timeout", "unavailable", "error"
]

SUMMARY_KEYS = (
    "readiness",
    "sleep",
    "activity",
    "wellbeing",
    "mental_wellbeing",
    "strain",
    "hrv_rmssd_ms",
    "resting_heart_rate_bpm",
    "sleep_duration_min",
    "steps",
    "energy_kcal",
    "spo2_percent",
    "skin_temp_c",
    "respiratory_rate",
)


class Metric(BaseModel):
    """One summary value and where it came from."""

    value: float
    source: Literal["whoop", "sahha"]
    metric: str


class SahhaSourceOut(BaseModel):
    status: SourceStatus
    stale: bool
    fetched_at: datetime | None


class WhoopSourceOut(BaseModel):
    status: SourceStatus
    stale: bool
    last_sync_at: datetime | None
    data_source: DataSource | None


class Sources(BaseModel):
    sahha: SahhaSourceOut
    whoop: WhoopSourceOut


class SahhaDayOut(BaseModel):
    scores: list[dict[str, Any]] = Field(default_factory=list)
    biomarkers: list[dict[str, Any]] = Field(default_factory=list)


class WhoopDayPart(BaseModel):
    cycle: CycleOut | None = None
    recovery: RecoveryOut | None = None
    sleeps: list[SleepOut] = Field(default_factory=list)
    workouts: list[WorkoutOut] = Field(default_factory=list)


class DayOut(BaseModel):
    date: date
    summary: dict[str, Metric | None]
    sahha: SahhaDayOut
    whoop: WhoopDayPart


class HealthResponse(BaseModel):
    """`GET /api/v1/health/{user_id}`: the merged days."""

    user_id: str
    start_date: date
    end_date: date
    complete: bool
    sources: Sources
    days: list[DayOut]
