"""How the problem answers of `shared.problems` are documented in an app's OpenAPI."""

from typing import Annotated, Any

from fastapi import FastAPI, Path
from pydantic import BaseModel

from shared.problems import document_problems, problem_responses

PROBLEM = {"$ref": "#/components/schemas/Problem"}


class Body(BaseModel):
    name: str


def openapi_of_app() -> dict[str, Any]:
    app = FastAPI()

    @app.get("/users/{user_id}", responses=problem_responses(404))
    async def user(user_id: Annotated[str, Path(max_length=8)]) -> dict[str, str]:
        return {"user_id": user_id}

    @app.post("/things")
    async def things(body: Body) -> dict[str, str]:
        return {"name": body.name}

    @app.get("/plain")
    async def plain() -> dict[str, str]:
        return {}

    openapi = app.openapi()
    document_problems(openapi)
    return openapi


def problem_statuses(operation: dict[str, Any]) -> set[str]:
    return {
        status
        for status, response in operation["responses"].items()
        if response.get("content") == {"application/problem+json": {"schema": PROBLEM}}
    }


def test_validation_answers_are_documented_as_problems_not_fastapis_body():
    """Found by the fuzzer: FastAPI documented 422 as JSON `{detail: [...]}`."""
    openapi = openapi_of_app()
    user = openapi["paths"]["/users/{user_id}"]["get"]
    assert problem_statuses(user) == {"404", "422"}
    assert "HTTPValidationError" not in str(openapi)
    schemas = openapi["components"]["schemas"]
    assert schemas["Problem"]["required"] == [
        "type",
        "title",
        "status",
        "detail",
        "code",
    ]
    assert schemas["Problem"]["properties"]["errors"]["items"] == {
        "$ref": "#/components/schemas/ProblemFieldError"
    }
    assert "ProblemFieldError" in schemas


def test_a_json_body_documents_the_400_for_malformed_json():
    openapi = openapi_of_app()
    assert problem_statuses(openapi["paths"]["/things"]["post"]) == {"400", "422"}
    assert problem_statuses(openapi["paths"]["/plain"]["get"]) == set()


def test_problem_responses_name_the_status_and_its_description():
    declared = problem_responses(409, 502, descriptions={409: "Taken."})
    assert declared[409]["description"] == "Taken."
    assert declared[502]["description"] == "Bad Gateway"
    assert declared[502]["content"] == {"application/problem+json": {"schema": PROBLEM}}
