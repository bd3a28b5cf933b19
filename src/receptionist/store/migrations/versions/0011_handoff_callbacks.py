"""Hand-off to a person (call_details.handoff) and AI callbacks (one row per call and reason).

Revision ID: 0011_handoff_callbacks
Revises: 0010_bookings
Create Date: 2026-12-07 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0011_handoff_callbacks"
down_revision: str | Sequence[str] | None = "0010_bookings"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
JSON = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("call_details", sa.Column("handoff", JSON, nullable=True))
    op.create_table(
        "callbacks",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("tenant", sa.Text(), nullable=False),
        sa.Column("call_sid", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("to_number", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("exotel_sid", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name="pk_callbacks"),
        sa.UniqueConstraint("key", name="uq_callbacks_key"),
        sa.UniqueConstraint("token", name="uq_callbacks_token"),
    )
    op.create_index(
        "ix_callbacks_tenant_to_number_created_at",
        "callbacks",
        ["tenant", "to_number", "created_at"],
    )


def downgrade() -> None:
    op.drop_table("callbacks")
    with op.batch_alter_table("call_details") as batch:
        batch.drop_column("handoff")
