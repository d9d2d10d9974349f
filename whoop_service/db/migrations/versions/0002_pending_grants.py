"""Pending grants: a code exchanged at the callback, waiting for its user to complete the link.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-08 03:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from whoop_service.db.types import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pending_grants",
        sa.Column("completion_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("whoop_user_id", sa.BigInteger(), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("access_token_enc", sa.Text(), nullable=False),
        sa.Column("refresh_token_enc", sa.Text(), nullable=True),
        sa.Column("access_expires_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("completion_hash", name=op.f("pk_pending_grants")),
    )
    op.create_index(
        op.f("ix_pending_grants_expires_at"), "pending_grants", ["expires_at"]
    )
    op.create_index(op.f("ix_pending_grants_user_id"), "pending_grants", ["user_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE whoop.pending_grants ENABLE ROW LEVEL SECURITY")
        op.execute(
            """
            DO $$
            DECLARE r text;
            BEGIN
              FOREACH r IN ARRAY ARRAY['anon', 'authenticated'] LOOP
                IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
                  EXECUTE format('REVOKE ALL ON whoop.pending_grants FROM %I', r);
                END IF;
              END LOOP;
            END $$;
            """
        )


def downgrade() -> None:
    op.drop_index(op.f("ix_pending_grants_user_id"), table_name="pending_grants")
    op.drop_index(op.f("ix_pending_grants_expires_at"), table_name="pending_grants")
    op.drop_table("pending_grants")
