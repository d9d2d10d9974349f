import time

import httpx2
import jwt
import pytest

from gateway.main import Transports, create_app
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


def test_gateway_refuses_production_with_a_short_jwt_secret(tmp_path):
    settings = GatewaySettings(
        _env_file=None,
        var_dir=tmp_path,
        environment="production",
        sahha_client_id="c",
        sahha_client_secret="s",
        whoop_service_api_key="k",
        supabase_jwt_secret="too-short-for-hs256",
    )
    with pytest.raises(ConfigurationError, match="SUPABASE_JWT_SECRET"):
        create_app(settings)


async def test_gateway_refuses_tokens_of_another_issuer_when_one_is_set(tmp_path):
    """A token from another Supabase project (same secret) is a 401; the service is not asked."""
    secret = "gateway-test-jwt-secret-of-32-bytes-or-more"
    issuer = "https://ref.supabase.co/auth/v1"
    asked: list[httpx2.Request] = []

    def service(request: httpx2.Request) -> httpx2.Response:
        asked.append(request)
        return httpx2.Response(503)

    app = create_app(
        GatewaySettings(
            _env_file=None,
            var_dir=tmp_path,
            whoop_service_api_key="k",
            supabase_jwt_secret=secret,
            supabase_jwt_issuer=issuer,
        ),
        transports=Transports(whoop_service=httpx2.MockTransport(service)),
    )
    now = int(time.time())
    user = "user-1"

    def bearer(**claims: object) -> dict[str, str]:
        payload = {"sub": user, "aud": "authenticated", "exp": now + 600, **claims}
        return {"Authorization": f"Bearer {jwt.encode(payload, secret, 'HS256')}"}

    path = f"/api/v1/whoop/status/{user}"
    async with (
        running(app),
        httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app), base_url="http://gateway"
        ) as client,
    ):
        other = await client.get(
            path, headers=bearer(iss="https://x.supabase.co/auth/v1")
        )
        missing = await client.get(path, headers=bearer())
        assert not asked
        own = await client.get(path, headers=bearer(iss=issuer))
    for refused in (other, missing):
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "invalid_token"
    assert own.status_code != 401
    assert len(asked) == 1


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
