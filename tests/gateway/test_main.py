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
