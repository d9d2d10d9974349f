"""Settings of the Sahha emulator, read from `SANDBOX_SAHHA_*` environment variables."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# Sahha answers "no data" both ways (sahha-api.md §4): 204 without a body, or 200 with `[]`.
EmptyAs = Literal["no_content", "empty_array"]


class SahhaSandboxSettings(BaseSettings):
    """What the emulated Sahha account looks like; built inside `create_app`, never at import."""

    model_config = SettingsConfigDict(
        env_prefix="SANDBOX_SAHHA_", extra="ignore", frozen=True
    )

    client_id: str = "sandbox-sahha-client"
    client_secret: SecretStr = SecretStr("sandbox-sahha-secret")
    token_ttl_s: int = Field(default=86_400, gt=0)
    # True: any externalId is a known profile with data; False: only profiles added in Python.
    auto_profiles: bool = True
    history_days: int = Field(default=90, ge=0, le=3_650)
    seed: int = 0
    empty_as: EmptyAs = "no_content"
