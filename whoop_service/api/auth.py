"""`/internal/auth/*`: connect, callback, status and disconnect (CONTRACT.md §7)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from shared.api_key import API_KEY_RESPONSES
from shared.contracts import (
    CallbackRequest,
    CallbackResponse,
    CompleteRequest,
    CompletionResponse,
    ConnectionStatusResponse,
    ConnectResponse,
    DisconnectResponse,
)
from shared.params import UserIdPath
from shared.problems import problem_responses
from whoop_service.deps import ConnectFlowDep, DeadlineDep

router = APIRouter(prefix="/internal/auth", tags=["auth"], responses=API_KEY_RESPONSES)
NOT_CONFIGURED = {503: "WHOOP credentials are not configured (`whoop_not_configured`)."}


@router.post(
    "/connect/{user_id}",
    responses=problem_responses(
        429,
        503,
        descriptions={
            429: "The user started 5 connections in the last 10 minutes (`rate_limited`); "
            "`Retry-After` says when to try again.",
            **NOT_CONFIGURED,
        },
    ),
)
async def connect(user_id: UserIdPath, flow: ConnectFlowDep) -> ConnectResponse:
    """A fresh WHOOP authorization URL for the user (single-use state, 10 minutes)."""
    return await flow.start(user_id)


@router.post(
    "/callback",
    responses=problem_responses(
        400,
        502,
        503,
        descriptions={
            400: "The state is unknown, used, expired or another user's; WHOOP refused the "
            "code; or the member declined (the code says which).",
            502: "WHOOP failed during the exchange (`whoop_unavailable`).",
            **NOT_CONFIGURED,
        },
    ),
)
async def callback(
    body: CallbackRequest, flow: ConnectFlowDep, deadline: DeadlineDep
) -> CompletionResponse:
    """Exchange the code and keep the grant pending for the user who started the flow.

    Nothing is linked here: that user completes the link with `POST /internal/auth/complete`
    and the single-use `completion` answered. With `error` (the member declined at WHOOP) the
    state is used up and the answer is a problem whose code is the reason.
    """
    if body.error is not None:
        await flow.decline(body.state, body.error, body.user_id)
    assert body.code is not None
    return await flow.exchange(body.code, body.state, body.user_id, deadline=deadline)


@router.post(
    "/complete",
    responses=problem_responses(
        400,
        403,
        409,
        descriptions={
            400: "The completion is unknown, used or expired (`invalid_completion`).",
            403: "Another user started this connection (`connect_user_mismatch`); the "
            "pending grant was revoked at WHOOP.",
            409: "The WHOOP account is connected to another user (`whoop_account_linked`).",
        },
    ),
)
async def complete(
    body: CompleteRequest, flow: ConnectFlowDep, deadline: DeadlineDep
) -> CallbackResponse:
    """Link the pending grant, only for the user who started the flow; the first sync starts."""
    return await flow.complete(body.completion, body.user_id, deadline=deadline)


@router.get("/status/{user_id}")
async def status(user_id: UserIdPath, flow: ConnectFlowDep) -> ConnectionStatusResponse:
    """Connection state, scopes and per-type sync status."""
    return await flow.status(user_id)


@router.delete("/{user_id}")
async def disconnect(
    user_id: UserIdPath,
    flow: ConnectFlowDep,
    deadline: DeadlineDep,
    delete_data: Annotated[
        bool, Query(description="Also delete every stored WHOOP record.")
    ] = False,
) -> DisconnectResponse:
    """Revoke access at WHOOP (within the deadline) and forget the tokens (and, if asked, the
    data)."""
    return await flow.disconnect(user_id, delete_data=delete_data, deadline=deadline)
