"""Routes of the Sahha emulator (all under `/api/v1`) and the app factory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Final

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response, Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, Field

from sandbox.sahha.catalog import (
    BIOMARKER_CATEGORIES,
    KNOWN_BIOMARKER_TYPES,
    SCORE_TYPES,
)
from sandbox.sahha.data import SahhaProfile
from sandbox.sahha.errors import SahhaError, install_error_handlers
from sandbox.sahha.middleware import SandboxMiddleware
from sandbox.sahha.query import array_values, parse_version, resolve_window
from sandbox.sahha.settings import SahhaSandboxSettings
from sandbox.sahha.state import Clock, SahhaSandbox
from sandbox.sahha.wire import JsonObject

MAX_EXTERNAL_ID_LENGTH: Final = 255
_ONE_DAY: Final = timedelta(days=1)

router = APIRouter(prefix="/api/v1")
_authorization = APIKeyHeader(
    name="Authorization", auto_error=False, description="`account <accountToken>`"
)


def get_sandbox(request: Request) -> SahhaSandbox:
    """The emulator state of this app."""
    sandbox: SahhaSandbox = request.app.state.sandbox
    return sandbox


SandboxDep = Annotated[SahhaSandbox, Depends(get_sandbox)]


async def require_account(
    sandbox: SandboxDep, authorization: Annotated[str | None, Security(_authorization)]
) -> None:
    """401 unless the request carries `Authorization: account <live account token>`."""
    scheme, _, token = (authorization or "").partition(" ")
    # The scheme word is case-insensitive (docs write `account`, SDKs `Profile`); Bearer is refused.
    if scheme.lower() != "account" or not sandbox.tokens.account_token_valid(token):
        raise SahhaError(
            401, "authorization", "Authorization", "A valid account token is required."
        )


AccountAuth = [Depends(require_account)]


class AccountTokenRequest(BaseModel):
    """Body of `POST oauth/account/token`."""

    client_id: str = Field(alias="clientId")
    client_secret: str = Field(alias="clientSecret")


class ProfileRegisterRequest(BaseModel):
    """Body of `POST oauth/profile/register`."""

    external_id: str = Field(alias="externalId")


def _known_profile(sandbox: SahhaSandbox, external_id: str) -> SahhaProfile:
    profile = sandbox.get_profile(external_id)
    if profile is None:
        raise SahhaError(
            404, "profile", "externalId", f"Profile '{external_id}' was not found."
        )
    return profile


def _data_response(sandbox: SahhaSandbox, items: list[JsonObject]) -> Response:
    if items:
        return JSONResponse(items)
    if sandbox.empty_as == "empty_array":
        return JSONResponse([])
    return Response(status_code=204)


@router.post("/oauth/account/token", response_model=None)
async def account_token(body: AccountTokenRequest, sandbox: SandboxDep) -> JsonObject:
    """Exchange the account's client credentials for an account token."""
    if not sandbox.credentials_match(body.client_id, body.client_secret):
        raise SahhaError(
            401, "authorization", "clientSecret", "Invalid client credentials."
        )
    return sandbox.tokens.issue_account_token()


@router.post(
    "/oauth/profile/register",
    status_code=201,
    dependencies=AccountAuth,
    response_model=None,
)
async def register_profile(
    body: ProfileRegisterRequest, sandbox: SandboxDep
) -> JsonObject:
    """Register a profile under an externalId; 400 when the externalId is invalid or taken."""
    external_id = body.external_id
    if not external_id.strip() or len(external_id) > MAX_EXTERNAL_ID_LENGTH:
        raise SahhaError(400, "body", "externalId", "The externalId is not valid.")
    if sandbox.external_id_used(external_id):
        raise SahhaError(400, "body", "externalId", "The externalId is already in use.")
    return sandbox.register_profile(external_id)


