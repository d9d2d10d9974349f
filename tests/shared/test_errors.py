from typing import Annotated

import httpx2
import pytest
from fastapi import FastAPI, Path
from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from shared.errors import Conflict
from shared.observability import Metrics, RequestContextMiddleware
from shared.problems import install_error_handlers


class Body(BaseModel):
    name: str
    count: int


def make_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, metrics=Metrics(CollectorRegistry()))

    @app.get("/users/{user_id}")
    async def user(
        user_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")],
    ) -> dict[str, str]:
        return {"user_id": user_id}

    @app.post("/things")
    async def things(body: Body) -> dict[str, int]:
        return {"count": body.count}

    @app.get("/conflict")
    async def conflict() -> None:
        raise Conflict(
            "That WHOOP account is linked to another user.", code="whoop_account_taken"
        )

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret-internal-detail Bearer abcdefghijkl")

    return app


@pytest.fixture
async def client():
    transport = httpx2.ASGITransport(app=make_app(), raise_app_exceptions=False)
    async with httpx2.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


def assert_problem(resp, status: int, code: str) -> dict:
    assert resp.status_code == status
    assert resp.headers["content-type"] == "application/problem+json"
    body = resp.json()
    assert body["status"] == status
    assert body["code"] == code
    assert {"type", "title", "detail"} <= set(body)
    return body


async def test_app_error_carries_its_status_and_code(client):
    body = assert_problem(await client.get("/conflict"), 409, "whoop_account_taken")
    assert body["detail"] == "That WHOOP account is linked to another user."


async def test_validation_error_is_422_with_one_entry_per_field_and_no_echo(client):
    resp = await client.post("/things", json={"name": 5, "count": "many-secret-value"})
    body = assert_problem(resp, 422, "validation_error")
    fields = {e["field"] for e in body["errors"]}
    assert fields == {"name", "count"}
    assert "many-secret-value" not in resp.text


async def test_bad_path_parameter_is_422(client):
    body = assert_problem(
        await client.get("/users/not valid!"), 422, "validation_error"
    )
    assert body["errors"][0]["location"] == "path"


async def test_malformed_json_is_400(client):
    resp = await client.post(
        "/things", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_problem(resp, 400, "malformed_body")


async def test_unknown_route_and_method_are_problems(client):
    assert_problem(await client.get("/nowhere"), 404, "not_found")
    assert_problem(await client.delete("/conflict"), 405, "method_not_allowed")


async def test_unhandled_error_is_500_without_internals(client):
    resp = await client.get("/boom", headers={"X-Request-ID": "req-123"})
    assert_problem(resp, 500, "internal_error")
    assert "secret-internal-detail" not in resp.text
    assert "Traceback" not in resp.text
    assert resp.headers["x-request-id"] == "req-123"
