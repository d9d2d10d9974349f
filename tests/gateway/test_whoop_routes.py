"""Connecting, syncing and disconnecting WHOOP through the gateway, and the webhook relay."""

import re
from pathlib import Path

import httpx2
import pytest

from tests.gateway.test_health_api import (
    USER,
    connect,
    gateway_openapi,
    problem_statuses,
)


async def test_connect_end_to_end_then_status_sync_and_disconnect(stack):
    whoop_user = await connect(stack)
    status = await stack.get(f"/api/v1/whoop/status/{USER}", USER)
    assert status.status_code == 200
    assert status.json()["status"] == "connected"
    assert status.json()["whoop_user_id"] == whoop_user
    synced = await stack.send("POST", f"/api/v1/whoop/sync/{USER}", USER)
    assert synced.status_code == 200, synced.text
    assert synced.json()["status"] == "success"
    assert synced.json()["api_calls"] <= 4
    sources = (await stack.get(f"/api/v1/health/sources/{USER}", USER)).json()[
        "sources"
    ]
    assert sources["whoop"]["connected"] is True
    assert sources["whoop"]["last_data_at"] is not None
    assert sources["sahha"]["connected"] is True
    gone = await stack.send(
        "DELETE", f"/api/v1/whoop/connect/{USER}", USER, params={"delete_data": "true"}
    )
    assert gone.status_code == 200
    assert gone.json()["revoked_at_whoop"] is True
    assert gone.json()["records_deleted"]["cycle"] > 0
    after = await stack.get(f"/api/v1/whoop/status/{USER}", USER)
    assert after.json()["status"] == "not_connected"


async def test_connecting_twice_never_makes_a_second_account(stack):
    whoop_user = await connect(stack)
    again = await stack.link_whoop(USER, sandbox_user_id=str(whoop_user))
    assert again.json()["status"] == "connected"
    status = (await stack.get(f"/api/v1/whoop/status/{USER}", USER)).json()
    assert status["whoop_user_id"] == whoop_user


async def test_a_declined_connection_redirects_with_the_reason(stack):
    resp = await stack.connect_whoop(USER, sandbox_action="deny")
    assert resp.status_code == 302
    assert (
        resp.headers["location"] == "hosapp://whoop?status=error&reason=access_denied"
    )


async def test_a_forged_callback_redirects_with_an_error_and_connects_nobody(stack):
    resp = await stack.client.get(
        "/api/v1/whoop/callback",
        params={"code": "x", "state": "forged-state-value-123"},
    )
    assert (
        resp.headers["location"] == "hosapp://whoop?status=error&reason=invalid_state"
    )
    missing = await stack.client.get("/api/v1/whoop/callback", params={"code": "x"})
    assert (
        missing.headers["location"]
        == "hosapp://whoop?status=error&reason=invalid_request"
    )
    for params in (
        {"code": "x", "state": "s" * 513},
        {"code": "x" * 2049, "state": "forged-state-value-123"},
        {"error": "e" * 65, "state": "forged-state-value-123"},
    ):
        too_long = await stack.client.get("/api/v1/whoop/callback", params=params)
        assert too_long.status_code == 302, too_long.text
        assert (
            too_long.headers["location"]
            == "hosapp://whoop?status=error&reason=invalid_request"
        )


@pytest.mark.parametrize("stack", [{"app_redirect_url": None}], indirect=True)
async def test_without_an_app_url_the_callback_shows_a_small_page(stack):
    ok = await stack.connect_whoop(USER)
    assert ok.status_code == 200
    assert "return to the app" in ok.text
    completion = re.search(r"<code>([A-Za-z0-9_-]+)</code>", ok.text)
    assert completion is not None
    linked = await stack.send(
        "POST",
        f"/api/v1/whoop/connect/{USER}/complete",
        USER,
        json={"completion": completion.group(1)},
    )
    assert linked.status_code == 200, linked.text
    bad = await stack.client.get(
        "/api/v1/whoop/callback",
        params={"error": "access_denied", "state": "<script>x</script>"},
    )
    assert bad.status_code == 400
    assert "<script>" not in bad.text


