"""The WHOOP service's tables (SQLAlchemy Core), portable between PostgreSQL and SQLite.

Tables are declared without a schema; on PostgreSQL the engine maps them into schema `whoop`
(`schema_translate_map`), which Supabase's Data API does not expose. Record tables are keyed on
WHOOP's own ids (a recovery on its `cycle_id`), so an upsert can never make a second copy.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from whoop_service.db.types import BigIntPK, Json, UTCDateTime

SCHEMA = "whoop"

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "pk": "pk_%(table_name)s",
    }
)

USER_ID = String(64)


def _grant_columns() -> list[Column[object]]:
    """A WHOOP grant: its scopes and its tokens, encrypted (auth/crypto.py)."""
    return [
        Column("scopes", Text, nullable=False),
        Column("access_token_enc", Text, nullable=False),
        Column("refresh_token_enc", Text),
        Column("access_expires_at", UTCDateTime, nullable=False),
    ]


connections = Table(
    "connections",
    metadata,
    Column("user_id", USER_ID, primary_key=True),
    Column("whoop_user_id", BigInteger, nullable=False, unique=True),
    Column("status", String(16), nullable=False),  # connected | needs_reauth
    *_grant_columns(),
    Column("token_version", Integer, nullable=False, server_default="1"),
    Column("reauth_reason", String(64)),
    Column("connected_at", UTCDateTime, nullable=False),
    Column("refreshed_at", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
)

oauth_states = Table(
    "oauth_states",
    metadata,
    # SHA-256 of the state: the state itself is a bearer secret until used.
    Column("state_hash", String(64), primary_key=True),
    Column("user_id", USER_ID, nullable=False),
    Column("code_verifier_enc", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime),
    Index(None, "user_id"),
)

# A code exchanged at the OAuth callback, kept until the user who started the flow completes the
# link with their own token (CONTRACT.md §8). Keyed by the SHA-256 of the completion token, which
# is a bearer secret until used; the tokens are encrypted as a connection's are.
pending_grants = Table(
    "pending_grants",
    metadata,
    Column("completion_hash", String(64), primary_key=True),
    Column("user_id", USER_ID, nullable=False),
    Column("whoop_user_id", BigInteger, nullable=False),
    *_grant_columns(),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Index(None, "expires_at"),
    Index(None, "user_id"),
)


def _record_columns() -> list[Column[object]]:
    """Columns every WHOOP record has."""
    return [
        Column("user_id", USER_ID, nullable=False),
        Column("whoop_user_id", BigInteger, nullable=False),
        Column("score_state", String(16), nullable=False),
        Column("created_at", UTCDateTime, nullable=False),
        Column("updated_at", UTCDateTime, nullable=False),
        Column("raw", Json, nullable=False),
        Column("synced_at", UTCDateTime, nullable=False),
    ]


cycles = Table(
    "cycles",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    *_record_columns(),
    Column("start", UTCDateTime, nullable=False),
    Column("end", UTCDateTime),
    Column("timezone_offset", String(6), nullable=False),
    Column("strain", Float),
    Column("kilojoule", Float),
    Column("average_heart_rate", Integer),
    Column("max_heart_rate", Integer),
    Index(None, "user_id", "start"),
)

recoveries = Table(
    "recoveries",
    metadata,
    Column("cycle_id", BigInteger, primary_key=True, autoincrement=False),
    Column("sleep_id", String(36), nullable=False),
    *_record_columns(),
    Column("user_calibrating", Boolean),
    Column("recovery_score", Float),
    Column("resting_heart_rate", Float),
    Column("hrv_rmssd_milli", Float),
    Column("spo2_percentage", Float),
    Column("skin_temp_celsius", Float),
    Index(None, "user_id"),
    Index(None, "sleep_id"),
)

sleeps = Table(
    "sleeps",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("cycle_id", BigInteger, nullable=False),
    *_record_columns(),
    Column("start", UTCDateTime, nullable=False),
    Column("end", UTCDateTime, nullable=False),
    Column("timezone_offset", String(6), nullable=False),
    Column("nap", Boolean, nullable=False),
    Column("sleep_performance_percentage", Float),
    Column("sleep_efficiency_percentage", Float),
    Column("sleep_consistency_percentage", Float),
    Column("respiratory_rate", Float),
    Column("total_in_bed_time_milli", BigInteger),
    Column("total_light_sleep_time_milli", BigInteger),
    Column("total_slow_wave_sleep_time_milli", BigInteger),
    Column("total_rem_sleep_time_milli", BigInteger),
    Index(None, "user_id", "start"),
    Index(None, "cycle_id"),
)

workouts = Table(
    "workouts",
    metadata,
    Column("id", String(36), primary_key=True),
    *_record_columns(),
    Column("start", UTCDateTime, nullable=False),
    Column("end", UTCDateTime, nullable=False),
    Column("timezone_offset", String(6), nullable=False),
    Column("sport_name", String(64), nullable=False),
    Column("strain", Float),
    Column("kilojoule", Float),
    Column("average_heart_rate", Integer),
    Column("max_heart_rate", Integer),
    Column("distance_meter", Float),
    Index(None, "user_id", "start"),
)

sync_state = Table(
    "sync_state",
    metadata,
    Column("user_id", USER_ID, primary_key=True),
    Column(
        "data_type", String(16), primary_key=True
    ),  # recovery | sleep | workout | cycle
    Column(
        "watermark", UTCDateTime
    ),  # moves only after the window's rows are committed
    Column("last_sync_at", UTCDateTime),
    Column("last_success_at", UTCDateTime),
    Column("status", String(16), nullable=False),  # success | partial | failed
    Column("records_synced", Integer, nullable=False, server_default="0"),
    Column(
        "error", String(255)
    ),  # a stable code (engine.error_code), never a class name
    # WHOOP failures in a row; reads back off from the type by it (sync.plan.retry_at)
    Column("failures", Integer, nullable=False, server_default="0"),
)

webhook_events = Table(
    "webhook_events",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("trace_id", String(64), nullable=False, unique=True),
    Column("whoop_user_id", BigInteger, nullable=False),
    Column("event_type", String(32), nullable=False),
    Column("object_id", String(64), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("processed_at", UTCDateTime),
    Column("outcome", String(32)),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("user_id", USER_ID),
    Column("payload", Json, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # queued | running | done | dead
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("max_attempts", Integer, nullable=False),
    Column("run_after", UTCDateTime, nullable=False),
    Column("locked_by", String(64)),
    Column("locked_until", UTCDateTime),
    Column("last_error", String(255)),
    Column("dedupe_key", String(128), unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "status", "run_after", "priority"),
)

leases = Table(
    "leases",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("holder", String(64), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)
