"""Notifications become jobs: due time, lease, language, urgency, read time; status starts `queued`.
Delivery reports are kept (notification_reports).

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
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


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
    op.create_table(
        "notification_reports",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("provider_ref", sa.Text(), nullable=True),
        sa.Column("recipient", sa.Text(), nullable=True),
        sa.Column("template_name", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("notification_id", ID, nullable=True),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_notification_reports"),
    )
    op.create_index(
        "ix_notification_reports_recipient_template_name",
        "notification_reports",
        ["recipient", "template_name"],
    )
    op.create_index(
        "ix_notification_reports_notification_id", "notification_reports", ["notification_id"]
    )


def downgrade() -> None:
    op.drop_table("notification_reports")
    op.drop_index("ix_notifications_provider_ref", "notifications")
    op.drop_index("ix_notifications_status_next_attempt_at", "notifications")
    with op.batch_alter_table("notifications") as batch:
        for name in ("lease_expires_at", "lease_owner", "next_attempt_at", "read_at", "urgent"):
            batch.drop_column(name)
        batch.drop_column("language")
        batch.alter_column(
            "status", existing_type=sa.Text(), existing_nullable=False, server_default="pending"
        )
