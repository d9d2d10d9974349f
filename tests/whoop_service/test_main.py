from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.conftest import running
from whoop_service.main import create_app
from whoop_service.settings import WhoopSettings


def settings_for(tmp_path, database_url: str, **overrides) -> WhoopSettings:
    return WhoopSettings(
        _env_file=None, var_dir=tmp_path, database_url=database_url, **overrides
    )


async def get(app, path: str) -> httpx2.Response:
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url="http://whoop-service"
    ) as client:
        return await client.get(path)


async def test_ready_checks_the_sqlite_database(tmp_path):
    app = create_app(
        settings_for(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/db/whoop.db")
    )
    async with running(app):
        assert (await get(app, "/health/live")).json() == {"status": "ok"}
        ready = await get(app, "/health/ready")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "checks": {"database": "ok"}}
    assert (tmp_path / "db" / "whoop.db").exists(), (
        "the SQLite file and its folder are created"
    )


async def test_not_ready_before_start_and_when_the_database_is_down(tmp_path):
    app = create_app(
        settings_for(
            tmp_path,
            "postgresql+asyncpg://nobody@127.0.0.1:1/none",
            db_auto_migrate=False,
        )
    )
    before = await get(app, "/health/ready")
    assert before.status_code == 503
    assert before.json()["code"] == "not_ready"
    async with running(app):
        down = await get(app, "/health/ready")
    assert down.status_code == 503
    assert down.headers["content-type"] == "application/problem+json"
    assert down.json()["checks"] == {"database": "failed"}
    assert (await get(app, "/health/live")).status_code == 200


@pytest.mark.postgres
async def test_ready_checks_postgres(tmp_path, postgres_url):
    app = create_app(settings_for(tmp_path, postgres_url, db_auto_migrate=True))
    async with running(app):
        ready = await get(app, "/health/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok"}


async def test_docs_openapi_and_metrics_are_served(tmp_path):
    app = create_app(settings_for(tmp_path, "sqlite+aiosqlite:///:memory:"))
    async with running(app):
        assert (await get(app, "/docs")).status_code == 200
        spec = (await get(app, "/openapi.json")).json()
        assert "/health/ready" in spec["paths"]
        await get(app, "/health/live")
        metrics = (await get(app, "/metrics")).text
    assert (
        'http_requests_total{method="GET",route="/health/live",status="200"} 1.0'
        in metrics
    )


def problem_statuses(openapi: dict[str, Any], path: str, method: str) -> set[int]:
    responses = openapi["paths"][path][method]["responses"]
    return {
        int(status)
        for status, response in responses.items()
        if "application/problem+json" in response.get("content", {})
    }


def test_openapi_documents_the_problems_each_internal_route_answers(
    tmp_path: Path,
) -> None:
    """Found by the fuzzer: 401, 404, 409, 400 and 422 problems were undocumented."""
    openapi = create_app(
        settings_for(tmp_path, "sqlite+aiosqlite:///:memory:")
    ).openapi()
    internal = [
        (path, method)
        for path, item in openapi["paths"].items()
        if path.startswith("/internal/")
        for method in item
    ]
    assert len(internal) == 9
    for path, method in internal:
        assert {401, 422} <= problem_statuses(openapi, path, method), (path, method)
    callback = problem_statuses(openapi, "/internal/auth/callback", "post")
    assert callback == {400, 401, 422, 502, 503}
    complete = problem_statuses(openapi, "/internal/auth/complete", "post")
    assert complete == {400, 401, 403, 409, 422}
    sync = problem_statuses(openapi, "/internal/sync/{user_id}", "post")
    assert sync == {400, 401, 404, 409, 422, 429}
    assert 503 in problem_statuses(openapi, "/internal/auth/connect/{user_id}", "post")


async def test_freshness_setting_reaches_the_sync_policy(tmp_path):
    app = create_app(
        settings_for(
            tmp_path,
            "sqlite+aiosqlite:///:memory:",
            whoop_freshness_minutes="workout=15",
        )
    )
    async with running(app):
        freshness = app.state.sync_engine.policy.freshness
    assert freshness["workout"].total_seconds() == 15 * 60
    assert freshness["cycle"].total_seconds() == 120 * 60
