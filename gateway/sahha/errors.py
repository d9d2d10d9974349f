"""How the Sahha client names upstream trouble: a status per failure, and SahhaError carrying it."""

from __future__ import annotations

from typing import Literal

import httpx2

SahhaStatus = Literal["ok", "not_connected", "timeout", "unavailable", "error"]
FailureStatus = Literal["not_connected", "timeout", "unavailable", "error"]


class SahhaError(Exception):
    """Sahha gave no usable answer; `status` says how, `error_type` is a stable word for logs."""

    def __init__(self, status: FailureStatus, error_type: str) -> None:
        super().__init__(f"{status}: {error_type}")
        self.status: FailureStatus = status
        self.error_type = error_type


def failure_for_status(status_code: int, *, on_404: FailureStatus) -> SahhaError:
    """The failure a non-2xx answer stands for (a 401 reaches here only once refreshing failed)."""
    error_type = f"http_{status_code}"
    if status_code == 404:
        return SahhaError(on_404, error_type)
    # Sahha documents no rate limits; a 429 is a passing overload, like a 5xx.
    if status_code == 429 or status_code >= 500:
        return SahhaError("unavailable", error_type)
    return SahhaError("error", error_type)


def failure_for_transport(exc: httpx2.TransportError) -> SahhaError:
    """The failure a transport error stands for: a per-phase timeout is a timeout too."""
    if isinstance(exc, httpx2.TimeoutException):
        return SahhaError("timeout", type(exc).__name__)
    return SahhaError("unavailable", type(exc).__name__)
