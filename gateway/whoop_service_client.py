"""WhoopServiceClient: the gateway's typed client of the internal WHOOP service.

Every call carries `X-API-Key`, the request's `X-Request-ID` and the time left as
`X-Request-Deadline-Ms`, and ends within its timeout and the request's deadline. The daily read
never raises for upstream trouble: it answers with a status the health answer reports. A circuit
breaker skips the service for a few seconds after repeated failures, so a slow service costs its
timeout a few times, not on every request.

Only the service's own failures count at the breaker: no answer in time, no connection, a 5xx of
its own. An answer about one user (`not_connected`, `needs_reauth`, a missing scope, a spent
quota: any 4xx) or the service saying that WHOOP failed this one request (`whoop_unavailable`) is
an answer from a healthy service, so one user's trouble never switches WHOOP off for everyone
(CONTRACT.md §9). Nor does a call cut short because the request had almost no time left.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import httpx2
import structlog
from pydantic import ValidationError

from gateway.breaker import CircuitBreaker
from shared.contracts import DailyResponse
from shared.errors import AppError, UpstreamError, UpstreamTimeout

log = structlog.get_logger()

WhoopStatus = Literal[
    "ok", "not_connected", "needs_reauth", "timeout", "unavailable", "error"
]


@dataclass(frozen=True, slots=True)
class WhoopResult:
    """The WHOOP part of a health answer, or why there is none."""

    status: WhoopStatus
    daily: DailyResponse | None = None


class WhoopServiceUnavailable(UpstreamError):
    code = "whoop_service_unavailable"


class WhoopServiceTimeout(UpstreamTimeout):
    code = "whoop_service_timeout"


# 5xx problems by which a healthy service reports that WHOOP (not the service) failed a request.
UPSTREAM_CODES = frozenset({"whoop_unavailable", "token_refresh_pending"})
# A call given less time than this (or than the whole timeout, when that is shorter) says nothing
# about the service's health when it runs out: the request spent its deadline elsewhere (Sahha).
MIN_JUDGED_S = 1.0


class _Failed(Exception):
    def __init__(self, status: WhoopStatus) -> None:
        super().__init__(status)
        self.status = status


class WhoopServiceClient:
    """Calls `WHOOP_SERVICE_URL` with the internal API key."""

    def __init__(
        self,
        http: httpx2.AsyncClient,
        *,
        api_key: str,
        timeout_s: float = 10.0,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self._http = http
        self._api_key = api_key
        self._timeout_s = timeout_s
        self.breaker = breaker or CircuitBreaker()

    async def daily(
        self,
        user_id: str,
        start: date,
        end: date,
        *,
        deadline: float | None = None,
        force_refresh: bool = False,
    ) -> WhoopResult:
        """The user's WHOOP days; a status instead of an exception when the service fails."""
        params = {"start_date": start.isoformat(), "end_date": end.isoformat()}
        if force_refresh:
            params["force_refresh"] = "true"
        try:
            resp = await self._send(
                "GET", f"/internal/data/daily/{user_id}", deadline, params=params
            )
        except _Failed as failed:
            return WhoopResult(failed.status)
        if resp.status_code != 200:
            log.error("whoop_service.daily_refused", status=resp.status_code)
            return WhoopResult("error")
        try:
            daily = DailyResponse.model_validate_json(resp.content)
        except ValidationError:
            log.error("whoop_service.daily_unreadable")
            return WhoopResult("error")
        if daily.connection == "not_connected":
            return WhoopResult("not_connected", daily)
        if daily.connection == "needs_reauth":
            return WhoopResult("needs_reauth", daily)
        return WhoopResult("ok", daily)

    async def call(
        self,
        method: str,
        path: str,
        *,
        deadline: float | None = None,
        params: Mapping[str, str] | None = None,
        json: Any = None,
    ) -> Any:
        """A JSON call whose problems are relayed as they are (the service's own codes)."""
        try:
            resp = await self._send(method, path, deadline, params=params, json=json)
        except _Failed as failed:
            if failed.status == "timeout":
                raise WhoopServiceTimeout(
                    "The WHOOP service did not answer in time."
                ) from None
            raise WhoopServiceUnavailable("The WHOOP service is unavailable.") from None
        if resp.status_code >= 400:
            raise _relayed(resp)
        return resp.json()

    async def relay(
        self,
        path: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        deadline: float | None = None,
    ) -> httpx2.Response:
        """POST raw bytes and headers unchanged (webhooks: the signature covers the bytes)."""
        try:
            return await self._send(
                "POST", path, deadline, content=body, extra_headers=headers
            )
        except _Failed:
            raise WhoopServiceUnavailable("The WHOOP service is unavailable.") from None

    async def _send(
        self,
        method: str,
        path: str,
        deadline: float | None,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        content: bytes | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> httpx2.Response:
        limit = self._timeout_s
        if deadline is not None:
            limit = min(limit, deadline - time.monotonic())
        if limit <= 0:
            raise _Failed("timeout")  # before the breaker: no trial slot is taken
        if not self.breaker.allow():
            raise _Failed("unavailable")
        try:
            headers = {**(extra_headers or {}), **self._headers(limit)}
            async with asyncio.timeout(limit):
                resp = await self._http.request(
                    method,
                    path,
                    params=params,
                    json=json,
                    content=content,
                    headers=headers,
                )
        except TimeoutError:
            if limit < min(self._timeout_s, MIN_JUDGED_S):
                self.breaker.abandon()
            else:
                self.breaker.record_failure()
            log.warning("whoop_service.timeout", limit_s=round(limit, 2))
            raise _Failed("timeout") from None
        except Exception as exc:
            # Every outcome is recorded, so a half-open trial never stays taken.
            self.breaker.record_failure()
            log.warning("whoop_service.unreachable", error_type=type(exc).__name__)
            raise _Failed("unavailable") from None
        except BaseException:  # cancelled (the caller went away): no outcome to record
            self.breaker.abandon()
            raise
        if resp.status_code >= 500 and _problem_code(resp) not in UPSTREAM_CODES:
            self.breaker.record_failure()
            log.warning("whoop_service.server_error", status=resp.status_code)
            raise _Failed("unavailable")
        self.breaker.record_success()
        return resp

    def _headers(self, limit_s: float) -> dict[str, str]:
        headers = {
            "X-API-Key": self._api_key,
            "X-Request-Deadline-Ms": str(max(0, int(limit_s * 1000))),
        }
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        if request_id:
            headers["X-Request-ID"] = str(request_id)
        return headers


def _problem_code(resp: httpx2.Response) -> str | None:
    """The `code` of a problem+json answer, else None."""
    if not resp.headers.get("content-type", "").startswith("application/problem+json"):
        return None
    try:
        body = resp.json()
    except ValueError:
        return None
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None


def _relayed(resp: httpx2.Response) -> AppError:
    """The service's problem, status and code kept; its detail is our own text, never upstream's."""
    try:
        body = resp.json()
    except ValueError:
        body = {}
    code = body.get("code") if isinstance(body, dict) else None
    detail = body.get("detail") if isinstance(body, dict) else None
    extra = (
        {"errors": body["errors"]}
        if isinstance(body, dict) and "errors" in body
        else None
    )
    if resp.status_code == 401:
        # The gateway's key was refused: a deployment fault, not the caller's.
        log.error("whoop_service.api_key_refused")
        return WhoopServiceUnavailable("The WHOOP service is unavailable.")
    retry_after = resp.headers.get("retry-after")
    return AppError(
        str(detail) if detail else None,
        code=str(code) if code else "whoop_service_error",
        status=resp.status_code,
        extra=extra,
        # A 429's wait is the caller's to honour.
        headers={"Retry-After": retry_after} if retry_after else None,
    )
