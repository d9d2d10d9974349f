"""Pure maths of the app-wide WHOOP rate budget.

WHOOP limits the whole app (100 requests a minute, 10,000 a day by default). The service spends
`WHOOP_RATE_LIMIT_HEADROOM` of that, in sliding windows. Priorities share the windows unequally: a
lower priority may fill only part of each window, so a burst of backfill can never stand between a
user's pull-to-refresh and WHOOP, whichever replica it runs on; and backfill never takes the last
20 % of the day.

While the replicas cannot share one budget (Redis unreachable), each keeps to an equal share of the
limits, started from what it knew of the shared windows: see `replica_share` and `fallback_preload`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
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
# What interactive sends (users' pull-to-refresh and their reads' syncs) may fill of each window
# by themselves, counted apart: users never spend what webhooks, reconciliation and backfills need
# (CONTRACT.md §9), however many of them refresh at once.
INTERACTIVE_MINUTE_SHARE = 0.5
INTERACTIVE_DAY_SHARE = 0.3


@dataclass(frozen=True, slots=True)
class BudgetLimits:
    """Requests the service may send per window (WHOOP's limits times the headroom)."""

    per_minute: int
    per_day: int
    minute_window_s: float = 60.0
    day_window_s: float = 86_400.0
    # WHOOP's own minute limit (before the headroom); None: the same as `per_minute`.
    whoop_per_minute: int | None = None
    # Shares of the minute and the day that interactive sends may fill by themselves (None: no
    # caps of their own). The service's limits have them (`from_whoop`).
    interactive_shares: tuple[float, float] | None = None

    @classmethod
    def from_whoop(cls, per_minute: int, per_day: int, headroom: float) -> BudgetLimits:
        return cls(
            per_minute=max(1, math.floor(per_minute * headroom)),
            per_day=max(1, math.floor(per_day * headroom)),
            whoop_per_minute=per_minute,
            interactive_shares=(INTERACTIVE_MINUTE_SHARE, INTERACTIVE_DAY_SHARE),
        )

    def own_caps(self, priority: Priority) -> tuple[int, int] | None:
        """(minute cap, day cap) on the sends of `priority` alone; None when it has none."""
        if priority is not Priority.INTERACTIVE or self.interactive_shares is None:
            return None
        minute_share, day_share = self.interactive_shares
        return (
            max(1, math.floor(self.per_minute * minute_share)),
            max(1, math.floor(self.per_day * day_share)),
        )

    def caps(self, priority: Priority) -> tuple[int, int]:
        """(minute cap, day cap) for `priority`; never below one request."""
        return (
            max(1, math.floor(self.per_minute * MINUTE_SHARE[priority])),
            max(1, math.floor(self.per_day * DAY_SHARE[priority])),
        )


def replica_share(limits: BudgetLimits, replicas: int) -> BudgetLimits:
    """One replica's equal part of the app-wide limits, while the replicas cannot share them.

    The shares add up to no more than the limits (unless a limit is below the replica count: each
    replica still gets one request a window, or it could never send anything).
    """
    n = max(1, replicas)
    return replace(
        limits,
        per_minute=max(1, limits.per_minute // n),
        per_day=max(1, limits.per_day // n),
        whoop_per_minute=None,
    )


@dataclass(frozen=True, slots=True)
class Preload:
    """Sends a local share starts with: minute-window send times, and a day count (at now)."""

    minute: tuple[float, ...]
    day: int


def fallback_preload(
    limits: BudgetLimits,
    replicas: int,
    *,
    alone: bool,
    own_minute: Sequence[float],
    day_used: int,
    unseen_s: float,
    now: float,
) -> Preload:
    """What a replica's share counts as spent when it loses the shared budget at `now`.

    The share is `replica_share(limits, replicas)`; shares and the shared sends before `now` must
    never add up past a limit in any window. `alone`: the last look at the shared budget saw no
    other replica, so this one's own sends are the whole minute window. Otherwise the others may
    have filled the minute window just before the outage, unseen: every share starts full, less its
    part of WHOOP's headroom (WHOOP's limit less ours), which the first window may spend on the most
    urgent calls. The day count is known up to `unseen_s` ago; since then at most a minute cap per
    minute window can have been sent.
    """
    n = max(1, replicas)
    share = replica_share(limits, n)
    minute_s = limits.minute_window_s
    if alone:
        minute = tuple(t for t in own_minute if t > now - minute_s)
        unseen = 0
    else:
        headroom = max(0, (limits.whoop_per_minute or 0) - limits.per_minute) // n
        minute = (now,) * max(0, share.per_minute - headroom)
        unseen = limits.per_minute * (math.floor(max(0.0, unseen_s) / minute_s) + 1)
    day = math.ceil(min(limits.per_day, max(0, day_used) + unseen) / n)
    return Preload(minute, min(day, share.per_day))


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
