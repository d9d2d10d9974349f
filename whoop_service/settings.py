"""Settings of the WHOOP service (CONTRACT.md §2), read from the environment and `.env`."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from shared.devsecrets import load_dev_secrets
from shared.settings import ServiceSettings, split_csv
from whoop_service.domain import DATA_TYPES
from whoop_service.sync.plan import DEFAULT_FRESHNESS_MINUTES

DEFAULT_SCOPES = (
    "offline read:recovery read:cycles read:workout read:sleep read:profile"
    " read:body_measurement"
)


class WhoopSettings(ServiceSettings):
    """Everything the WHOOP service is configured with."""

    database_url: str = "sqlite+aiosqlite:///./var/whoop.db"
    db_auto_migrate: bool | None = None
    redis_url: str | None = None
    internal_api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list
    )
    whoop_client_id: str | None = None
    whoop_client_secret: SecretStr | None = None
    whoop_redirect_uri: str = "http://127.0.0.1:8000/api/v1/whoop/callback"
    whoop_api_base_url: str = "https://api.prod.whoop.com/developer"
    whoop_oauth_base_url: str = "https://api.prod.whoop.com/oauth/oauth2"
    whoop_scopes: str = DEFAULT_SCOPES
    whoop_rate_limit_per_minute: int = Field(100, ge=1)
    whoop_rate_limit_per_day: int = Field(10_000, ge=1)
    whoop_rate_limit_headroom: float = Field(0.9, gt=0, le=1)
    token_encryption_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list
    )
    webhook_tolerance_s: int = Field(300, ge=1)
    # How long changes announced by webhooks wait before one sync fetches them together. WHOOP
    # announces a record when it is created and again when it is scored; a second event runs the
    # batch 2 minutes later, so the wait mostly spans the scoring. 0 fetches at once.
    webhook_settle_s: int = Field(3600, ge=0, le=86_400)
    # CONTRACT.md §9: one interactive sync per user in this time (0: none), and a user's
    # interactive WHOOP data requests per UTC day.
    user_sync_cooldown_s: int = Field(60, ge=0, le=86_400)
    user_whoop_requests_per_day: int = Field(100, ge=1)
    # How old each type's data may be before a read syncs it first (minutes).
    whoop_freshness_minutes: Annotated[dict[str, int], NoDecode] = Field(
        default_factory=lambda: dict(DEFAULT_FRESHNESS_MINUTES)
    )
    # Each replica runs a job worker and the slot scheduler unless told not to.
    worker_enabled: bool = True
    scheduler_enabled: bool = True
    # How long a claimed job is a worker's; a replica that dies loses its jobs to others after it.
    job_lease_s: int = Field(300, ge=5)
    sync_schedule: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["08:00", "14:00", "20:00", "23:00"]
    )

    _split = field_validator(
        "internal_api_keys", "token_encryption_keys", "sync_schedule", mode="before"
    )(split_csv)

    @field_validator("whoop_freshness_minutes", mode="before")
    @classmethod
    def _parse_freshness(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        out: dict[str, int] = {}
        for part in filter(None, (p.strip() for p in value.split(","))):
            kind, _, minutes = part.partition("=")
            if kind.strip() not in DATA_TYPES or not minutes.strip().isdigit():
                raise ValueError(
                    f"WHOOP_FRESHNESS_MINUTES entry {part!r} is not type=minutes"
                )
            out[kind.strip()] = int(minutes)
        return out

    @field_validator("whoop_freshness_minutes")
    @classmethod
    def _complete_freshness(cls, value: dict[str, int]) -> dict[str, int]:
        return {**DEFAULT_FRESHNESS_MINUTES, **value}

    @field_validator("sync_schedule")
    @classmethod
    def _check_slots(cls, slots: list[str]) -> list[str]:
        for slot in slots:
            hh, _, mm = slot.partition(":")
            if not (hh.isdigit() and mm.isdigit() and int(hh) < 24 and int(mm) < 60):
                raise ValueError(f"SYNC_SCHEDULE slot {slot!r} is not HH:MM")
        return slots

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def auto_migrate(self) -> bool:
        return self.is_sqlite if self.db_auto_migrate is None else self.db_auto_migrate

    def secrets_in_use(self) -> dict[str, object]:
        return {
            "INTERNAL_API_KEYS": self.internal_api_keys,
            "WHOOP_CLIENT_ID": self.whoop_client_id,
            "WHOOP_CLIENT_SECRET": self.whoop_client_secret,
            "TOKEN_ENCRYPTION_KEYS": self.token_encryption_keys,
        }

    def with_dev_defaults(self) -> WhoopSettings:
        """Fill unset secrets from `./var` in development; production must be given them."""
        self.check_production()
        if self.is_production or (
            self.internal_api_keys and self.token_encryption_keys
        ):
            return self
        dev = load_dev_secrets(self.var_dir)
        return self.model_copy(
            update={
                "internal_api_keys": self.internal_api_keys
                or [SecretStr(dev.internal_api_key)],
                "token_encryption_keys": self.token_encryption_keys
                or [SecretStr(dev.token_encryption_key)],
            }
        )


@lru_cache
def get_settings() -> WhoopSettings:
    """The process's settings, read once from the environment."""
    return WhoopSettings().with_dev_defaults()
