"""`/api/v1/whoop/*`: connecting WHOOP, the browser's OAuth callback, status, sync, disconnect.

Each route checks the caller and relays to the internal WHOOP service, whose problems keep their
status and code. The OAuth callback is the one public route without a bearer token: WHOOP sends
the member's browser there. It never links an account by itself (CONTRACT.md §8): a consent link
can be forwarded, so the browser that approves is not trusted to say whose account it becomes.
The callback keeps the grant pending and hands the app a single-use `completion`, which only the
user who started the flow can redeem, with their own token, at `.../connect/{user_id}/complete`.
"""

from __future__ import annotations

import html
import time
from typing import Annotated, Any
from urllib.parse import urlencode

import structlog
from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel

from gateway.auth import CALLER_RESPONSES, Caller, CallerDep, check_user_access
from gateway.deps import SettingsDep, WhoopServiceDep
from gateway.settings import GatewaySettings
from gateway.whoop_service_client import WhoopServiceClient
from shared.contracts import (
    CallbackResponse,
    CompleteBody,
    CompletionResponse,
    ConnectionStatusResponse,
    ConnectResponse,
    DisconnectResponse,
    SyncResponse,
)
from shared.errors import AppError
from shared.params import UserIdPath
from shared.problems import problem_responses

log = structlog.get_logger()
router = APIRouter(prefix="/api/v1/whoop", tags=["whoop"])

# The WHOOP service's 4xx problems are relayed as they are; its failures are the gateway's 502/504.
RELAY_RESPONSES = CALLER_RESPONSES | problem_responses(
    502,
    504,
    descriptions={
        502: "The WHOOP service is unavailable (`whoop_service_unavailable`).",
        504: "The WHOOP service did not answer in time (`whoop_service_timeout`).",
    },
)


def relayed(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """The service's answer documented by its contract model (relayed as is, not re-validated)."""
    return {200: {"model": model}} | RELAY_RESPONSES


CALLBACK_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Approved; without APP_REDIRECT_URL, a page saying to return to the "
        "app, with the completion token."
    },
    302: {
        "description": "Back to the app: `APP_REDIRECT_URL?status=pending&completion=<token>`, "
        "or `?status=error&reason=<code>`.",
        "headers": {"Location": {"schema": {"type": "string"}}},
    },
    400: {
        "description": "Not connected; without APP_REDIRECT_URL, a page saying why.",
        "content": {"text/html": {"schema": {"type": "string"}}},
    },
}


@router.post("/connect/{user_id}", responses=relayed(ConnectResponse))
async def connect(
    user_id: UserIdPath,
    caller: CallerDep,
    whoop: WhoopServiceDep,
    settings: SettingsDep,
) -> Any:
    """`{authorization_url, state, expires_at}`: open the URL to approve WHOOP access."""
    return await _relay(
        caller, user_id, whoop, settings, "POST", f"/internal/auth/connect/{user_id}"
    )


@router.get(
    "/callback",
    response_model=None,
    response_class=HTMLResponse,
    responses=CALLBACK_RESPONSES,
)
async def callback(
    whoop: WhoopServiceDep,
    settings: SettingsDep,
    code: Annotated[str | None, Query()] = None,
    state: Annotated[str | None, Query()] = None,
    error: Annotated[str | None, Query()] = None,
) -> Response:
    """Where WHOOP sends the browser: keep the grant pending, then back to the app with the
    single-use `completion` that the app redeems at `.../connect/{user_id}/complete`."""
    # Checked here rather than by query validation: a browser goes back to the app, never to a
    # 422 problem it cannot show.
    too_long = any(
        value is not None and len(value) > limit
        for value, limit in ((code, 2048), (state, 512), (error, 64))
    )
    if too_long or not state or (code is None) == (error is None):
        return _finish(settings, completion=None, reason="invalid_request")
    body = {
        "state": state,
        **({"code": code} if code is not None else {"error": error}),
    }
    try:
        answer = await whoop.call(
            "POST", "/internal/auth/callback", json=body, deadline=_deadline(settings)
        )
        pending = CompletionResponse.model_validate(answer)
    except AppError as exc:
        log.info("gateway.whoop.callback_refused", reason=exc.instance_code)
        return _finish(settings, completion=None, reason=exc.instance_code)
    except ValueError:
        log.error("gateway.whoop.callback_bad_answer")
        return _finish(settings, completion=None, reason="whoop_service_unavailable")
    return _finish(settings, completion=pending.completion, reason=None)


