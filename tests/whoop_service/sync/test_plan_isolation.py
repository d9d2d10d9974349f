"""Pure: when a failing type may be tried again, which types a grant allows, what a token answer
without `scope` grants."""

from datetime import UTC, datetime, timedelta

from whoop_service.domain import SyncState, granted_types
from whoop_service.sync.plan import SyncPolicy, backing_off, retry_at, type_statuses
from whoop_service.whoop.oauth import parse_grant

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
POLICY = SyncPolicy()


def failing(failures: int, kind: str = "workout") -> SyncState:
    return SyncState(
        user_id="u",
        data_type=kind,
        watermark=None,
        last_sync_at=T0,
        last_success_at=None,
        status="failed",
        records_synced=0,
        error="whoop_server_error",
        failures=failures,
    )


def test_the_wait_doubles_per_failure_in_a_row_up_to_an_hour():
    waits = [retry_at(failing(n), POLICY) - T0 for n in (1, 2, 3, 6, 7, 50)]
    assert waits == [timedelta(minutes=m) for m in (1, 2, 4, 32, 60, 60)]
    assert retry_at(failing(0), POLICY) is None, "a success ends the backoff"
    assert retry_at(None, POLICY) is None


def test_only_types_inside_their_wait_are_left_alone():
    states = {"workout": failing(2), "sleep": failing(1, "sleep"), "cycle": failing(0)}
    now = T0 + timedelta(seconds=90)
    assert backing_off(states, now, POLICY) == {"workout"}


def test_types_follow_the_granted_scopes():
    assert granted_types(["offline", "read:cycles", "read:recovery"]) == (
        "cycle",
        "recovery",
    )
    assert granted_types([]) == ()


def test_a_type_not_granted_is_not_granted_and_needs_no_sync():
    statuses = type_statuses({"workout": failing(3)}, T0, POLICY, ("cycle",))
    assert statuses["workout"].status == "not_granted"
    assert statuses["workout"].needs_sync is False
    assert statuses["workout"].error is None
    assert statuses["cycle"].status is None
    assert statuses["cycle"].needs_sync


def test_a_token_answer_without_scope_grants_what_was_asked():
    """RFC 6749 §5.1: `scope` may be left out only when it equals the request's."""
    asked = ("offline", "read:cycles")
    grant = parse_grant({"access_token": "a", "expires_in": 3600}, asked)
    assert grant.scopes == asked
    narrowed = parse_grant(
        {"access_token": "a", "expires_in": 3600, "scope": "read:cycles"}, asked
    )
    assert narrowed.scopes == ("read:cycles",)
