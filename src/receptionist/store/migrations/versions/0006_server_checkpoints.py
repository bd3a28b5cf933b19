"""A server killed mid-call: a heartbeat row per `serve` process, and on each call the process
that handles it and when its transcript was last checkpointed.

The checkpoint is written into `call_details.transcript` itself (not a table of its own): a
live call's row has no transcript yet, so nothing is overwritten; the end of the call and a
reaper then find the transcript where every reader looks for it; and "a checkpoint never
overwrites an ended call" is one condition (`status = 'in_progress'`) on the same row the end
write changes, checked under that row's lock.

Revision ID: 0006_server_checkpoints
Revises: 0005_call_search
Create Date: 2026-12-07 12:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_server_checkpoints"
down_revision: str | Sequence[str] | None = "0005_call_search"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
LIVE = sa.text("status = 'in_progress'")


def upgrade() -> None:
    op.create_table(
        "server_processes",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("host", sa.Text(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("pid_space", sa.Text(), nullable=False, server_default=""),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("heartbeat_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_server_processes"),
    )
    # plain ADD COLUMN on both dialects (batch mode would rebuild the SQLite table and drop
    # the search triggers migration 0005 put on it)
    op.add_column("call_details", sa.Column("server_id", sa.Text(), nullable=True))
    op.add_column("call_details", sa.Column("checkpoint_at", TS, nullable=True))
    op.create_index(
        "ix_call_details_live_server",
        "call_details",
        ["server_id", "started_at"],
        sqlite_where=LIVE,
        postgresql_where=LIVE,
    )


def downgrade() -> None:
    op.drop_index("ix_call_details_live_server", table_name="call_details")
    # SQLite 3.35+ and PostgreSQL both drop a column in place
    op.execute("ALTER TABLE call_details DROP COLUMN checkpoint_at")
    op.execute("ALTER TABLE call_details DROP COLUMN server_id")
    op.drop_table("server_processes")
