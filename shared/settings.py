"""Settings base shared by both services.

Both apps read only environment variables (and an optional `.env`), with the exact names of
CONTRACT.md §2, so there is no prefix. Nothing here runs at import time: `create_app()` builds
settings. In development, secrets that are not set come from `shared.devsecrets` (generated once,
kept in `./var`); in production a missing secret stops start-up with one message naming every
missing variable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["development", "production", "test"]
LogFormat = Literal["console", "json"]


class ConfigurationError(RuntimeError):
    """The configuration cannot run: raised at start-up, never at request time."""


class ServiceSettings(BaseSettings):
    """Settings every service has."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    environment: Environment = "development"
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    log_format: LogFormat | None = None
    # Where development state lives (generated dev secrets, the SQLite file); not in the contract.
    var_dir: Path = Path("./var")

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def log_json(self) -> bool:
        if self.log_format is not None:
            return self.log_format == "json"
        return self.is_production

    def secrets_in_use(self) -> dict[str, object]:
        """Environment-variable name → value of every secret production must be given."""
        return {}

    def check_production(self) -> None:
        """Refuse to run in production with any secret missing, naming all of them at once."""
        if not self.is_production:
            return
        missing = [
            name for name, value in self.secrets_in_use().items() if _is_empty(value)
        ]
        if missing:
            raise ConfigurationError(
                "ENVIRONMENT=production but these variables are not set: "
                + ", ".join(sorted(missing))
            )


def _is_empty(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, SecretStr):
        return not value.get_secret_value().strip()
    if isinstance(value, str | list | tuple):
        return len(value) == 0 or all(not str(v).strip() for v in value)
    return False


def split_csv(value: object) -> object:
    """Accept `a,b,c` from the environment for list settings; pass anything else through."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value
