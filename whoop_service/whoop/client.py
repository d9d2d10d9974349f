"""WhoopClient: WHOOP's data API for one app, speaking in WhoopErrors.

Every call takes a slot of the app-wide rate budget first, runs inside the caller's deadline, and
is retried with jittered backoff on 5xx and transport errors. A 429 blocks the whole budget until
WHOOP's window resets (`X-RateLimit-Reset`); what WHOOP reports as remaining teaches the budget too.
A 401 gets one token refresh and one retry.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime
from functools import partial
from typing import Any, Literal, Protocol, TypeVar

import httpx2
import stamina
from pydantic import ValidationError

from shared.time import isoformat_z
from whoop_service.whoop.budget import BudgetExhausted, RateBudget
from whoop_service.whoop.errors import (
    WhoopAuthError,
    WhoopBadResponse,
    WhoopError,
    WhoopForbidden,
    WhoopNotFound,
    WhoopRateLimited,
    WhoopServerError,
    WhoopTransportError,
)
from whoop_service.whoop.ratelimit import Priority, parse_whoop_limit_headers
from whoop_service.whoop.schemas import (
    WhoopCycle,
    WhoopModel,
    WhoopPage,
    WhoopProfile,
    WhoopRecovery,
    WhoopSleep,
    WhoopWorkout,
)

M = TypeVar("M", bound=WhoopModel)
Kind = Literal["cycle", "recovery", "sleep", "workout"]

COLLECTIONS: Mapping[str, tuple[str, type[WhoopModel]]] = {
    "cycle": ("/v2/cycle", WhoopCycle),
    "recovery": ("/v2/recovery", WhoopRecovery),
    "sleep": ("/v2/activity/sleep", WhoopSleep),
    "workout": ("/v2/activity/workout", WhoopWorkout),
}
PAGE_SIZE = 25  # WHOOP's maximum
DEFAULT_BLOCK_S = 60.0  # a 429 without a reset header: wait out a whole minute window


class TokenSource(Protocol):
    """Hands out a user's valid access token (auth.tokens.TokenManager)."""

    async def get_access_token(
        self,
        user_id: str,
        *,
        rejected: str | None = None,
        deadline: float | None = None,
    ) -> str:
        """A valid token; waits for a refresh at most until `deadline` (`time.monotonic()`)."""
        ...


def parse_reset_s(headers: Mapping[str, str]) -> float | None:
    """Seconds until WHOOP's closest rate window resets (`X-RateLimit-Reset` is seconds)."""
    return parse_whoop_limit_headers(headers)[1]


def raise_for_status(resp: httpx2.Response) -> None:
    """Map a non-2xx data-API answer to its WhoopError."""
    status = resp.status_code
    if status < 300:
        return
    if status == 401:
        raise WhoopAuthError("access token refused")
    if status == 403:
        raise WhoopForbidden("member refused")
    if status == 404:
        raise WhoopNotFound(resp.request.url.path)
    if status == 429:
        raise WhoopRateLimited(parse_reset_s(resp.headers))
    if status >= 500:
        raise WhoopServerError(status)
    raise WhoopError(f"WHOOP answered {status}")


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, WhoopServerError | WhoopTransportError | WhoopRateLimited)


class _Unlimited:
    """A budget that never waits (for the connect flow before any budget exists, and tests)."""

    async def acquire(self, priority: Priority, deadline: float | None = None) -> None:
        return None

    async def block_for(self, seconds: float) -> None:
        return None

    async def record_sent(self) -> None:
        return None

    async def status(self) -> dict[str, object]:
        return {"backend": "none"}


class UserQuota(Protocol):
    """Counts a user's interactive requests (`user_limits.UserLimits`)."""

    async def spend(self, user_id: str) -> None:
        """Count one request; raises (a BudgetExhausted) when the user has none left."""


