"""Pure: which window of WHOOP records a sync of one data type fetches.

The first sync pulls `first_sync_days`. Later ones start at the watermark minus an overlap, because
WHOOP rescores records after the fact; and no later than the oldest record still pending a score,
so a provisional row is fetched again until it is final. The watermark is the end of the last
window fully stored: it moves only after commit.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import cast

from shared.contracts import SyncStatus, TypeSyncStatus
from whoop_service.domain import DATA_TYPES, SyncState

# How old each type's data may be before a read syncs it first (`WHOOP_FRESHNESS_MINUTES`).
DEFAULT_FRESHNESS_MINUTES: Mapping[str, int] = MappingProxyType(
    {"cycle": 120, "recovery": 120, "sleep": 120, "workout": 60}
)


@dataclass(frozen=True, slots=True)
class SyncPolicy:
    """How far back syncs reach and how fresh each type must be for a read."""

    first_sync_days: int = 30
    overlap: timedelta = timedelta(days=3)
    freshness: dict[str, timedelta] = field(
        default_factory=lambda: {
            kind: timedelta(minutes=m) for kind, m in DEFAULT_FRESHNESS_MINUTES.items()
        }
    )
    # A day missing from the database and younger than this triggers a sync on read...
    recent_days: int = 7
    # ...but not more often than this, since a missing day may simply have no data at WHOOP.
    min_resync: timedelta = timedelta(minutes=10)
    # After a type failed at WHOOP, reads leave it alone for `retry_base` doubled per failure in
    # a row, at most `retry_max` (see `retry_at`).
    retry_base: timedelta = timedelta(minutes=1)
    retry_max: timedelta = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Window:
    """Records starting in [start, end); `incremental` windows move the watermark."""

    start: datetime
    end: datetime
    incremental: bool


def plan_window(
    watermark: datetime | None,
    now: datetime,
    policy: SyncPolicy,
    *,
    oldest_pending: datetime | None = None,
    requested_start: datetime | None = None,
    requested_end: datetime | None = None,
) -> Window:
    """The window of one sync of one type."""
    if requested_start is not None:
        end = min(requested_end or now, now)
        return Window(start=min(requested_start, end), end=end, incremental=False)
    earliest = now - timedelta(days=policy.first_sync_days)
    if watermark is None:
        return Window(start=earliest, end=now, incremental=True)
    start = min(watermark - policy.overlap, now)
    if oldest_pending is not None and oldest_pending < start:
        # Reach back for a pending record, but no further than a first sync would; never
        # later than the watermark asks (an old watermark's gap must still be fetched).
        start = min(start, max(oldest_pending, earliest))
    return Window(start=start, end=now, incremental=True)


def stale_types(
    last_success: dict[str, datetime | None], now: datetime, policy: SyncPolicy
) -> list[str]:
    """The data types whose last successful sync is older than their freshness threshold."""
    return [
        t
        for t in DATA_TYPES
        if (seen := last_success.get(t)) is None or now - seen > policy.freshness[t]
    ]


def retry_at(state: SyncState | None, policy: SyncPolicy) -> datetime | None:
    """When reads may try a failing type again; None when it is not failing.

    Exponential from the last attempt: 1, 2, 4 … minutes after 1, 2, 3 … WHOOP failures in a
    row, at most an hour. A WHOOP blip costs a read a minute of stored data; a type that keeps
    failing (a member WHOOP refuses, an outage) costs at most one try an hour per user and type,
    no more often than a healthy workout is refreshed; a success, a webhook batch or a scheduled
    sync that succeeds ends it.
    """
    if state is None or state.failures <= 0 or state.last_sync_at is None:
        return None
    wait = policy.retry_base * (1 << min(state.failures - 1, 20))
    return state.last_sync_at + min(wait, policy.retry_max)


def backing_off(
    states: dict[str, SyncState], now: datetime, policy: SyncPolicy
) -> set[str]:
    """The data types reads must not retry yet (they failed at WHOOP too recently)."""
    return {
        kind
        for kind, state in states.items()
        if (at := retry_at(state, policy)) is not None and now < at
    }


def type_statuses(
    states: dict[str, SyncState],
    now: datetime,
    policy: SyncPolicy,
    granted: Collection[str] = DATA_TYPES,
) -> dict[str, TypeSyncStatus]:
    """Per data type: when it last synced, how that went, and whether it needs a sync now.

    A type outside `granted` (its scope was not granted) is `not_granted` and never needs one.
    """
    stale = set(
        stale_types({k: s.last_success_at for k, s in states.items()}, now, policy)
    )
    out = {}
    for data_type in DATA_TYPES:
        s = states.get(data_type)
        status: SyncStatus | None = None
        if data_type not in granted:
            status = "not_granted"
        elif s is not None and s.status in ("success", "partial", "failed"):
            status = cast(SyncStatus, s.status)
        out[data_type] = TypeSyncStatus(
            last_sync_at=s.last_sync_at if s else None,
            status=status,
            records_synced=s.records_synced if s else 0,
            error=s.error if s and status != "not_granted" else None,
            needs_sync=status != "not_granted"
            and (s is None or status != "success" or data_type in stale),
        )
    return out
