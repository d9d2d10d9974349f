"""Pure maths of the app-wide WHOOP rate budget.

WHOOP limits the whole app (100 requests a minute, 10,000 a day by default). The service spends
`WHOOP_RATE_LIMIT_HEADROOM` of that, in sliding windows. Priorities share the windows unequally: a
lower priority may fill only part of each window, so a burst of backfill can never stand between a
user's pull-to-refresh and WHOOP, whichever replica it runs on; and backfill never takes the last
20 % of the day.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum


class Priority(IntEnum):
    """Lower value = served first."""

    INTERACTIVE = 0
    WEBHOOK = 1
    SCHEDULED = 2
    BACKFILL = 3


# Share of each window a priority may fill.
MINUTE_SHARE: Mapping[Priority, float] = {
    Priority.INTERACTIVE: 1.0,
    Priority.WEBHOOK: 0.95,
    Priority.SCHEDULED: 0.9,
    Priority.BACKFILL: 0.9,
}
DAY_SHARE: Mapping[Priority, float] = {
    Priority.INTERACTIVE: 1.0,
    Priority.WEBHOOK: 1.0,
    Priority.SCHEDULED: 0.9,
    Priority.BACKFILL: 0.8,
}


@dataclass(frozen=True, slots=True)
class BudgetLimits:
    """Requests the service may send per window (WHOOP's limits times the headroom)."""

    per_minute: int
    per_day: int
    minute_window_s: float = 60.0
    day_window_s: float = 86_400.0

    @classmethod
    def from_whoop(cls, per_minute: int, per_day: int, headroom: float) -> BudgetLimits:
        return cls(
            per_minute=max(1, math.floor(per_minute * headroom)),
            per_day=max(1, math.floor(per_day * headroom)),
        )

    def caps(self, priority: Priority) -> tuple[int, int]:
        """(minute cap, day cap) for `priority`; never below one request."""
        return (
            max(1, math.floor(self.per_minute * MINUTE_SHARE[priority])),
            max(1, math.floor(self.per_day * DAY_SHARE[priority])),
        )


def window_wait(
    sent_at: Sequence[float], now: float, window_s: float, cap: int
) -> float:
    """Seconds until one more request fits in a sliding window (0 when it fits now).

    `sent_at` holds the send times still inside the window, oldest first.
    """
    if len(sent_at) < cap:
        return 0.0
    # The request that must leave the window before one more fits.
    leaving = sent_at[len(sent_at) - cap]
    return max(0.0, leaving + window_s - now)


def parse_whoop_limit_headers(
    headers: Mapping[str, str],
) -> tuple[int | None, float | None]:
    """(`X-RateLimit-Remaining`, `X-RateLimit-Reset` seconds) of WHOOP's closest window."""

    def number(name: str) -> float | None:
        value = headers.get(name)
        if value is None:
            return None
        try:
            return float(value.split(",")[0].strip())
        except ValueError:
            return None

    remaining = number("X-RateLimit-Remaining")
    reset = number("X-RateLimit-Reset")
    return (
        int(remaining) if remaining is not None and remaining >= 0 else None,
        reset if reset is not None and reset >= 0 else None,
    )
