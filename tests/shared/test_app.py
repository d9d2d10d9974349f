"""The operational surface every service app shares, as its OpenAPI documents it."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from shared.app import build_service_app


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield


def test_the_openapi_documents_problem_answers_including_readiness():
    app = build_service_app(title="t", version="0", lifespan=lifespan)

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    openapi = app.openapi()
    ready = openapi["paths"]["/health/ready"]["get"]["responses"]
    assert "application/problem+json" in ready["503"]["content"]
    item_422 = openapi["paths"]["/items/{item_id}"]["get"]["responses"]["422"]
    assert item_422["content"] == {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
    }
    assert "Problem" in openapi["components"]["schemas"]
    assert app.openapi() is openapi  # built once
