"""Schemathesis against both services' OpenAPI: no 500, and every answer as the schema says.

Each service runs over ASGI in the test's event loop, with the harnesses' databases and emulators.
Hypothesis drives Schemathesis's generators from a worker thread and hands each request back to
that loop. Generation is derandomized and bounded per operation, so a run is quick and the same
every time. The schemas come from each app's own `/openapi.json`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from shared.contracts import USER_ID_PATTERN
from shared.problems import PROBLEM_CONTENT_TYPE
from tests.gateway.harness import make_stack, token_for
from tests.whoop_service.harness import API_KEY, make_harness

# Per operation and generation mode. A run makes about 25 WHOOP calls, well inside one minute's
# app-wide budget (90): past it, syncs and disconnects would wait for the budget to free up.
MAX_EXAMPLES = 20
AUTH_EXAMPLES = 3  # per operation and kind of bad credentials
CONNECTED_USER = "fuzz-connected-user"
SCHEMA_CHECKS = [
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# The one 5xx the contract intends with healthy upstreams (CONTRACT.md §5); any other is a failure.
GATEWAY_5XX = {"GET /api/v1/health/{user_id}": {502}}

HeadersFor = Callable[[Any], dict[str, str]]
_USER_ID = re.compile(USER_ID_PATTERN)


@dataclass
class Target:
    """One service under test: a client to its app and the schema the app serves."""

    client: httpx2.AsyncClient
    schema: Any
    headers_for: HeadersFor
    intended_5xx: Mapping[str, set[int]] = field(default_factory=dict)


async def load_schema(client: httpx2.AsyncClient) -> Any:
    resp = await client.get("/openapi.json")
    assert resp.status_code == 200, resp.text
    schema = schemathesis.openapi.from_dict(resp.json())
    # Credentials are the test's to give (below); Schemathesis does not make up its own.
    schema.config.generation.update(with_security_parameters=False)
    return schema


def operations(schema: Any) -> list[Any]:
    """Every operation; deletions last, so the connected user stays so for the others."""
    found = [result.ok() for result in schema.get_all_operations()]
    return sorted(found, key=lambda op: op.method.upper() == "DELETE")


def needs_credentials(operation: Any) -> bool:
    return bool(operation.definition.raw.get("security"))


def cases(operation: Any, mode: GenerationMode) -> Any:
    """Generated cases, half of them (where the path names a user) for the connected user."""
    generated = operation.as_strategy(generation_mode=mode)
    if "{user_id}" not in operation.path:
        return generated
    connected = operation.as_strategy(
        generation_mode=mode, path_parameters={"user_id": CONNECTED_USER}
    )
    return st.one_of(generated, connected)


def fuzz_settings(max_examples: int) -> settings:
    return settings(
        derandomize=True,
        database=None,
        max_examples=max_examples,
        deadline=None,
        # A failure is reported as found: shrinking would multiply the requests of a failing run.
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


async def fuzz(
    target: Target,
    *,
    mode: GenerationMode,
    max_examples: int = MAX_EXAMPLES,
    only: Callable[[Any], bool] = lambda op: True,
    headers_for: HeadersFor | None = None,
    expect_status: int | None = None,
) -> list[str]:
    """Run every selected operation's cases; one line of findings per failing operation."""
    loop = asyncio.get_running_loop()
    headers_for = headers_for or target.headers_for
    base_url = str(target.client.base_url).rstrip("/")

    def send(case: Any) -> httpx2.Response:
        # Schemathesis serializes the case as `requests` would send it; httpx2 sends those bytes,
        # and only those headers (`send` adds none of the client's defaults).
        kwargs = case.as_transport_kwargs(base_url=base_url, headers=headers_for(case))
        kwargs.pop("timeout", None)
        prepared = requests.Request(**kwargs).prepare()
        body = prepared.body
        assert body is None or isinstance(body, bytes | str)
        request = httpx2.Request(
            prepared.method or "GET",
            prepared.url or "",
            headers={k: str(v) for k, v in prepared.headers.items()},
            content=body,
        )
        call = target.client.send(request)
        return asyncio.run_coroutine_threadsafe(call, loop).result(timeout=60)

    def check(operation: Any, case: Any) -> None:
        resp = send(case)
        status = resp.status_code
        checks = list(SCHEMA_CHECKS)
        if mode is GenerationMode.NEGATIVE:
            checks.append(negative_data_rejection)
        if status >= 500 and status not in target.intended_5xx.get(operation.label, ()):
            checks.append(not_a_server_error)
        case.validate_response(resp, checks=checks)
        if expect_status is not None:
            curl = case.as_curl_command(base_url=base_url)
            assert status == expect_status, f"{curl} -> {status}"
            assert resp.headers["content-type"] == PROBLEM_CONTENT_TYPE

    def fuzz_operation(operation: Any) -> str | None:
        @fuzz_settings(max_examples)
        @given(case=cases(operation, mode))
        def one(case: Any) -> None:
            check(operation, case)

        try:
            one()
        except Unsatisfiable:
            # Nothing about this operation can be made invalid (no parameters, no body).
            assert mode is GenerationMode.NEGATIVE, operation.label
        except (Exception, BaseExceptionGroup) as exc:
            return f"{operation.label}: {type(exc).__name__}: {exc}"
        return None

    def run() -> list[str]:
        found = map(fuzz_operation, filter(only, operations(target.schema)))
        return [finding for finding in found if finding is not None]

    return await asyncio.to_thread(run)


