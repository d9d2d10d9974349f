"""A circuit breaker: after repeated failures, skip the call for a while instead of waiting on it.

Closed: calls go through; `failure_threshold` failures in a row open it. Open: calls are refused at
once for `reset_timeout_s`. Then one trial call is let through (half-open): success closes the
breaker, failure opens it again. A slow upstream then costs its timeout a few times, not on every
request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Consecutive-failure breaker with a single trial call after the cool-down."""

    def __init__(
        self,
        *,
        failure_threshold: int = 3,
        reset_timeout_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._threshold = failure_threshold
        self._reset_s = reset_timeout_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> State:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self._reset_s:
            return "half_open"
        return "open"

    @property
    def consecutive_failures(self) -> int:
        """Failures recorded since the last success (metrics, tests)."""
        return self._failures

    def allow(self) -> bool:
        """Whether a call may go out now (in half-open state, only the one trial call)."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._trial_running:
            self._trial_running = True
            return True
        return False

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._trial_running = False

    def abandon(self) -> None:
        """The call was cancelled before it had an outcome: free the trial slot, count nothing."""
        self._trial_running = False

    def record_failure(self) -> None:
        self._trial_running = False
        self._failures += 1
        if self._opened_at is not None or self._failures >= self._threshold:
            self._opened_at = self._clock()
