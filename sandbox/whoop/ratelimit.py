"""WHOOP's app-wide sliding-window rate limits and the RateLimit headers that describe them."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

MINUTE_S = 60
DAY_S = 86_400


@dataclass(frozen=True)
class RateDecision:
    """Whether a request may pass, and the headers its response carries either way."""

    allowed: bool
    headers: dict[str, str]


class SlidingWindowLimiter:
    """Two sliding windows (60 s and 24 h); only admitted requests use up quota."""

    def __init__(self, per_minute: int, per_day: int) -> None:
        self.per_minute = per_minute
        self.per_day = per_day
        self._minute: deque[datetime] = deque()
        self._day: deque[datetime] = deque()
        self.admitted = 0
        self.rejected = 0
        self.peak_per_minute = 0

    def admit(self, now: datetime) -> RateDecision:
        """Count the request at `now` if both windows have room."""
        self._prune(now)
        allowed = len(self._minute) < self.per_minute and len(self._day) < self.per_day
        if allowed:
            self._minute.append(now)
            self._day.append(now)
            self.admitted += 1
            self.peak_per_minute = max(self.peak_per_minute, len(self._minute))
        else:
            self.rejected += 1
        return RateDecision(allowed, self.headers(now))

    def headers(self, now: datetime) -> dict[str, str]:
        """`X-RateLimit-*` for the window closest to exhaustion (fewest left, then longest wait)."""
        self._prune(now)
        windows = [
            (self.per_minute, MINUTE_S, self._minute),
            (self.per_day, DAY_S, self._day),
        ]
        states = []
        for limit, length_s, hits in windows:
            remaining = max(0, limit - len(hits))
            reset_s = length_s
            if hits:
                wait = (hits[0] + timedelta(seconds=length_s) - now).total_seconds()
                reset_s = max(1, math.ceil(wait))
            states.append((remaining, -reset_s, limit, reset_s))
        remaining, _, limit, reset_s = min(states)
        policy = f"{self.per_minute};window={MINUTE_S}, {self.per_day};window={DAY_S}"
        return {
            "X-RateLimit-Limit": f"{limit}, {policy}",
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(reset_s),
        }

    def in_window(self, now: datetime) -> int:
        """Requests admitted in the 60 s before `now`."""
        self._prune(now)
        return len(self._minute)

    def reset(self) -> None:
        """Forget every request and counter."""
        self._minute.clear()
        self._day.clear()
        self.admitted = self.rejected = self.peak_per_minute = 0

    def _prune(self, now: datetime) -> None:
        # A hit at t stops counting at exactly t + window: a client that waits Reset s gets in.
        for hits, length_s in ((self._minute, MINUTE_S), (self._day, DAY_S)):
            horizon = now - timedelta(seconds=length_s)
            while hits and hits[0] <= horizon:
                hits.popleft()
