"""Pure: the window of one sync, which types are stale, the read backoff, the per-type status.

Plain values only. The backoff table and `not_granted` basics live in test_plan_isolation.py;
this file covers the rest of `sync/plan.py`.
"""

from datetime import UTC, datetime, timedelta

import pytest

from whoop_service.domain import DATA_TYPES, SyncState
from whoop_service.sync.plan import (
    SyncPolicy,
    Window,
    backing_off,
    plan_window,
    retry_at,
    stale_types,
    type_statuses,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
POLICY = SyncPolicy()
DAY = timedelta(days=1)


def state(
    kind: str = "workout",
    *,
    status: str = "success",
    last_sync_at: datetime | None = NOW,
    last_success_at: datetime | None = NOW,
    records_synced: int = 0,
    error: str | None = None,
    failures: int = 0,
) -> SyncState:
    return SyncState(
        user_id="u",
        data_type=kind,
        watermark=last_success_at,
        last_sync_at=last_sync_at,
        last_success_at=last_success_at,
        status=status,
        records_synced=records_synced,
        error=error,
        failures=failures,
    )


# --- plan_window ---------------------------------------------------------------------------


def test_the_first_sync_reaches_back_first_sync_days_and_moves_the_watermark():
    assert plan_window(None, NOW, POLICY) == Window(NOW - 30 * DAY, NOW, True)
    short = SyncPolicy(first_sync_days=2)
    assert plan_window(None, NOW, short) == Window(NOW - 2 * DAY, NOW, True)


@pytest.mark.parametrize(
    ("watermark", "start"),
    [
        (NOW - timedelta(hours=5), NOW - 3 * DAY - timedelta(hours=5)),
        (NOW, NOW - 3 * DAY),
        # An old watermark catches up from where it stopped, past first_sync_days.
        (NOW - 60 * DAY, NOW - 63 * DAY),
        # A watermark ahead of the clock never gives a window that ends before it starts.
        (NOW + 2 * DAY, NOW - DAY),
        (NOW + 10 * DAY, NOW),
    ],
)
def test_later_syncs_start_an_overlap_before_the_watermark(watermark, start):
    assert plan_window(watermark, NOW, POLICY) == Window(start, NOW, True)


def test_the_overlap_is_the_policys():
    policy = SyncPolicy(overlap=timedelta(hours=6))
    window = plan_window(NOW - DAY, NOW, policy)
    assert window.start == NOW - DAY - timedelta(hours=6)


@pytest.mark.parametrize(
    ("oldest_pending", "start"),
    [
        (None, NOW - 4 * DAY),
        # A pending record inside the overlap changes nothing.
        (NOW - 2 * DAY, NOW - 4 * DAY),
        (NOW - 4 * DAY, NOW - 4 * DAY),
        # An older one pulls the start back to it, so it is fetched again until it is final...
        (NOW - 9 * DAY, NOW - 9 * DAY),
        # ...but never further back than a first sync would reach.
        (NOW - 45 * DAY, NOW - 30 * DAY),
    ],
)
def test_the_oldest_pending_record_pulls_the_start_back(oldest_pending, start):
    window = plan_window(NOW - DAY, NOW, POLICY, oldest_pending=oldest_pending)
    assert window == Window(start, NOW, True)


@pytest.mark.parametrize(
    ("requested_start", "requested_end", "window"),
    [
        (NOW - 5 * DAY, NOW - 2 * DAY, Window(NOW - 5 * DAY, NOW - 2 * DAY, False)),
        (NOW - 5 * DAY, None, Window(NOW - 5 * DAY, NOW, False)),
        # The end never passes now.
        (NOW - 5 * DAY, NOW + 3 * DAY, Window(NOW - 5 * DAY, NOW, False)),
        # A range reaching back past first_sync_days is honoured as asked.
        (
            NOW - 400 * DAY,
            NOW - 390 * DAY,
            Window(NOW - 400 * DAY, NOW - 390 * DAY, False),
        ),
        # A start after the end (or in the future) gives an empty window, never a reversed one.
        (NOW - DAY, NOW - 3 * DAY, Window(NOW - 3 * DAY, NOW - 3 * DAY, False)),
        (NOW + DAY, None, Window(NOW, NOW, False)),
    ],
)
def test_a_requested_range_is_fetched_as_asked_and_never_moves_the_watermark(
    requested_start, requested_end, window
):
    planned = plan_window(
        NOW - DAY,
        NOW,
        POLICY,
        oldest_pending=NOW - 20 * DAY,
        requested_start=requested_start,
        requested_end=requested_end,
    )
    assert planned == window


def test_a_requested_range_ignores_the_watermark_and_pending_records():
    kwargs = {"requested_start": NOW - 5 * DAY, "requested_end": NOW - DAY}
    first = plan_window(None, NOW, POLICY, **kwargs)
    later = plan_window(NOW - DAY, NOW, POLICY, oldest_pending=NOW - 9 * DAY, **kwargs)
    assert first == later == Window(NOW - 5 * DAY, NOW - DAY, False)


# --- stale_types ---------------------------------------------------------------------------


def test_types_never_synced_are_stale_in_data_type_order():
    assert stale_types({}, NOW, POLICY) == list(DATA_TYPES)
    assert stale_types(dict.fromkeys(DATA_TYPES), NOW, POLICY) == list(DATA_TYPES)


@pytest.mark.parametrize(
    ("kind", "age", "stale"),
    [
        ("workout", timedelta(minutes=59), False),
        ("workout", timedelta(hours=1), False),
        ("workout", timedelta(hours=1, seconds=1), True),
        ("sleep", timedelta(hours=1, seconds=1), False),
        ("sleep", timedelta(hours=2), False),
        ("sleep", timedelta(hours=2, seconds=1), True),
        ("cycle", timedelta(hours=2, seconds=1), True),
        ("recovery", timedelta(hours=2, seconds=1), True),
        # A success stamped after `now` (clock skew between replicas) is fresh.
        ("workout", -timedelta(minutes=5), False),
    ],
)
def test_a_type_is_stale_once_older_than_its_own_threshold(kind, age, stale):
    fresh = dict.fromkeys(DATA_TYPES, NOW)
    assert stale_types({**fresh, kind: NOW - age}, NOW, POLICY) == (
        [kind] if stale else []
    )


def test_staleness_follows_the_policy_and_ignores_unknown_types():
    policy = SyncPolicy(
        freshness={
            "cycle": DAY,
            "recovery": DAY,
            "sleep": DAY,
            "workout": timedelta(minutes=1),
        }
    )
    seen = {**dict.fromkeys(DATA_TYPES, NOW - timedelta(hours=3)), "steps": None}
    assert stale_types(seen, NOW, policy) == ["workout"]


# --- retry_at / backing_off ----------------------------------------------------------------


@pytest.mark.parametrize(
    "failing",
    [
        state(status="failed", failures=0),
        state(status="failed", failures=-1),
        state(status="failed", failures=3, last_sync_at=None),
    ],
)
def test_no_retry_time_without_failures_or_an_attempt(failing):
    assert retry_at(failing, POLICY) is None


def test_the_backoff_follows_the_policy_and_survives_absurd_failure_counts():
    policy = SyncPolicy(
        retry_base=timedelta(seconds=10), retry_max=timedelta(minutes=5)
    )
    waits = [
        retry_at(state(status="failed", failures=n), policy) - NOW
        for n in (1, 2, 3, 5, 6, 10**6)
    ]
    assert waits == [timedelta(seconds=s) for s in (10, 20, 40, 160, 300, 300)]


@pytest.mark.parametrize(
    ("after", "backing"),
    [
        (timedelta(0), True),
        (timedelta(minutes=3, seconds=59), True),
        # The retry time itself is allowed.
        (timedelta(minutes=4), False),
        (timedelta(minutes=4, microseconds=1), False),
    ],
)
def test_reads_leave_a_failing_type_alone_until_its_retry_time(after, backing):
    # Three failures in a row: 4 minutes.
    states = {"sleep": state("sleep", status="failed", failures=3)}
    assert backing_off(states, NOW + after, POLICY) == ({"sleep"} if backing else set())


def test_nothing_backs_off_without_states_or_failures():
    assert backing_off({}, NOW, POLICY) == set()
    healthy = {kind: state(kind) for kind in DATA_TYPES}
    assert backing_off(healthy, NOW, POLICY) == set()


# --- type_statuses -------------------------------------------------------------------------


def test_a_user_never_synced_needs_every_type():
    statuses = type_statuses({}, NOW, POLICY)
    assert list(statuses) == list(DATA_TYPES)
    for status in statuses.values():
        assert status.last_sync_at is None
        assert status.status is None
        assert status.records_synced == 0
        assert status.error is None
        assert status.needs_sync is True


@pytest.mark.parametrize(
    ("stored", "status", "needs_sync"),
    [
        (state(), "success", False),
        (state(last_success_at=NOW - timedelta(minutes=61)), "success", True),
        (state(status="partial", error="whoop_rate_limited"), "partial", True),
        (state(status="failed", error="whoop_server_error"), "failed", True),
        # A status the contract does not know is reported as none and synced again.
        (state(status="running"), None, True),
    ],
)
def test_a_type_needs_a_sync_unless_it_last_succeeded_and_is_fresh(
    stored, status, needs_sync
):
    got = type_statuses({"workout": stored}, NOW, POLICY)["workout"]
    assert got.status == status
    assert got.needs_sync is needs_sync
    assert got.error == stored.error
    assert got.last_sync_at == stored.last_sync_at


def test_the_status_reports_what_the_last_sync_did():
    last = NOW - timedelta(minutes=20)
    stored = state(
        "sleep", status="partial", last_sync_at=last, records_synced=17, error="x"
    )
    got = type_statuses({"sleep": stored}, NOW, POLICY)["sleep"]
    assert (got.last_sync_at, got.status, got.records_synced, got.error) == (
        last,
        "partial",
        17,
        "x",
    )


def test_a_type_not_granted_keeps_its_history_but_hides_its_error():
    stale = state(
        "sleep",
        status="failed",
        last_sync_at=NOW - DAY,
        last_success_at=NOW - 9 * DAY,
        records_synced=5,
        error="whoop_forbidden",
    )
    statuses = type_statuses(
        {"sleep": stale}, NOW, POLICY, granted=("cycle", "recovery")
    )
    assert statuses["sleep"].status == "not_granted"
    assert statuses["sleep"].needs_sync is False
    assert statuses["sleep"].error is None
    assert statuses["sleep"].last_sync_at == NOW - DAY
    assert statuses["sleep"].records_synced == 5
    assert statuses["workout"].status == "not_granted"
    assert statuses["workout"].needs_sync is False
    assert [k for k, s in statuses.items() if s.needs_sync] == ["cycle", "recovery"]


def test_nothing_granted_means_nothing_to_sync():
    statuses = type_statuses({}, NOW, POLICY, granted=())
    assert {s.status for s in statuses.values()} == {"not_granted"}
    assert not any(s.needs_sync for s in statuses.values())


def test_a_pending_record_never_shortens_the_window_of_an_old_watermark():
    """Found by these tests: with a watermark older than a first sync's reach, a pending record
    moved the start later, and the records in between were never fetched."""
    now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    old = now - timedelta(days=60)
    without = plan_window(old, now, SyncPolicy())
    with_pending = plan_window(
        old, now, SyncPolicy(), oldest_pending=now - timedelta(days=90)
    )
    assert with_pending.start == without.start
