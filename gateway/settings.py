"""Settings of the public gateway (CONTRACT.md §2), read from the environment and `.env`."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from shared.devsecrets import load_dev_secrets
from shared.settings import ConfigurationError, ServiceSettings

# RFC 7518 §3.2: an HS256 key must be at least as long as the hash output (256 bits).
MIN_HS256_SECRET_BYTES = 32


class GatewaySettings(ServiceSettings):
    """Everything the gateway is configured with."""

    sahha_api_base_url: str = "https://api.sahha.ai"
    sahha_client_id: str | None = None
    sahha_client_secret: SecretStr | None = None
    sahha_timeout_s: float = Field(10.0, gt=0)
    whoop_service_url: str = "http://127.0.0.1:8001"
    whoop_service_api_key: SecretStr | None = None
    whoop_service_timeout_s: float = Field(10.0, gt=0)
    request_deadline_s: float = Field(15.0, gt=0)
    aggregation_mode: Literal["sequential", "concurrent"] = "sequential"
    supabase_jwt_secret: SecretStr | None = None
    supabase_jwks_url: str | None = None
    jwt_audience: str = "authenticated"
    supabase_jwt_issuer: str | None = None
    app_redirect_url: str | None = None
    public_rate_limit_per_minute: int = Field(120, ge=1)
    sahha_cache_max_bytes: int = Field(64 * 1024 * 1024, gt=0)
    redis_url: str | None = None

    @model_validator(mode="after")
    def _one_key_source(self) -> GatewaySettings:
        if self.supabase_jwks_url is not None and not self.supabase_jwks_url.startswith(
            ("https://", "http://127.", "http://localhost")
        ):
            raise ValueError("SUPABASE_JWKS_URL must be an https:// URL")
        return self

    def secrets_in_use(self) -> dict[str, object]:
        needed: dict[str, object] = {
            "SAHHA_CLIENT_ID": self.sahha_client_id,
            "SAHHA_CLIENT_SECRET": self.sahha_client_secret,
            "WHOOP_SERVICE_API_KEY": self.whoop_service_api_key,
        }
        if self.supabase_jwks_url is None:
            needed["SUPABASE_JWT_SECRET (or SUPABASE_JWKS_URL)"] = (
                self.supabase_jwt_secret
            )
        return needed

    def check_production(self) -> None:
        """Also refuse, in production, an HS256 secret too short to resist brute force."""
        super().check_production()
        secret = self.supabase_jwt_secret
        if (
            not self.is_production
            or self.supabase_jwks_url is not None
            or secret is None
        ):
            return
        if len(secret.get_secret_value().encode()) < MIN_HS256_SECRET_BYTES:
            raise ConfigurationError(
                "ENVIRONMENT=production but SUPABASE_JWT_SECRET is shorter than "
                f"{MIN_HS256_SECRET_BYTES} bytes: use the project's full JWT secret, "
                "or SUPABASE_JWKS_URL"
            )

    def with_dev_defaults(self) -> GatewaySettings:
        """Fill unset secrets from `./var` in development; production must be given them."""
        self.check_production()
        if self.is_production:
            return self
        if self.whoop_service_api_key and (
            self.supabase_jwt_secret or self.supabase_jwks_url
        ):
            return self
        dev = load_dev_secrets(self.var_dir)
        update: dict[str, object] = {}
        if not self.whoop_service_api_key:
            update["whoop_service_api_key"] = SecretStr(dev.internal_api_key)
        if not (self.supabase_jwt_secret or self.supabase_jwks_url):
            update["supabase_jwt_secret"] = SecretStr(dev.supabase_jwt_secret)
        return self.model_copy(update=update)


@lru_cache
def get_settings() -> GatewaySettings:
    """The process's settings, read once from the environment."""
    return GatewaySettings().with_dev_defaults()


__all__ = ["ConfigurationError", "GatewaySettings", "get_settings"]