async def test_whoop_routes_check_the_caller(stack):
    assert (await stack.client.post(f"/api/v1/whoop/connect/{USER}")).status_code == 401
    other = await stack.send("POST", f"/api/v1/whoop/connect/{USER}", "someone-else")
    assert other.status_code == 403
    not_connected = await stack.send("POST", f"/api/v1/whoop/sync/{USER}", USER)
    assert not_connected.status_code == 404
    assert not_connected.json()["code"] == "not_connected"


async def test_whoop_service_down_is_a_502_problem_on_whoop_routes(stack):
    stack.service_faults.mode = "down"
    resp = await stack.send("POST", f"/api/v1/whoop/connect/{USER}", USER)
    assert resp.status_code == 502
    assert resp.json()["code"] == "whoop_service_unavailable"


async def test_webhooks_are_relayed_byte_for_byte():
    seen: list[httpx2.Request] = []

    def service(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(202, json={"accepted": True})

    from gateway.main import Transports, create_app
    from gateway.settings import GatewaySettings
    from tests.conftest import running

    app = create_app(
        GatewaySettings(
            _env_file=None, whoop_service_api_key="k", supabase_jwt_secret="s" * 40
        ),
        transports=Transports(whoop_service=httpx2.MockTransport(service)),
    )
    body = (
        b'{"user_id": 456, "id": "550e8400-e29b-41d4-a716-446655440000",  '
        b'"type": "sleep.updated", "trace_id": "t-1"}'
    )
    headers = {
        "Content-Type": "application/json",
        "X-WHOOP-Signature": "c2lnbmF0dXJl",
        "X-WHOOP-Signature-Timestamp": "1795320000000",
        "Authorization": "Bearer must-not-pass",
    }
    async with (
        running(app),
        httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app), base_url="http://g"
        ) as c,
    ):
        resp = await c.post("/webhooks/whoop", content=body, headers=headers)
        big = await c.post("/webhooks/whoop", content=b"x" * 70_000)
        odd = await c.post(
            "/webhooks/whoop",
            content=body,
            headers={"X-WHOOP-Signature": "s\u00e9".encode()},
        )
    assert resp.status_code == 202
    assert resp.json() == {"accepted": True}
    assert seen[0].content == body
    assert seen[0].headers["x-whoop-signature"] == "c2lnbmF0dXJl"
    assert seen[0].headers["x-whoop-signature-timestamp"] == "1795320000000"
    assert "authorization" not in seen[0].headers
    assert big.status_code == 413
    assert odd.status_code == 401
    assert len(seen) == 1


@pytest.mark.parametrize(
    ("method", "path", "model"),
    [
        ("post", "/api/v1/whoop/connect/{user_id}", "ConnectResponse"),
        ("get", "/api/v1/whoop/status/{user_id}", "ConnectionStatusResponse"),
        ("delete", "/api/v1/whoop/connect/{user_id}", "DisconnectResponse"),
    ],
)
def test_openapi_documents_the_relayed_answers(
    tmp_path: Path, method: str, path: str, model: str
) -> None:
    """Found by the fuzzer: only 200 and 422 were documented, 200 without a schema."""
    assert problem_statuses(tmp_path, path, method) == {401, 403, 422, 429, 502, 504}
    ok = gateway_openapi(tmp_path)["paths"][path][method]["responses"]["200"]
    schema = ok["content"]["application/json"]["schema"]
    assert schema["$ref"] == f"#/components/schemas/{model}"


def test_openapi_documents_the_sync_refusals(tmp_path: Path) -> None:
    sync = problem_statuses(tmp_path, "/api/v1/whoop/sync/{user_id}", "post")
    assert sync == {401, 403, 404, 409, 422, 429, 502, 504}


def test_openapi_documents_the_callback_redirect_and_the_webhook_receipt(
    tmp_path: Path,
) -> None:
    """Found by the fuzzer: the callback's 302 and the relay's 202 and 401 were undocumented."""
    openapi = gateway_openapi(tmp_path)
    callback = openapi["paths"]["/api/v1/whoop/callback"]["get"]["responses"]
    assert "Location" in callback["302"]["headers"]
    assert set(callback["200"]["content"]) == {"text/html"}
    assert "security" not in openapi["paths"]["/api/v1/whoop/callback"]["get"]
    webhook = openapi["paths"]["/webhooks/whoop"]["post"]["responses"]
    assert set(webhook) == {"202", "401", "413", "422", "502"}
    assert webhook["202"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/WebhookReceipt"
    }