@router.post(
    "/connect/{user_id}/complete",
    responses=relayed(CallbackResponse)
    | problem_responses(
        400,
        409,
        descriptions={
            400: "The completion is unknown, used or expired (`invalid_completion`).",
            409: "The WHOOP account is connected to another user (`whoop_account_linked`).",
        },
    ),
)
async def complete(
    user_id: UserIdPath,
    body: CompleteBody,
    caller: CallerDep,
    whoop: WhoopServiceDep,
    settings: SettingsDep,
) -> Any:
    """Link the WHOOP account approved in the browser: only the user who started the flow can
    (another user: 403 `connect_user_mismatch`, and the grant is revoked at WHOOP)."""
    check_user_access(caller, user_id)
    return await whoop.call(
        "POST",
        "/internal/auth/complete",
        json={"completion": body.completion, "user_id": user_id},
        deadline=_deadline(settings),
    )


@router.get("/status/{user_id}", responses=relayed(ConnectionStatusResponse))
async def status(
    user_id: UserIdPath,
    caller: CallerDep,
    whoop: WhoopServiceDep,
    settings: SettingsDep,
) -> Any:
    """Connection state, scopes and per-type sync status."""
    return await _relay(
        caller, user_id, whoop, settings, "GET", f"/internal/auth/status/{user_id}"
    )


@router.post(
    "/sync/{user_id}",
    responses=relayed(SyncResponse)
    | problem_responses(
        404,
        409,
        429,
        descriptions={
            404: "The user has not connected WHOOP (`not_connected`).",
            409: "WHOOP access must be granted again (`needs_reauth`), or a sync of "
            "the user is already running (`sync_in_progress`).",
            429: "The user synced moments ago (`sync_cooldown`) or spent today's WHOOP "
            "refreshes (`user_quota_exceeded`); `Retry-After` says when to try again.",
        },
    ),
)
async def sync(
    user_id: UserIdPath,
    caller: CallerDep,
    whoop: WhoopServiceDep,
    settings: SettingsDep,
) -> Any:
    """Pull to refresh: sync now, within the rate budget and the request deadline."""
    return await _relay(
        caller, user_id, whoop, settings, "POST", f"/internal/sync/{user_id}"
    )


@router.delete("/connect/{user_id}", responses=relayed(DisconnectResponse))
async def disconnect(
    user_id: UserIdPath,
    caller: CallerDep,
    whoop: WhoopServiceDep,
    settings: SettingsDep,
    delete_data: Annotated[
        bool, Query(description="Also delete every stored WHOOP record.")
    ] = False,
) -> Any:
    """Revoke access at WHOOP and forget the tokens (and, if asked, the data)."""
    return await _relay(
        caller,
        user_id,
        whoop,
        settings,
        "DELETE",
        f"/internal/auth/{user_id}",
        params={"delete_data": "true" if delete_data else "false"},
    )


def _deadline(settings: SettingsDep) -> float:
    return time.monotonic() + settings.request_deadline_s


async def _relay(
    caller: Caller,
    user_id: str,
    whoop: WhoopServiceClient,
    settings: GatewaySettings,
    method: str,
    path: str,
    params: dict[str, str] | None = None,
) -> Any:
    """Check the caller may act for `user_id`, then relay to the WHOOP service."""
    check_user_access(caller, user_id)
    return await whoop.call(method, path, params=params, deadline=_deadline(settings))


def _finish(
    settings: SettingsDep, *, completion: str | None, reason: str | None
) -> Response:
    """Redirect to the app with `status` (and `completion` or `reason`), or a small page when no
    app URL is set."""
    query = (
        {"status": "pending", "completion": completion}
        if completion
        else {"status": "error", "reason": reason or "error"}
    )
    if settings.app_redirect_url:
        sep = "&" if "?" in settings.app_redirect_url else "?"
        return RedirectResponse(
            f"{settings.app_redirect_url}{sep}{urlencode(query)}",
            status_code=302,
            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
        )
    if completion:
        title = "WHOOP approved: return to the app"
        text = (
            "Return to the app to finish connecting WHOOP. If the app asks for it, this is "
            "the completion code (valid 10 minutes, once). Never give it to anyone else: "
            f"whoever redeems it reads your WHOOP data. <code>{html.escape(completion)}"
            "</code>"
        )
    else:
        title = "WHOOP not connected"
        text = (
            f"The connection did not complete ({html.escape(reason or 'error')}). "
            "Return to the app and try again."
        )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width'>"
        "<meta name='referrer' content='no-referrer'>"
        f"<title>{title}</title></head><body><h1>{title}</h1><p>{text}</p></body></html>"
    )
    return HTMLResponse(
        page,
        status_code=200 if completion else 400,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )
