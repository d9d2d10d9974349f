"""Initial tables: connections, OAuth states, WHOOP records, sync state, webhooks, jobs, leases.

Revision ID: 0001
Revises:
Create Date: 2026-11-22 04:00:36.588025
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from whoop_service.db.types import BigIntPK, Json, UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


TABLES = (
    "connections",
    "oauth_states",
    "cycles",
    "recoveries",
    "sleeps",
    "workouts",
    "sync_state",
    "webhook_events",
    "jobs",
    "leases",
)


def upgrade() -> None:
    op.create_table(
        "connections",
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("whoop_user_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("access_token_enc", sa.Text(), nullable=False),
        sa.Column("refresh_token_enc", sa.Text(), nullable=True),
        sa.Column("access_expires_at", UTCDateTime(), nullable=False),
        sa.Column("token_version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("reauth_reason", sa.String(length=64), nullable=True),
        sa.Column("connected_at", UTCDateTime(), nullable=False),
        sa.Column("refreshed_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_connections")),
        sa.UniqueConstraint("whoop_user_id", name=op.f("uq_connections_whoop_user_id")),
    )
    op.create_table(
        "cycles",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("whoop_user_id", sa.BigInteger(), nullable=False),
        sa.Column("score_state", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("raw", Json, nullable=False),
        sa.Column("synced_at", UTCDateTime(), nullable=False),
        sa.Column("start", UTCDateTime(), nullable=False),
        sa.Column("end", UTCDateTime(), nullable=True),
        sa.Column("timezone_offset", sa.String(length=6), nullable=False),
        sa.Column("strain", sa.Float(), nullable=True),
        sa.Column("kilojoule", sa.Float(), nullable=True),
        sa.Column("average_heart_rate", sa.Integer(), nullable=True),
        sa.Column("max_heart_rate", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cycles")),
    )
    op.create_index(op.f("ix_cycles_user_id_start"), "cycles", ["user_id", "start"])

    op.create_table(
        "jobs",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.Column("payload", Json, nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("run_after", UTCDateTime(), nullable=False),
        sa.Column("locked_by", sa.String(length=64), nullable=True),
        sa.Column("locked_until", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(length=255), nullable=True),
        sa.Column("dedupe_key", sa.String(length=128), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_jobs_dedupe_key")),
    )
    op.create_index(
        op.f("ix_jobs_status_run_after_priority"),
        "jobs",
        ["status", "run_after", "priority"],
    )

    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    op.create_table(
        "oauth_states",
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("code_verifier_enc", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("state_hash", name=op.f("pk_oauth_states")),
    )
    op.create_index(op.f("ix_oauth_states_user_id"), "oauth_states", ["user_id"])

    op.create_table(
        "recoveries",
        sa.Column("cycle_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("sleep_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("whoop_user_id", sa.BigInteger(), nullable=False),
        sa.Column("score_state", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("raw", Json, nullable=False),
        sa.Column("synced_at", UTCDateTime(), nullable=False),
        sa.Column("user_calibrating", sa.Boolean(), nullable=True),
        sa.Column("recovery_score", sa.Float(), nullable=True),
        sa.Column("resting_heart_rate", sa.Float(), nullable=True),
        sa.Column("hrv_rmssd_milli", sa.Float(), nullable=True),
        sa.Column("spo2_percentage", sa.Float(), nullable=True),
        sa.Column("skin_temp_celsius", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("cycle_id", name=op.f("pk_recoveries")),
    )
    op.create_index(op.f("ix_recoveries_sleep_id"), "recoveries", ["sleep_id"])
    op.create_index(op.f("ix_recoveries_user_id"), "recoveries", ["user_id"])

    op.create_table(
        "sleeps",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("cycle_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("whoop_user_id", sa.BigInteger(), nullable=False),
        sa.Column("score_state", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("raw", Json, nullable=False),
        sa.Column("synced_at", UTCDateTime(), nullable=False),
        sa.Column("start", UTCDateTime(), nullable=False),
        sa.Column("end", UTCDateTime(), nullable=False),
        sa.Column("timezone_offset", sa.String(length=6), nullable=False),
        sa.Column("nap", sa.Boolean(), nullable=False),
        sa.Column("sleep_performance_percentage", sa.Float(), nullable=True),
        sa.Column("sleep_efficiency_percentage", sa.Float(), nullable=True),
        sa.Column("sleep_consistency_percentage", sa.Float(), nullable=True),
        sa.Column("respiratory_rate", sa.Float(), nullable=True),
        sa.Column("total_in_bed_time_milli", sa.BigInteger(), nullable=True),
        sa.Column("total_light_sleep_time_milli", sa.BigInteger(), nullable=True),
        sa.Column("total_slow_wave_sleep_time_milli", sa.BigInteger(), nullable=True),
        sa.Column("total_rem_sleep_time_milli", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sleeps")),
    )
    op.create_index(op.f("ix_sleeps_cycle_id"), "sleeps", ["cycle_id"])
    op.create_index(op.f("ix_sleeps_user_id_start"), "sleeps", ["user_id", "start"])

    op.create_table(
        "sync_state",
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("data_type", sa.String(length=16), nullable=False),
        sa.Column("watermark", UTCDateTime(), nullable=True),
        sa.Column("last_sync_at", UTCDateTime(), nullable=True),
        sa.Column("last_success_at", UTCDateTime(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("records_synced", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("user_id", "data_type", name=op.f("pk_sync_state")),
    )
    op.create_table(
        "webhook_events",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("trace_id", sa.String(length=64), nullable=False),
        sa.Column("whoop_user_id", sa.BigInteger(), nullable=False),
        sa.Column("event_type", sa.String(length=32), nullable=False),
        sa.Column("object_id", sa.String(length=64), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("processed_at", UTCDateTime(), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_events")),
        sa.UniqueConstraint("trace_id", name=op.f("uq_webhook_events_trace_id")),
    )
    op.create_table(
        "workouts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("whoop_user_id", sa.BigInteger(), nullable=False),
        sa.Column("score_state", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("raw", Json, nullable=False),
        sa.Column("synced_at", UTCDateTime(), nullable=False),
        sa.Column("start", UTCDateTime(), nullable=False),
        sa.Column("end", UTCDateTime(), nullable=False),
        sa.Column("timezone_offset", sa.String(length=6), nullable=False),
        sa.Column("sport_name", sa.String(length=64), nullable=False),
        sa.Column("strain", sa.Float(), nullable=True),
        sa.Column("kilojoule", sa.Float(), nullable=True),
        sa.Column("average_heart_rate", sa.Integer(), nullable=True),
        sa.Column("max_heart_rate", sa.Integer(), nullable=True),
        sa.Column("distance_meter", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workouts")),
    )
    op.create_index(op.f("ix_workouts_user_id_start"), "workouts", ["user_id", "start"])

    if op.get_bind().dialect.name == "postgresql":
        _lock_down_postgres()


def _lock_down_postgres() -> None:
    """Row-level security on (no policies: only the service's own role reads), no Data API roles."""
    for table in TABLES:
        op.execute(f"ALTER TABLE whoop.{table} ENABLE ROW LEVEL SECURITY")
    # Supabase's API roles exist only on Supabase; elsewhere there is nothing to revoke.
    op.execute(
        """
        DO $$
        DECLARE r text;
        BEGIN
          FOREACH r IN ARRAY ARRAY['anon', 'authenticated'] LOOP
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
              EXECUTE format('REVOKE ALL ON SCHEMA whoop FROM %I', r);
              EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA whoop FROM %I', r);
            END IF;
          END LOOP;
        END $$;
        """
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_workouts_user_id_start"), table_name="workouts")

    op.drop_table("workouts")
    op.drop_table("webhook_events")
    op.drop_table("sync_state")
    op.drop_index(op.f("ix_sleeps_user_id_start"), table_name="sleeps")
    op.drop_index(op.f("ix_sleeps_cycle_id"), table_name="sleeps")

    op.drop_table("sleeps")
    op.drop_index(op.f("ix_recoveries_user_id"), table_name="recoveries")
    op.drop_index(op.f("ix_recoveries_sleep_id"), table_name="recoveries")

    op.drop_table("recoveries")
    op.drop_index(op.f("ix_oauth_states_user_id"), table_name="oauth_states")

    op.drop_table("oauth_states")
    op.drop_table("leases")
    op.drop_index(op.f("ix_jobs_status_run_after_priority"), table_name="jobs")

    op.drop_table("jobs")
    op.drop_index(op.f("ix_cycles_user_id_start"), table_name="cycles")

    op.drop_table("cycles")
    op.drop_table("connections")