def assert_no_findings(findings: list[str]) -> None:
    assert not findings, f"{len(findings)} operation(s) failed:\n\n" + "\n\n".join(
        findings
    )


# The WHOOP service


@pytest.fixture
async def whoop_service(tmp_path: Path) -> AsyncIterator[Target]:
    async with AsyncExitStack() as s:
        harness = await make_harness(
            s, f"sqlite+aiosqlite:///{tmp_path}/w.db", tmp_path
        )
        whoop_user = harness.whoop.add_user(history_days=3).user_id
        resp = await harness.connect(CONNECTED_USER, sandbox_user_id=str(whoop_user))
        assert resp.status_code == 200, resp.text
        await harness.app.state.worker.wait_idle()
        yield Target(
            harness.client,
            await load_schema(harness.client),
            headers_for=lambda case: {"X-API-Key": API_KEY},
        )


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
async def test_whoop_service_answers_as_documented(whoop_service, mode):
    assert_no_findings(await fuzz(whoop_service, mode=mode))


@pytest.mark.parametrize("key", [None, "not-the-key"])
async def test_whoop_service_refuses_without_a_valid_key(whoop_service, key):
    findings = await fuzz(
        whoop_service,
        mode=GenerationMode.POSITIVE,
        max_examples=AUTH_EXAMPLES,
        only=needs_credentials,
        headers_for=lambda case: {} if key is None else {"X-API-Key": key},
        expect_status=401,
    )
    assert_no_findings(findings)


# The gateway


def bearer_for(case: Any) -> dict[str, str]:
    """The path's own user's token; a service token where the path has no valid user id."""
    user = (case.path_parameters or {}).get("user_id")
    if isinstance(user, str) and _USER_ID.fullmatch(user):
        return {"Authorization": f"Bearer {token_for(user)}"}
    return {"Authorization": f"Bearer {token_for('backend', role='service_role')}"}


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Target]:
    async with AsyncExitStack() as s:
        stack = await make_stack(s, f"sqlite+aiosqlite:///{tmp_path}/w.db", tmp_path)
        whoop_user = stack.whoop.whoop.add_user(history_days=3).user_id
        resp = await stack.link_whoop(CONNECTED_USER, sandbox_user_id=str(whoop_user))
        assert resp.status_code == 200, resp.text
        await stack.whoop.app.state.worker.wait_idle()
        yield Target(
            stack.client,
            await load_schema(stack.client),
            headers_for=bearer_for,
            intended_5xx=GATEWAY_5XX,
        )


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
async def test_gateway_answers_as_documented(gateway, mode):
    assert_no_findings(await fuzz(gateway, mode=mode))


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-a-jwt", f"Bearer {token_for('x', exp_in_s=-3600)}"],
    ids=["missing", "malformed", "expired"],
)
async def test_gateway_refuses_without_a_valid_token(gateway, authorization):
    findings = await fuzz(
        gateway,
        mode=GenerationMode.POSITIVE,
        max_examples=AUTH_EXAMPLES,
        only=needs_credentials,
        headers_for=lambda case: (
            {"Authorization": authorization} if authorization else {}
        ),
        expect_status=401,
    )
    assert_no_findings(findings)


async def test_gateway_refuses_another_users_token(gateway):
    findings = await fuzz(
        gateway,
        mode=GenerationMode.POSITIVE,
        max_examples=AUTH_EXAMPLES,
        only=needs_credentials,
        headers_for=lambda case: {"Authorization": f"Bearer {token_for('intruder')}"},
        expect_status=403,
    )
    assert_no_findings(findings)
