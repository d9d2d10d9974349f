import json
import stat

import pytest

from gateway.settings import GatewaySettings
from shared.devsecrets import load_dev_secrets
from shared.settings import ConfigurationError
from whoop_service.settings import WhoopSettings


def test_production_whoop_service_names_every_missing_secret(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = WhoopSettings(
        _env_file=None, environment="production", whoop_client_id="id"
    )
    with pytest.raises(ConfigurationError) as err:
        settings.with_dev_defaults()
    message = str(err.value)
    for name in ("INTERNAL_API_KEYS", "WHOOP_CLIENT_SECRET", "TOKEN_ENCRYPTION_KEYS"):
        assert name in message
    assert "WHOOP_CLIENT_ID" not in message
    assert not (tmp_path / "var").exists(), "production never generates secrets"


def test_production_gateway_accepts_jwks_instead_of_secret():
    settings = GatewaySettings(
        _env_file=None,
        environment="production",
        sahha_client_id="c",
        sahha_client_secret="s",
        whoop_service_api_key="k",
        supabase_jwks_url="https://project.supabase.co/auth/v1/.well-known/jwks.json",
    )
    assert settings.with_dev_defaults() is settings
    with pytest.raises(ConfigurationError, match="SUPABASE_JWT_SECRET"):
        settings.model_copy(update={"supabase_jwks_url": None}).with_dev_defaults()


def production_gateway(**overrides) -> GatewaySettings:
    values = {
        "environment": "production",
        "sahha_client_id": "c",
        "sahha_client_secret": "s",
        "whoop_service_api_key": "k",
    }
    return GatewaySettings(_env_file=None, **(values | overrides))


def test_production_gateway_refuses_an_hs256_secret_under_32_bytes():
    """CONTRACT §3: a short HS256 secret stops start-up, named, without its value."""
    short = "x" * 31
    with pytest.raises(ConfigurationError) as err:
        production_gateway(supabase_jwt_secret=short).with_dev_defaults()
    message = str(err.value)
    assert "SUPABASE_JWT_SECRET" in message
    assert "32 bytes" in message
    assert short not in message
    for enough in ("x" * 32, "\u20ac" * 11):  # bytes count, not characters: 11 x 3 = 33
        settings = production_gateway(supabase_jwt_secret=enough)
        assert settings.with_dev_defaults() is settings


def test_short_secret_is_fine_when_jwks_is_used_or_outside_production(tmp_path):
    jwks = "https://project.supabase.co/auth/v1/.well-known/jwks.json"
    settings = production_gateway(supabase_jwt_secret="short", supabase_jwks_url=jwks)
    assert settings.with_dev_defaults() is settings
    dev = GatewaySettings(
        _env_file=None,
        var_dir=tmp_path,
        whoop_service_api_key="k",
        supabase_jwt_secret="s",
    )
    assert dev.with_dev_defaults() is dev


def test_gateway_reads_the_jwt_issuer(monkeypatch):
    assert GatewaySettings(_env_file=None).supabase_jwt_issuer is None
    monkeypatch.setenv("SUPABASE_JWT_ISSUER", "https://ref.supabase.co/auth/v1")
    assert (
        GatewaySettings(_env_file=None).supabase_jwt_issuer
        == "https://ref.supabase.co/auth/v1"
    )


def test_environment_variables_use_the_contract_names(monkeypatch, tmp_path):
    monkeypatch.setenv("INTERNAL_API_KEYS", "key-one, key-two")
    monkeypatch.setenv("TOKEN_ENCRYPTION_KEYS", "a,b")
    monkeypatch.setenv("WHOOP_RATE_LIMIT_PER_MINUTE", "50")
    monkeypatch.setenv("SYNC_SCHEDULE", "06:30,18:00")
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://u@h:6543/db")
    settings = WhoopSettings(_env_file=None)
    assert [k.get_secret_value() for k in settings.internal_api_keys] == [
        "key-one",
        "key-two",
    ]
    assert settings.whoop_rate_limit_per_minute == 50
    assert settings.sync_schedule == ["06:30", "18:00"]
    assert (
        settings.auto_migrate is False
    )  # Postgres: migrations are a deploy step by default
    assert WhoopSettings(
        _env_file=None, database_url="sqlite+aiosqlite://"
    ).auto_migrate


def test_bad_schedule_slot_is_refused():
    with pytest.raises(ValueError, match="HH:MM"):
        WhoopSettings(_env_file=None, sync_schedule=["8am"])


def test_development_secrets_are_generated_once_and_shared(tmp_path):
    whoop = WhoopSettings(_env_file=None, var_dir=tmp_path).with_dev_defaults()
    gateway = GatewaySettings(_env_file=None, var_dir=tmp_path).with_dev_defaults()
    assert whoop.internal_api_keys[0].get_secret_value() == (
        gateway.whoop_service_api_key.get_secret_value()
    )
    again = WhoopSettings(_env_file=None, var_dir=tmp_path).with_dev_defaults()
    assert again.token_encryption_keys == whoop.token_encryption_keys
    path = tmp_path / "dev-secrets.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert set(json.loads(path.read_text())) == {
        "internal_api_key",
        "token_encryption_key",
        "supabase_jwt_secret",
    }


def test_explicit_secrets_win_over_generated_ones(tmp_path):
    settings = GatewaySettings(
        _env_file=None,
        var_dir=tmp_path,
        whoop_service_api_key="given",
        supabase_jwt_secret="s",
    ).with_dev_defaults()
    assert settings.whoop_service_api_key.get_secret_value() == "given"
    assert not (tmp_path / "dev-secrets.json").exists()
    assert load_dev_secrets(tmp_path).internal_api_key != "given"


def test_freshness_thresholds_are_configurable_per_type(monkeypatch):
    monkeypatch.setenv("WHOOP_FRESHNESS_MINUTES", "workout=15, sleep=240")
    settings = WhoopSettings(_env_file=None)
    assert settings.whoop_freshness_minutes == {
        "cycle": 120,
        "recovery": 120,
        "sleep": 240,
        "workout": 15,
    }
    monkeypatch.setenv("WHOOP_FRESHNESS_MINUTES", "steps=5")
    with pytest.raises(ValueError, match="type=minutes"):
        WhoopSettings(_env_file=None)
