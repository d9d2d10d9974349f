"""`/internal/sync/*`: sync a user now (pull to refresh) and read where syncs stand."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from shared.api_key import API_KEY_RESPONSES
from shared.contracts import SyncRequest, SyncResponse, SyncStatusResponse
from shared.params import UserIdPath
from shared.problems import problem_responses
from whoop_service.deps import DeadlineDep, EngineDep, UserLimitsDep
from whoop_service.sync import pull

router = APIRouter(prefix="/internal/sync", tags=["sync"], responses=API_KEY_RESPONSES)


@router.post(
    "/{user_id}",
    responses=problem_responses(
        404,
        409,
        429,
        descriptions={
            404: "The user has not connected WHOOP (`not_connected`).",
            409: "WHOOP access must be granted again (`needs_reauth`), or another sync "
            "of the user outlasts the deadline (`sync_in_progress`).",
            429: "The user synced less than `USER_SYNC_COOLDOWN_S` ago (`sync_cooldown`), or "
            "spent today's interactive WHOOP requests (`user_quota_exceeded`); "
            "`Retry-After` says when to try again.",
        },
    ),
)
async def sync_now(
    user_id: UserIdPath,
    engine: EngineDep,
    limits: UserLimitsDep,
    deadline: DeadlineDep,
    body: Annotated[SyncRequest | None, Body()] = None,
) -> SyncResponse:
    """Sync now (pull to refresh), within the rate budget, the deadline and the user's limits
    (CONTRACT.md §9); records stored or changed per type."""
    return await pull.pull_to_refresh(
        engine, limits, user_id, body or SyncRequest(), deadline
    )


@router.get("/status/{user_id}")
async def sync_status(user_id: UserIdPath, engine: EngineDep) -> SyncStatusResponse:
    """Per data type: last sync, its status, records synced, error, and whether one is due."""
    return await pull.sync_status(engine, user_id)
