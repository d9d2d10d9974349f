"""sync_state.failures: WHOOP failures in a row per (user, type), so reads back off from a
failing type; stored `error`s become stable codes (they were exception class names).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08 03:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What the sync engine stored before errors had codes, and the code each now has.
LEGACY_ERRORS = {
    "WhoopError": "whoop_error",
    "WhoopTransportError": "whoop_unreachable",
    "WhoopServerError": "whoop_server_error",
    "WhoopRateLimited": "whoop_rate_limited",
    "WhoopAuthError": "whoop_token_refused",
    "WhoopForbidden": "whoop_forbidden",
    "WhoopNotFound": "whoop_not_found",
    "WhoopBadResponse": "whoop_bad_response",
    "WhoopOAuthError": "whoop_oauth_refused",
    "WhoopInvalidGrant": "whoop_invalid_grant",
    "WhoopUnavailable": "whoop_unavailable",
}


def _schema() -> str | None:
    # ALTER TABLE is not covered by the env's schema_translate_map: name the schema.
    return "whoop" if op.get_bind().dialect.name == "postgresql" else None


def upgrade() -> None:
    with op.batch_alter_table("sync_state", schema=_schema()) as batch:
        batch.add_column(
            sa.Column("failures", sa.Integer(), server_default="0", nullable=False)
        )
    sync_state = sa.table("sync_state", sa.column("error", sa.String), schema=_schema())
    for legacy, code in LEGACY_ERRORS.items():
        op.execute(
            sync_state.update().where(sync_state.c.error == legacy).values(error=code)
        )


def downgrade() -> None:
    with op.batch_alter_table("sync_state", schema=_schema()) as batch:
        batch.drop_column("failures")
