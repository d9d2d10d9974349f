"""Models of the internal WHOOP-service API that the gateway consumes, and shared path types."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

USER_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"

# Dates outside these years are refused (422): no health data is that old or that new, and the
# limits keep date arithmetic (padding, offsets up to ±14 h) far from date.min and date.max.
EARLIEST_DATE = date(2000, 1, 1)
LATEST_DATE = date(2100, 12, 31)


def date_in_range(value: date) -> bool:
    return EARLIEST_DATE <= value <= LATEST_DATE


ConnectionState = Literal["connected", "not_connected", "needs_reauth"]


class ContractModel(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ConnectResponse(ContractModel):
    """Where to send the member's browser to approve WHOOP access."""

    authorization_url: str
    state: str
    expires_at: datetime


class CallbackRequest(ContractModel):
    """What WHOOP's redirect carried back: a `code`, or an `error` (e.g. `access_denied`)."""

    code: str | None = Field(default=None, min_length=1, max_length=2048)
    error: str | None = Field(default=None, pattern=r"^[a-z_]{1,64}$")
    state: str = Field(min_length=8, max_length=512)
    user_id: str | None = Field(
        default=None,
        pattern=USER_ID_PATTERN,
        description="When given, the state must have been issued to this user.",
    )

    @model_validator(mode="after")
    def _code_or_error(self) -> CallbackRequest:
        if (self.code is None) == (self.error is None):
            raise ValueError("exactly one of code and error is required")
        return self


class CompletionResponse(ContractModel):
    """An exchanged grant waiting for its user: the single-use token that completes the link."""

    completion: str
    expires_at: datetime


COMPLETION_FIELD = Field(
    min_length=16,
    max_length=256,
    pattern=r"^[A-Za-z0-9_-]+$",
    description="The single-use token the OAuth callback handed back to the app.",
)


class CompleteBody(ContractModel):
    """The public completion step's body (CONTRACT.md §8 step 4)."""

    completion: str = COMPLETION_FIELD


class CompleteRequest(CompleteBody):
    """The internal completion step: the token and the user finishing the link."""

    user_id: str = Field(pattern=USER_ID_PATTERN)


class CallbackResponse(ContractModel):
    """The connection made by a completed authorization."""

    user_id: str
    status: ConnectionState
    whoop_user_id: int
    scopes: list[str]


# `not_granted`: the member did not grant the type's scope; it is never requested from WHOOP.
SyncStatus = Literal["success", "partial", "failed", "not_granted"]


class TypeSyncStatus(ContractModel):
    """Where the sync of one data type stands for a user."""

    last_sync_at: datetime | None
    status: SyncStatus | None
    records_synced: int
    error: str | None
    needs_sync: bool


class ConnectionStatusResponse(ContractModel):
    """A user's WHOOP connection and per-type sync status."""

    user_id: str
    status: ConnectionState
    whoop_user_id: int | None
    scopes: list[str]
    connected_at: datetime | None
    reauth_reason: str | None
    sync: dict[str, TypeSyncStatus]


class DisconnectResponse(ContractModel):
    """What disconnecting did."""

    user_id: str
    status: ConnectionState
    was_connected: bool
    revoked_at_whoop: bool
    data_deleted: bool
    records_deleted: dict[str, int]


DataType = Literal["cycle", "recovery", "sleep", "workout"]
DataSource = Literal["database", "whoop_api", "stale_cache"]


class CycleOut(ContractModel):
    """A physiological cycle (day strain)."""

    id: int
    start: datetime
    end: datetime | None
    timezone_offset: str
    score_state: str
    strain: float | None
    kilojoule: float | None
    average_heart_rate: int | None
    max_heart_rate: int | None
    updated_at: datetime


class RecoveryOut(ContractModel):
    """A cycle's recovery."""

    cycle_id: int
    sleep_id: str
    score_state: str
    recovery_score: float | None
    resting_heart_rate: float | None
    hrv_rmssd_milli: float | None
    spo2_percentage: float | None
    skin_temp_celsius: float | None
    user_calibrating: bool | None
    updated_at: datetime


class SleepOut(ContractModel):
    """A sleep or nap; `main` marks its cycle's main sleep."""

    id: str
    cycle_id: int
    start: datetime
    end: datetime
    timezone_offset: str
    nap: bool
    main: bool = False
    score_state: str
    sleep_performance_percentage: float | None
    sleep_efficiency_percentage: float | None
    sleep_consistency_percentage: float | None
    respiratory_rate: float | None
    total_in_bed_time_milli: int | None
    total_light_sleep_time_milli: int | None
    total_slow_wave_sleep_time_milli: int | None
    total_rem_sleep_time_milli: int | None
    updated_at: datetime


class WorkoutOut(ContractModel):
    """A workout."""

    id: str
    start: datetime
    end: datetime
    timezone_offset: str
    sport_name: str
    score_state: str
    strain: float | None
    kilojoule: float | None
    average_heart_rate: int | None
    max_heart_rate: int | None
    distance_meter: float | None
    updated_at: datetime


class WhoopDayOut(ContractModel):
    """The WHOOP part of one local day."""

    date: date
    cycle: CycleOut | None = None
    recovery: RecoveryOut | None = None
    sleeps: list[SleepOut] = Field(default_factory=list)
    workouts: list[WorkoutOut] = Field(default_factory=list)


class Freshness(ContractModel):
    """Where an answer's data came from and how fresh it is."""

    data_source: DataSource
    last_sync_at: datetime | None
    stale: bool
    warning: str | None = None


class DailyResponse(Freshness):
    """`GET /internal/data/daily/{user_id}`."""

    user_id: str
    start_date: date
    end_date: date
    connection: ConnectionState
    days: list[WhoopDayOut]


class RecordsResponse(Freshness):
    """`GET /internal/data/{type}/{user_id}`: one type, oldest first."""

    user_id: str
    data_type: DataType
    start: datetime
    end: datetime
    connection: ConnectionState
    records: list[CycleOut] | list[RecoveryOut] | list[SleepOut] | list[WorkoutOut]


class SyncRequest(ContractModel):
    """`POST /internal/sync/{user_id}`: all types and the incremental window by default."""

    model_config = ConfigDict(extra="forbid")

    data_types: list[DataType] | None = Field(default=None, min_length=1)
    start_date: date | None = None
    end_date: date | None = None

    @model_validator(mode="after")
    def _range(self) -> SyncRequest:
        for value in (self.start_date, self.end_date):
            if value is not None and not date_in_range(value):
                raise ValueError("dates must be between 2000-01-01 and 2100-12-31")
        if self.end_date is not None and self.start_date is None:
            raise ValueError("end_date needs start_date")
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ValueError("end_date is before start_date")
        return self


class SyncResponse(ContractModel):
    """What a sync did: records stored or changed per type, requests made, overall status."""

    user_id: str
    synced: dict[str, int]
    api_calls: int
    status: Literal["success", "partial", "failed"]
    errors: dict[str, str] = Field(default_factory=dict)


class SyncStatusResponse(ContractModel):
    """`GET /internal/sync/status/{user_id}`."""

    user_id: str
    sync: dict[str, TypeSyncStatus]
    jobs: dict[str, int] = Field(
        default_factory=dict,
        description="The user's queued, running, done and dead jobs.",
    )


class WebhookReceipt(ContractModel):
    """`POST /webhooks/whoop` (both services): the event was stored, or had been before."""

    status: Literal["accepted", "duplicate"]
