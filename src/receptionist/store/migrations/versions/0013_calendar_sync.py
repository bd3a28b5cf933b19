"""Google Calendar sync of bookings: one row per booking the sync has touched, what the calendar
holds of it, and the retries of a failed push.

Revision ID: 0013_calendar_sync
Revises: 0012_call_recordings
Create Date: 2026-12-07 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_calendar_sync"
down_revision: str | Sequence[str] | None = "0012_call_recordings"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "calendar_sync",
        sa.Column("booking_id", ID, nullable=False, autoincrement=False),
        sa.Column("tenant", sa.Text(), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("pushed", sa.Text(), nullable=True),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("calendar_id", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("booking_id", name="pk_calendar_sync"),
    )
    op.create_index("ix_calendar_sync_tenant", "calendar_sync", ["tenant"])


def downgrade() -> None:
    op.drop_table("calendar_sync")
