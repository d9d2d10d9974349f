"""The read path's queries in RecordRepository, on SQLite and PostgreSQL."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from whoop_service.db.connections import ConnectionRepository
from whoop_service.db.migrate import upgrade_to_head_async
from whoop_service.db.records import RecordRepository
from whoop_service.db.session import make_engine, make_session_factory
from whoop_service.domain import ConnectionStatus, SyncState

T0 = datetime(2025, 3, 1, 22, 0, tzinfo=UTC)


@pytest.fixture
async def sessions(database_url) -> AsyncIterator:
    await upgrade_to_head_async(database_url)
    engine = make_engine(database_url)
    try:
        yield make_session_factory(engine)
    finally:
        await engine.dispose()


def common(user_id: str, whoop_user_id: int) -> dict:
    return {
        "user_id": user_id,
        "whoop_user_id": whoop_user_id,
        "score_state": "SCORED",
        "created_at": T0,
        "updated_at": T0,
        "raw": {"kept": True},
        "synced_at": T0,
    }


def cycle(cycle_id: int, user_id: str, start: datetime) -> dict:
    return {
        **common(user_id, 1),
        "id": cycle_id,
        "start": start,
        "end": start + timedelta(days=1),
        "timezone_offset": "+01:00",
        "strain": 10.5,
        "kilojoule": 8000.0,
        "average_heart_rate": 60,
        "max_heart_rate": 150,
    }


def recovery(cycle_id: int, user_id: str, score: float) -> dict:
    return {
        **common(user_id, 1),
        "cycle_id": cycle_id,
        "sleep_id": f"sleep-{cycle_id}",
        "user_calibrating": False,
        "recovery_score": score,
        "resting_heart_rate": 50.0,
        "hrv_rmssd_milli": 70.0,
        "spo2_percentage": 97.0,
        "skin_temp_celsius": 33.5,
    }


def state(user_id: str, data_type: str, status: str = "success") -> SyncState:
    return SyncState(
        user_id=user_id,
        data_type=data_type,
        watermark=T0,
        last_sync_at=T0,
        last_success_at=T0 if status == "success" else None,
        status=status,
        records_synced=3,
        error=None if status == "success" else "WhoopServerError",
    )


async def save_connection(session, user_id: str, whoop_user_id: int, status: str):
    await ConnectionRepository(session).save_connection(
        {
            "user_id": user_id,
            "whoop_user_id": whoop_user_id,
            "status": status,
            "scopes": "offline read:cycles",
            "access_token_enc": "x",
            "refresh_token_enc": "y",
            "access_expires_at": T0,
            "connected_at": T0,
            "updated_at": T0,
        }
    )


async def test_status_and_sync_states_come_back_with_or_without_each_other(sessions):
    async with sessions() as session:
        await save_connection(session, "only-connected", 11, "connected")
        await save_connection(session, "both", 12, "needs_reauth")
        repo = RecordRepository(session)
        for kind in ("cycle", "sleep"):
            await repo.save_sync_state(state("only-states", kind))
        for kind in ("cycle", "recovery", "sleep", "workout"):
            await repo.save_sync_state(state("both", kind, "failed"))
        await session.commit()
    async with sessions() as session:
        repo = RecordRepository(session)
        nobody = await repo.get_status_and_sync_states("nobody")
        connected = await repo.get_status_and_sync_states("only-connected")
        states_only = await repo.get_status_and_sync_states("only-states")
        both = await repo.get_status_and_sync_states("both")
    assert nobody == (None, {})
    assert connected == (ConnectionStatus.CONNECTED, {})
    assert states_only == (
        None,
        {
            "cycle": state("only-states", "cycle"),
            "sleep": state("only-states", "sleep"),
        },
    )
    assert both[0] is ConnectionStatus.NEEDS_REAUTH
    assert both[1] == {
        k: state("both", k, "failed") for k in ("cycle", "recovery", "sleep", "workout")
    }


async def test_cycles_come_with_their_own_recoveries_and_without_raw(sessions):
    async with sessions() as session:
        repo = RecordRepository(session)
        await repo.upsert(
            "cycle",
            [
                cycle(3, "a", T0 + timedelta(days=2)),
                cycle(1, "a", T0),
                cycle(2, "a", T0 + timedelta(days=1)),
                cycle(4, "a", T0 + timedelta(days=9)),  # after the window
                cycle(5, "b", T0),
            ],
        )
        # Cycle 2's recovery belongs to another user: not a's to see.
        await repo.upsert(
            "recovery",
            [recovery(1, "a", 71.0), recovery(2, "b", 40.0), recovery(3, "a", 55.0)],
        )
        await session.commit()
    async with sessions() as session:
        cycles, recoveries = await RecordRepository(
            session
        ).list_cycles_with_recoveries("a", T0, T0 + timedelta(days=5))
    assert [c["id"] for c in cycles] == [1, 2, 3]
    assert [(r["cycle_id"], r["recovery_score"]) for r in recoveries] == [
        (1, 71.0),
        (3, 55.0),
    ]
    assert cycles[0]["start"] == T0
    assert cycles[0]["timezone_offset"] == "+01:00"
    assert recoveries[0]["sleep_id"] == "sleep-1"
    assert all("raw" not in row for row in (*cycles, *recoveries))


async def test_records_by_start_are_the_users_in_the_window_oldest_first(sessions):
    async with sessions() as session:
        repo = RecordRepository(session)
        await repo.upsert(
            "cycle",
            [
                cycle(2, "a", T0 + timedelta(hours=30)),
                cycle(1, "a", T0),
                cycle(3, "a", T0 + timedelta(days=3)),  # the end is exclusive
                cycle(4, "b", T0),
            ],
        )
        await session.commit()
    async with sessions() as session:
        rows = await RecordRepository(session).list_by_start(
            "cycle", "a", T0, T0 + timedelta(days=3)
        )
    assert [r["id"] for r in rows] == [1, 2]
    assert "raw" not in rows[0]