@router.get(
    "/account/profile/{external_id}", dependencies=AccountAuth, response_model=None
)
async def get_account_profile(external_id: str, sandbox: SandboxDep) -> JsonObject:
    """The profile registered under `external_id`."""
    return sandbox.profile_body(_known_profile(sandbox, external_id))


@router.get(
    "/profile/score/{external_id}", dependencies=AccountAuth, response_model=None
)
async def get_scores(
    external_id: str,
    sandbox: SandboxDep,
    types: Annotated[list[str] | None, Query()] = None,
    start_date_time: Annotated[str | None, Query(alias="startDateTime")] = None,
    end_date_time: Annotated[str | None, Query(alias="endDateTime")] = None,
    version: Annotated[str | None, Query()] = None,
) -> Response:
    """Scores whose `scoreDateTime` instant lies in [startDateTime, endDateTime], newest first."""
    wanted = array_values("types", types, SCORE_TYPES, required=True) or []
    start, end = resolve_window(start_date_time, end_date_time, sandbox.clock())
    wanted_version = parse_version(version)
    profile = _known_profile(sandbox, external_id)
    tz = profile.tz_offset
    days = sandbox.visible_days(
        profile,
        start.astimezone(tz).date() - _ONE_DAY,
        end.astimezone(tz).date() + _ONE_DAY,
    )
    items = [
        s
        for d in days
        for s in d.scores
        if s.type in wanted
        and start <= s.score_at <= end
        and wanted_version in (None, s.body["version"])
    ]
    items.sort(key=lambda s: (s.score_at, SCORE_TYPES.index(s.type)), reverse=True)
    return _data_response(sandbox, [s.body for s in items])


@router.get(
    "/profile/biomarker/{external_id}", dependencies=AccountAuth, response_model=None
)
async def get_biomarkers(
    external_id: str,
    sandbox: SandboxDep,
    categories: Annotated[list[str] | None, Query()] = None,
    types: Annotated[list[str] | None, Query()] = None,
    start_date_time: Annotated[str | None, Query(alias="startDateTime")] = None,
    end_date_time: Annotated[str | None, Query(alias="endDateTime")] = None,
) -> Response:
    """Biomarkers whose `startDateTime` instant is in [startDateTime, endDateTime], newest first."""
    cats = (
        array_values("categories", categories, BIOMARKER_CATEGORIES, required=True)
        or []
    )
    kinds = array_values("types", types, KNOWN_BIOMARKER_TYPES, required=False)
    start, end = resolve_window(start_date_time, end_date_time, sandbox.clock())
    profile = _known_profile(sandbox, external_id)
    tz = profile.tz_offset
    days = sandbox.visible_days(
        profile,
        start.astimezone(tz).date() - _ONE_DAY,
        end.astimezone(tz).date() + _ONE_DAY,
    )
    items = [
        b
        for d in days
        for b in d.biomarkers
        if b.category in cats
        and (kinds is None or b.type in kinds)
        and start <= b.start_at <= end
    ]
    items.sort(key=lambda b: (b.start_at, b.type), reverse=True)
    return _data_response(sandbox, [b.body for b in items])


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _aware(clock: Clock) -> Clock:
    def now() -> datetime:
        value = clock()
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("the Sahha sandbox clock must return tz-aware datetimes")
        return value

    return now


def create_app(
    settings: SahhaSandboxSettings | None = None, *, clock: Clock | None = None
) -> FastAPI:
    """The Sahha emulator app (`uvicorn --factory sandbox.sahha:create_app`)."""
    settings = settings if settings is not None else SahhaSandboxSettings()
    sandbox = SahhaSandbox(settings, _aware(clock if clock is not None else _utc_now))
    app = FastAPI(
        title="Sahha sandbox",
        version="1",
        description="A local emulator of the Sahha REST API for tests and development.",
    )
    app.state.sandbox = sandbox
    install_error_handlers(app)
    app.include_router(router)
    app.add_middleware(SandboxMiddleware, sandbox=sandbox)
    return app
