import httpx2
import pytest

from gateway.main import create_app
from gateway.settings import GatewaySettings
from shared.settings import ConfigurationError
from tests.conftest import running


async def test_gateway_health_and_docs(tmp_path):
    app = create_app(GatewaySettings(_env_file=None, var_dir=tmp_path))
    async with (
        running(app),
        httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app), base_url="http://gateway"
        ) as client,
    ):
        assert (await client.get("/health/live")).json() == {"status": "ok"}
        assert (await client.get("/health/ready")).json() == {
            "status": "ready",
            "checks": {},
        }
        assert (await client.get("/docs")).status_code == 200
        missing = await client.get("/api/v1/nothing-here")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"


def test_gateway_refuses_production_without_secrets(tmp_path):
    with pytest.raises(ConfigurationError, match="SAHHA_CLIENT_SECRET"):
        create_app(
            GatewaySettings(_env_file=None, var_dir=tmp_path, environment="production")
        )


async def test_gateway_limits_come_from_the_contract_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("PUBLIC_RATE_LIMIT_PER_MINUTE", "7")
    monkeypatch.setenv("SAHHA_CACHE_MAX_BYTES", "1048576")
    app = create_app(GatewaySettings(_env_file=None, var_dir=tmp_path))
    async with running(app):
        assert app.state.rate_limiter.per_minute == 7
        assert app.state.sahha._cache._max_bytes == 1048576


def test_gateway_limit_defaults(tmp_path):
    settings = GatewaySettings(_env_file=None, var_dir=tmp_path)
    assert settings.public_rate_limit_per_minute == 120
    assert settings.sahha_cache_max_bytes == 64 * 1024 * 1024
