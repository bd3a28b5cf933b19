"""Notifications become jobs: due time, lease, language, urgency, read time; status starts `queued`.

Revision ID: 0002_notification_delivery
Revises: 0001_initial
Create Date: 2026-11-25 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_notification_delivery"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    # batch mode: SQLite cannot change a column's default in place, so the table is rebuilt there.
    with op.batch_alter_table("notifications") as batch:
        batch.alter_column(
            "status",
            existing_type=sa.Text(),
            existing_nullable=False,
            server_default="queued",
        )
        batch.add_column(sa.Column("language", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("urgent", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("read_at", TS, nullable=True))
        batch.add_column(sa.Column("next_attempt_at", TS, nullable=True))
        batch.add_column(sa.Column("lease_owner", sa.Text(), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", TS, nullable=True))
    op.execute("UPDATE notifications SET status = 'queued' WHERE status = 'pending'")
    op.create_index(
        "ix_notifications_status_next_attempt_at", "notifications", ["status", "next_attempt_at"]
    )
    op.create_index("ix_notifications_provider_ref", "notifications", ["provider_ref"])


def downgrade() -> None:
    op.drop_index("ix_notifications_provider_ref", "notifications")
    op.drop_index("ix_notifications_status_next_attempt_at", "notifications")
    with op.batch_alter_table("notifications") as batch:
        for name in ("lease_expires_at", "lease_owner", "next_attempt_at", "read_at", "urgent"):
            batch.drop_column(name)
        batch.drop_column("language")
        batch.alter_column(
            "status", existing_type=sa.Text(), existing_nullable=False, server_default="pending"
        )
