"""Settings of the WHOOP emulator: `SANDBOX_WHOOP_*` variables, read only by `create_app`."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class WhoopSandboxSettings(BaseSettings):
    """How the emulated WHOOP app, its limits and its generated data behave."""

    model_config = SettingsConfigDict(
        env_prefix="SANDBOX_WHOOP_", extra="ignore", frozen=True
    )

    client_id: str = "sandbox-client-id"
    client_secret: SecretStr = SecretStr("sandbox-client-secret")
    # Empty: any absolute http(s) or custom-scheme URI counts as registered (handy locally).
    redirect_uris: tuple[str, ...] = ()
    rate_limit_per_minute: int = 100
    rate_limit_per_day: int = 10_000
    access_token_ttl_s: int = 3600
    # WHOOP documents no refresh-token lifetime; None keeps them valid until used or revoked.
    refresh_token_ttl_s: int | None = None
    # Hydra (which WHOOP's errors point to) revokes the whole token chain on refresh-token reuse.
    refresh_reuse_revokes_family: bool = True
    code_ttl_s: int = 600
    webhook_url: str | None = None
    webhook_poll_interval_s: float = 5.0
    webhook_timeout_s: float = 10.0
    history_days: int = 60
    seed: int = 0
    # Share of users created through /auth that change time zone half-way through their history.
    travel_share: float = 0.0
    sleep_score_delay_s: int = 45 * 60
    workout_score_delay_s: int = 20 * 60
