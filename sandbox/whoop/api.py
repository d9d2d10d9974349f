"""WHOOP's v2 data API under `/developer`: collections, records by id, profile, body, revoke."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from sandbox.whoop import pagination
from sandbox.whoop.data import Record
from sandbox.whoop.deps import SandboxDep
from sandbox.whoop.errors import bad_request, not_found, unauthorized
from sandbox.whoop.pagination import PageToken
from sandbox.whoop.plan import WhoopUser
from sandbox.whoop.state import WhoopSandbox
from sandbox.whoop.store import Entry
from sandbox.whoop.tokens import Grant
from sandbox.whoop.wire import (
    Kind,
    epoch_ms,
    from_epoch_ms,
    parse_int64,
    parse_query_ts,
    parse_uuid,
)

router = APIRouter(prefix="/developer", tags=["data"])
MAX_LIMIT = 25
DEFAULT_LIMIT = 10


def _grant(request: Request, sandbox: WhoopSandbox, scope: str | None) -> Grant:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("A bearer access token is required.")
    grant = sandbox.tokens.access(token.strip(), sandbox.now())
    if grant is None:
        raise unauthorized("The access token is invalid, expired or revoked.")
    if scope is not None and scope not in grant.scopes:
        raise unauthorized(f"The access token lacks the '{scope}' scope.")
    return grant


def requires(
    scope: str | None,
) -> Callable[[Request, WhoopSandbox], Awaitable[WhoopUser]]:
    """A dependency: the member behind a live bearer token holding `scope`."""

    async def dependency(request: Request, sandbox: SandboxDep) -> WhoopUser:
        return sandbox.get_user(_grant(request, sandbox, scope).user_id)

    return dependency


Cycles = Annotated[WhoopUser, Depends(requires("read:cycles"))]
Recoveries = Annotated[WhoopUser, Depends(requires("read:recovery"))]
Sleeps = Annotated[WhoopUser, Depends(requires("read:sleep"))]
Workouts = Annotated[WhoopUser, Depends(requires("read:workout"))]
Profile = Annotated[WhoopUser, Depends(requires("read:profile"))]
Body = Annotated[WhoopUser, Depends(requires("read:body_measurement"))]
AnyScope = Annotated[WhoopUser, Depends(requires(None))]


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_LIMIT:
        raise bad_request(f"limit must be an integer from 1 to {MAX_LIMIT}.")
    return int(raw)


def _timestamp(raw: str | None, name: str) -> datetime | None:
    if raw is None:
        return None
    try:
        return parse_query_ts(raw)
    except ValueError:
        raise bad_request(
            f"'{name}' must be an ISO-8601 date-time with a zone."
        ) from None


def _page_token(
    sandbox: WhoopSandbox,
    raw: str | None,
    kind: Kind,
    user: WhoopUser,
    bounds: tuple[str | None, str | None],
) -> PageToken | None:
    if raw is None:
        return None
    try:
        token = pagination.decode(sandbox.page_secret, raw)
    except ValueError:
        raise bad_request("nextToken is invalid.") from None
    if (token.kind, token.user_id, token.start, token.end) != (
        kind,
        user.user_id,
        *bounds,
    ):
        raise bad_request("nextToken must be sent with the same start and end.")
    return token


def _collection(
    sandbox: WhoopSandbox, request: Request, user: WhoopUser, kind: Kind
) -> dict[str, Any]:
    """One page of `kind`, newest first, filtered by start ≤ record start < end."""
    q = request.query_params
    limit = _limit(q.get("limit"))
    start, end = _timestamp(q.get("start"), "start"), _timestamp(q.get("end"), "end")
    now = sandbox.now()
    if start is not None and end is not None and start > end:
        raise bad_request("start must not be after end.")
    # Bound as instants: the same window written another way (`Z` or `+00:00`) is the same.
    bounds = (
        None if start is None else start.isoformat(),
        None if end is None else end.isoformat(),
    )
    token = _page_token(sandbox, q.get("nextToken"), kind, user, bounds)
    upper = end or now
    cursor = (
        None if token is None else (from_epoch_ms(token.cursor_ms), token.cursor_key)
    )
    records: list[Record] = []
    last: Entry | None = None
    more = False
    for entry in sandbox.store.entries(user, kind, now):
        if entry.start >= upper or (
            cursor is not None and (entry.start, entry.key) >= cursor
        ):
            continue
        if start is not None and entry.start < start:
            break
        record = sandbox.store.materialize(entry, now)
        if record is None:
            continue
        if len(records) == limit:
            more = True
            break
        records.append(record)
        last = entry
    body: dict[str, Any] = {"records": records}
    if more and last is not None:
        page = 1 if token is None else token.page
        following = PageToken(
            kind,
            user.user_id,
            bounds[0],
            bounds[1],
            epoch_ms(last.start),
            last.key,
            page + 1,
        )
        body["next_token"] = pagination.encode(sandbox.page_secret, following)
    return body


def _by_key(sandbox: WhoopSandbox, user: WhoopUser, kind: Kind, key: str) -> Record:
    found = sandbox.store.find(user, kind, key, sandbox.now())
    if found is None:
        raise not_found(f"No {kind} found.")
    return found[1]


def _cycle_key(raw: str) -> str:
    try:
        return str(parse_int64(raw))
    except ValueError:
        raise bad_request("cycleId must be an int64.") from None


def _uuid_key(raw: str, name: str) -> str:
    try:
        return parse_uuid(raw)
    except ValueError:
        raise bad_request(f"{name} must be a UUID.") from None


@router.get("/v2/cycle")
async def list_cycles(
    request: Request, sandbox: SandboxDep, user: Cycles
) -> JSONResponse:
    """Cycles, paginated, newest first."""
    return JSONResponse(_collection(sandbox, request, user, "cycle"))


@router.get("/v2/recovery")
async def list_recoveries(
    request: Request, sandbox: SandboxDep, user: Recoveries
) -> JSONResponse:
    """Recoveries, paginated, newest sleep first."""
    return JSONResponse(_collection(sandbox, request, user, "recovery"))


@router.get("/v2/activity/sleep")
async def list_sleeps(
    request: Request, sandbox: SandboxDep, user: Sleeps
) -> JSONResponse:
    """Sleeps and naps, paginated, newest first."""
    return JSONResponse(_collection(sandbox, request, user, "sleep"))


@router.get("/v2/activity/workout")
async def list_workouts(
    request: Request, sandbox: SandboxDep, user: Workouts
) -> JSONResponse:
    """Workouts, paginated, newest first."""
    return JSONResponse(_collection(sandbox, request, user, "workout"))


@router.get("/v2/cycle/{cycle_id}")
async def get_cycle(cycle_id: str, sandbox: SandboxDep, user: Cycles) -> JSONResponse:
    """One cycle by its int64 id."""
    return JSONResponse(_by_key(sandbox, user, "cycle", _cycle_key(cycle_id)))


@router.get("/v2/cycle/{cycle_id}/recovery")
async def get_cycle_recovery(
    cycle_id: str, sandbox: SandboxDep, user: Recoveries
) -> JSONResponse:
    """The recovery of a cycle (404 when the cycle has none)."""
    return JSONResponse(_by_key(sandbox, user, "recovery", _cycle_key(cycle_id)))


@router.get("/v2/cycle/{cycle_id}/sleep")
async def get_cycle_sleep(
    cycle_id: str, sandbox: SandboxDep, user: Sleeps
) -> JSONResponse:
    """The main sleep that starts a cycle (scope undeclared by WHOOP; read:sleep required here)."""
    key = _cycle_key(cycle_id)
    for entry in sandbox.store.entries(user, "sleep", sandbox.now()):
        if (
            not entry.nap
            and entry.night is not None
            and str(entry.night.cycle_id) == key
        ):
            return JSONResponse(_by_key(sandbox, user, "sleep", entry.key))
    raise not_found("No sleep found for this cycle.")


@router.get("/v2/activity/sleep/{sleep_id}")
async def get_sleep(sleep_id: str, sandbox: SandboxDep, user: Sleeps) -> JSONResponse:
    """One sleep by its UUID."""
    return JSONResponse(_by_key(sandbox, user, "sleep", _uuid_key(sleep_id, "sleepId")))


@router.get("/v2/activity/workout/{workout_id}")
async def get_workout(
    workout_id: str, sandbox: SandboxDep, user: Workouts
) -> JSONResponse:
    """One workout by its UUID."""
    return JSONResponse(
        _by_key(sandbox, user, "workout", _uuid_key(workout_id, "workoutId"))
    )


@router.get("/v2/user/profile/basic")
async def get_profile(user: Profile) -> JSONResponse:
    """The member's id, email and name."""
    profile = {
        "user_id": user.user_id,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
    }
    return JSONResponse(profile)


@router.get("/v2/user/measurement/body")
async def get_body(user: Body) -> JSONResponse:
    """Height, weight and max heart rate (404 for members who never entered them)."""
    if user.body is None:
        raise not_found("No body measurement found.")
    height, weight, max_heart_rate = user.body
    body = {
        "height_meter": height,
        "weight_kilogram": weight,
        "max_heart_rate": max_heart_rate,
    }
    return JSONResponse(body)


@router.delete("/v2/user/access", status_code=204, response_class=Response)
async def revoke_access(sandbox: SandboxDep, user: AnyScope) -> Response:
    """Revoke every token of the member for this client and stop their webhooks."""
    sandbox.revoke_user(user.user_id)
    return Response(status_code=204)
