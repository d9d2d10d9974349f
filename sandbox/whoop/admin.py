"""`/sandbox/*`: what tests in other processes may ask the emulator (not part of WHOOP's API).

The counters that prove the rate limit was respected, the request log, and the true records of a
member, for a test or benchmark driving services as separate processes. These routes are outside
`/developer`, so they are never rate limited and never counted.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request

router = APIRouter(prefix="/sandbox", tags=["sandbox"])


@router.get("/stats")
async def stats(request: Request) -> dict[str, Any]:
    """Peak data-API requests in any 60 s, 429s sent, requests admitted, token requests."""
    sandbox = request.app.state.sandbox
    return {
        "peak_requests_per_minute": sandbox.peak_requests_per_minute,
        "rate_limited": sandbox.rate_limited_count,
        "admitted": sandbox.limiter.admitted,
        "token_requests": dict(sandbox.token_requests),
    }


@router.get("/requests")
async def requests(
    request: Request, path_prefix: str = "/developer"
) -> list[dict[str, Any]]:
    """Logged requests under `path_prefix`, oldest first: when each was answered, and how.

    Lets a benchmark in another process count requests per minute and time its phases.
    """
    sandbox = request.app.state.sandbox
    return [
        {"method": r.method, "path": r.path, "status": r.status, "at": r.at}
        for r in sandbox.request_log
        if r.path.startswith(path_prefix)
    ]


@router.get("/users/{user_id}/records/{kind}")
async def records(
    request: Request,
    user_id: int,
    kind: Literal["cycle", "recovery", "sleep", "workout"],
) -> list[dict[str, Any]]:
    """The member's records of one kind as WHOOP holds them now, newest first."""
    sandbox = request.app.state.sandbox
    if user_id not in sandbox.users:
        raise HTTPException(status_code=404, detail="no such member")
    result: list[dict[str, Any]] = sandbox.records(kind, user_id)
    return result
