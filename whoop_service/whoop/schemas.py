"""WHOOP's records as received (v2). Unknown fields are ignored; a missing field and `null` are
alike; `score` is present only when `score_state == "SCORED"` (whoop-api.md §3)."""

from __future__ import annotations

from typing import Generic, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

ScoreState = Literal["SCORED", "PENDING_SCORE", "UNSCORABLE"]


class WhoopModel(BaseModel):
    """Base of every wire model: tolerant of WHOOP adding fields."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class WhoopProfile(WhoopModel):
    """`GET /v2/user/profile/basic`."""

    user_id: int
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None


class CycleScore(WhoopModel):
    strain: float | None = None
    kilojoule: float | None = None
    average_heart_rate: int | None = None
    max_heart_rate: int | None = None


class WhoopCycle(WhoopModel):
    """A physiological cycle: sleep onset to the next sleep onset; `end` missing while current."""

    id: int
    user_id: int
    created_at: AwareDatetime
    updated_at: AwareDatetime
    start: AwareDatetime
    end: AwareDatetime | None = None
    timezone_offset: str
    score_state: ScoreState
    score: CycleScore | None = None


class RecoveryScore(WhoopModel):
    user_calibrating: bool | None = None
    recovery_score: float | None = None
    resting_heart_rate: float | None = None
    hrv_rmssd_milli: float | None = None
    spo2_percentage: float | None = None
    skin_temp_celsius: float | None = None


class WhoopRecovery(WhoopModel):
    """A cycle's recovery: no id of its own, keyed by `cycle_id`."""

    cycle_id: int
    sleep_id: str
    user_id: int
    created_at: AwareDatetime
    updated_at: AwareDatetime
    score_state: ScoreState
    score: RecoveryScore | None = None


class StageSummary(WhoopModel):
    total_in_bed_time_milli: int | None = None
    total_awake_time_milli: int | None = None
    total_no_data_time_milli: int | None = None
    total_light_sleep_time_milli: int | None = None
    total_slow_wave_sleep_time_milli: int | None = None
    total_rem_sleep_time_milli: int | None = None
    sleep_cycle_count: int | None = None
    disturbance_count: int | None = None


class SleepScore(WhoopModel):
    stage_summary: StageSummary | None = None
    respiratory_rate: float | None = None
    sleep_performance_percentage: float | None = None
    sleep_consistency_percentage: float | None = None
    sleep_efficiency_percentage: float | None = None


class WhoopSleep(WhoopModel):
    """A sleep or nap (UUID id), belonging to the cycle `cycle_id`."""

    id: str
    cycle_id: int
    user_id: int
    created_at: AwareDatetime
    updated_at: AwareDatetime
    start: AwareDatetime
    end: AwareDatetime
    timezone_offset: str
    nap: bool = False
    score_state: ScoreState
    score: SleepScore | None = None


class WorkoutScore(WhoopModel):
    strain: float | None = None
    average_heart_rate: int | None = None
    max_heart_rate: int | None = None
    kilojoule: float | None = None
    percent_recorded: float | None = None
    distance_meter: float | None = None
    altitude_gain_meter: float | None = None
    altitude_change_meter: float | None = None


class WhoopWorkout(WhoopModel):
    """A workout (UUID id); `sport_id` and `v1_id` are legacy and not relied on."""

    id: str
    user_id: int
    created_at: AwareDatetime
    updated_at: AwareDatetime
    start: AwareDatetime
    end: AwareDatetime
    timezone_offset: str
    sport_name: str = "unknown"
    score_state: ScoreState
    score: WorkoutScore | None = None


R = TypeVar("R", bound=WhoopModel)


class WhoopPage(WhoopModel, Generic[R]):
    """One page of a collection; an absent or empty `next_token` is the last page."""

    records: list[R] = Field(default_factory=list)
    next_token: str | None = None
