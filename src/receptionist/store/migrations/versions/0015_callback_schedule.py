"""Callbacks: a rule's callback outside the tenant's hours waits for the next opening
(`due_at`, status `scheduled`), and each row names the Exotel account that placed its call
(`account_sid`, so the bridge accepts its stream only for that account).

Revision ID: 0015_callback_schedule
Revises: 0013_calendar_sync
Create Date: 2026-12-07 23:59:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_callback_schedule"
down_revision: str | Sequence[str] | None = "0013_calendar_sync"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("callbacks") as batch:
        batch.add_column(sa.Column("due_at", TS, nullable=True))
        batch.add_column(sa.Column("account_sid", sa.Text(), nullable=True))
    op.create_index("ix_callbacks_status_due_at", "callbacks", ["status", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_callbacks_status_due_at", table_name="callbacks")
    with op.batch_alter_table("callbacks") as batch:
        batch.drop_column("account_sid")
        batch.drop_column("due_at")
