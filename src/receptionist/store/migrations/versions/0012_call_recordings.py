"""Call recordings: one row per recorded call, uploaded with retries under a lease, deleted after
the tenant's retention.

Revision ID: 0012_call_recordings
Revises: 0011_handoff_callbacks
Create Date: 2026-12-07 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_call_recordings"
down_revision: str | Sequence[str] | None = "0011_handoff_callbacks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "call_recordings",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("call_sid", sa.Text(), nullable=False),
        sa.Column("tenant", sa.Text(), nullable=False),
        sa.Column("node", sa.Text(), nullable=False),
        sa.Column("raw_base", sa.Text(), nullable=True),
        sa.Column("sample_rate", sa.Integer(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("store", sa.Text(), nullable=True),
        sa.Column("store_key", sa.Text(), nullable=True),
        sa.Column("content_type", sa.Text(), nullable=True),
        sa.Column("bytes", sa.Integer(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", TS, nullable=True),
        sa.Column("lease_owner", sa.Text(), nullable=True),
        sa.Column("lease_expires_at", TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("stored_at", TS, nullable=True),
        sa.Column("deleted_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_call_recordings"),
        sa.UniqueConstraint("call_sid", name="uq_call_recordings_call_sid"),
    )
    op.create_index(
        "ix_call_recordings_status_next_attempt_at",
        "call_recordings",
        ["status", "next_attempt_at"],
    )
    op.create_index(
        "ix_call_recordings_tenant_created_at", "call_recordings", ["tenant", "created_at"]
    )


def downgrade() -> None:
    op.drop_table("call_recordings")