class WhoopClient:
    """The data API at `WHOOP_API_BASE_URL` (`/v2/...` below it)."""

    def __init__(
        self,
        http: httpx2.AsyncClient,
        *,
        budget: RateBudget | None = None,
        user_quota: UserQuota | None = None,
        timeout_s: float = 10.0,
        attempts: int = 4,
    ) -> None:
        self._http = http
        self.budget: RateBudget = budget or _Unlimited()
        # Interactive requests made for a user count in that user's daily quota.
        self.user_quota = user_quota
        self._timeout_s = timeout_s
        self._attempts = attempts
        self.calls = 0  # requests sent to WHOOP by this client (metrics, tests)

    # Calls with a token in hand (connecting, revoking)

    async def fetch_profile(
        self,
        access_token: str,
        *,
        priority: Priority = Priority.INTERACTIVE,
        deadline: float | None = None,
    ) -> WhoopProfile:
        """The member's basic profile (their WHOOP user id above all), before `deadline`."""
        resp = await self._with_retries(
            "GET", "/v2/user/profile/basic", access_token, priority, deadline
        )
        return _parse(resp, WhoopProfile)

    async def revoke_access(
        self,
        access_token: str,
        *,
        deadline: float | None = None,
        priority: Priority = Priority.INTERACTIVE,
    ) -> None:
        """Revoke this app's access for the member (`DELETE /v2/user/access`, 204)."""
        await self._with_retries(
            "DELETE", "/v2/user/access", access_token, priority, deadline
        )

    # Calls on behalf of a user (tokens from a TokenSource)

    async def iter_pages(
        self,
        kind: Kind,
        tokens: TokenSource,
        user_id: str,
        start: datetime,
        end: datetime,
        *,
        priority: Priority,
        deadline: float | None = None,
    ) -> AsyncIterator[list[Any]]:
        """Every page of one collection for [start, end), newest first, as WHOOP sends it."""
        path, model = COLLECTIONS[kind]
        params = {
            "limit": str(PAGE_SIZE),
            "start": isoformat_z(start),
            "end": isoformat_z(end),
        }
        next_token: str | None = None
        while True:
            query = {**params, "nextToken": next_token} if next_token else params
            resp = await self._for_user(
                tokens, user_id, "GET", path, priority, deadline, query
            )
            page = _parse(resp, WhoopPage[model])  # type: ignore[valid-type]
            yield list(page.records)
            next_token = page.next_token or None
            if next_token is None:
                return

    async def fetch_one(
        self,
        kind: Literal["cycle", "sleep", "workout", "recovery_for_cycle"],
        record_id: int | str,
        tokens: TokenSource,
        user_id: str,
        *,
        priority: Priority,
        deadline: float | None = None,
    ) -> Any:
        """One record by id (a recovery by its cycle id); WhoopNotFound when there is none."""
        path: str
        model: type[WhoopModel]
        if kind in ("cycle", "recovery_for_cycle"):
            cycle_id = int(record_id)
            path, model = (
                (f"/v2/cycle/{cycle_id}", WhoopCycle)
                if kind == "cycle"
                else (f"/v2/cycle/{cycle_id}/recovery", WhoopRecovery)
            )
        elif kind == "sleep":
            path, model = f"/v2/activity/sleep/{record_id}", WhoopSleep
        else:
            path, model = f"/v2/activity/workout/{record_id}", WhoopWorkout
        resp = await self._for_user(tokens, user_id, "GET", path, priority, deadline)
        return _parse(resp, model)

    async def _for_user(
        self,
        tokens: TokenSource,
        user_id: str,
        method: str,
        path: str,
        priority: Priority,
        deadline: float | None,
        params: Mapping[str, str] | None = None,
    ) -> httpx2.Response:
        charge = None
        if priority is Priority.INTERACTIVE and self.user_quota is not None:
            charge = partial(self.user_quota.spend, user_id)
        token = await tokens.get_access_token(user_id, deadline=deadline)
        try:
            return await self._with_retries(
                method, path, token, priority, deadline, params, charge
            )
        except WhoopAuthError:
            # Expired or revoked early: one refresh, one more try; a second 401 is final.
            token = await tokens.get_access_token(
                user_id, rejected=token, deadline=deadline
            )
            return await self._with_retries(
                method, path, token, priority, deadline, params, charge
            )

    async def _with_retries(
        self,
        method: str,
        path: str,
        token: str,
        priority: Priority,
        deadline: float | None = None,
        params: Mapping[str, str] | None = None,
        charge: Callable[[], Awaitable[None]] | None = None,
    ) -> httpx2.Response:
        """Send with retries; `charge` counts each request sent (once its budget slot is
        granted)."""
        timeout = None if deadline is None else deadline - time.monotonic()
        if timeout is not None and timeout <= 0:
            # No time left: take no budget slot, send nothing.
            raise BudgetExhausted(0.0)
        async for attempt in stamina.retry_context(
            on=_transient,
            attempts=self._attempts,
            timeout=timeout,
            wait_initial=0.5,
            wait_max=8.0,
        ):
            with attempt:
                await self.budget.acquire(priority, deadline)
                if charge is not None:
                    # Only a request that will be sent counts: a budget too busy to grant a
                    # slot must not spend the user's day (at most the request that crosses
                    # the quota takes a slot it does not use).
                    await charge()
                try:
                    return await self._send(method, path, token, deadline, params)
                except WhoopRateLimited as exc:
                    wait = (
                        exc.retry_after_s
                        if exc.retry_after_s is not None
                        else DEFAULT_BLOCK_S
                    )
                    await self.budget.block_for(wait)
                    if deadline is not None and time.monotonic() + wait > deadline:
                        raise BudgetExhausted(wait) from None
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(
        self,
        method: str,
        path: str,
        token: str,
        deadline: float | None,
        params: Mapping[str, str] | None,
    ) -> httpx2.Response:
        limit = self._timeout_s
        if deadline is not None:
            limit = min(limit, max(0.0, deadline - time.monotonic()))
        self.calls += 1
        try:
            async with asyncio.timeout(limit):
                resp = await self._http.request(
                    method,
                    path,
                    params=params,
                    headers={"Authorization": f"Bearer {token}"},
                )
        except (TimeoutError, httpx2.TransportError) as exc:
            raise WhoopTransportError(type(exc).__name__) from None
        remaining, reset = parse_whoop_limit_headers(resp.headers)
        if resp.status_code != 429 and remaining == 0 and reset:
            # WHOOP's window is spent (perhaps by another client of the same app): stop too.
            await self.budget.block_for(reset)
        raise_for_status(resp)
        return resp


def _parse(resp: httpx2.Response, model: type[M]) -> M:
    try:
        body: Any = resp.json()
        return model.model_validate(body)
    except (ValueError, ValidationError) as exc:
        raise WhoopBadResponse(f"unexpected {model.__name__} body") from exc
