"""SahhaApiClient: Sahha's account-scoped reads on the wire, speaking in SahhaErrors.

Every call carries `Authorization: account <token>`; a 401 gets one new token and one more try.
Array parameters are repeated keys (`types=sleep&types=activity`), never comma-joined, and the
externalId is percent-encoded as a path segment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final
from urllib.parse import quote

import httpx2

from gateway.sahha import days as day_rules
from gateway.sahha.errors import SahhaError, failure_for_status, failure_for_transport
from gateway.sahha.token import AccountTokens

SCORES_PATH: Final = "/api/v1/profile/score/"
BIOMARKERS_PATH: Final = "/api/v1/profile/biomarker/"
PROFILE_PATH: Final = "/api/v1/account/profile/"

# A tuple of pairs: repeated keys stay repeated (and a tuple satisfies httpx2's parameter type).
Params = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class SahhaProfile:
    """The account's view of one profile (`GET account/profile/{externalId}`)."""

    external_id: str
    profile_id: str | None
    data_last_received_at: datetime | None


class SahhaApiClient:
    """Authenticated reads; 404 raises SahhaError("not_connected"), like any other failure."""

    def __init__(self, http: httpx2.AsyncClient, tokens: AccountTokens) -> None:
        self._http = http
        self._tokens = tokens

    async def fetch_scores(
        self, external_id: str, start_date: date, end_date: date
    ) -> list[Any]:
        """Every score type over the padded window of start..end, as Sahha sends them."""
        params = tuple(("types", t) for t in day_rules.SCORE_TYPES)
        return await self._get_list(
            SCORES_PATH + _segment(external_id),
            params + _window(start_date, end_date),
        )

    async def fetch_biomarkers(
        self, external_id: str, start_date: date, end_date: date
    ) -> list[Any]:
        """Sleep, activity and vitals biomarkers (every type) over the padded window."""
        params = tuple(("categories", c) for c in day_rules.BIOMARKER_CATEGORIES)
        return await self._get_list(
            BIOMARKERS_PATH + _segment(external_id),
            params + _window(start_date, end_date),
        )

    async def fetch_profile(self, external_id: str) -> SahhaProfile:
        """The profile registered under `external_id`."""
        resp = await self._get(PROFILE_PATH + _segment(external_id), ())
        return _parse_profile(_json(resp), external_id)

    async def _get_list(self, path: str, params: Params) -> list[Any]:
        resp = await self._get(path, params)
        # Sahha says "no data" both ways: 204 without a body, or 200 with `[]`.
        if resp.status_code == 204 or not resp.content:
            return []
        body = _json(resp)
        if not isinstance(body, list):
            raise SahhaError("error", "body_not_a_list")
        return body

    async def _get(self, path: str, params: Params) -> httpx2.Response:
        token = await self._tokens.get()
        resp = await self._send(path, params, token)
        if resp.status_code == 401:
            # Expired or revoked before our clock said so: one new token, one more try.
            token = await self._tokens.get(rejected=token)
            resp = await self._send(path, params, token)
        if not resp.is_success:
            raise failure_for_status(resp.status_code, on_404="not_connected")
        return resp

    async def _send(self, path: str, params: Params, token: str) -> httpx2.Response:
        try:
            return await self._http.get(
                path,
                params=params,
                headers={"Authorization": f"account {token}"},
            )
        except httpx2.TransportError as exc:
            raise failure_for_transport(exc) from None


def _segment(external_id: str) -> str:
    return quote(external_id, safe="")


def _window(start_date: date, end_date: date) -> Params:
    start, end = day_rules.padded_window(start_date, end_date)
    return (("startDateTime", start), ("endDateTime", end))


def _json(resp: httpx2.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        raise SahhaError("error", "body_not_json") from None


def _parse_profile(body: Any, external_id: str) -> SahhaProfile:
    if not isinstance(body, dict):
        raise SahhaError("error", "body_not_an_object")
    profile_id = body.get("profileId")
    return SahhaProfile(
        external_id=external_id,
        profile_id=profile_id if isinstance(profile_id, str) else None,
        data_last_received_at=_utc_or_none(body.get("dataLastReceivedAtUtc")),
    )


def _utc_or_none(value: object) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise SahhaError("error", "profile_body_invalid")
    # The field is UTC by name: a value written without an offset is read as UTC.
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
