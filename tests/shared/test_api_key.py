import httpx2
import pytest
from fastapi import Depends, FastAPI

from shared.api_key import ApiKeyCheck
from shared.problems import install_error_handlers


def make_app(keys: list[str]) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/internal/ping", dependencies=[Depends(ApiKeyCheck(keys))])
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    return app


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"X-API-Key": "current-key"}, 200),
        ({"X-API-Key": "previous-key"}, 200),
        ({"X-API-Key": "current-key "}, 401),
        ({"X-API-Key": "wrong"}, 401),
        ({"X-API-Key": ""}, 401),
        ({}, 401),
    ],
)
async def test_any_configured_key_is_accepted(headers, status):
    app = make_app(["current-key", "previous-key"])
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url="http://t"
    ) as client:
        resp = await client.get("/internal/ping", headers=headers)
    assert resp.status_code == status
    if status == 401:
        assert resp.json()["code"] == "invalid_api_key"
        assert "current-key" not in resp.text


def test_no_keys_is_a_configuration_error():
    with pytest.raises(ValueError, match="at least one"):
        ApiKeyCheck(["", ""])
