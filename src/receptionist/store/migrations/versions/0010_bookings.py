"""Bookings made during calls (a slot of a resource, or an order), held `pending` until the call
ends; one active booking per tenant, resource and start (a partial unique index); and the
owner's calendar feed tokens.

Revision ID: 0010_bookings
Revises: 0009_webhooks
Create Date: 2026-12-07 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0010_bookings"
down_revision: str | Sequence[str] | None = "0009_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
JSON = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ACTIVE_SLOT = sa.text("kind = 'slot' AND status IN ('pending', 'confirmed')")


def upgrade() -> None:
    op.create_table(
        "bookings",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.Text(), nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("resource", sa.Text(), nullable=False),
        sa.Column("starts_at", TS, nullable=True),
        sa.Column("ends_at", TS, nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("call_sid", sa.Text(), nullable=True),
        sa.Column("customer_name", sa.Text(), nullable=True),
        sa.Column("customer_phone", sa.Text(), nullable=True),
        sa.Column("details", JSON, nullable=True),
        sa.Column("expires_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name="pk_bookings"),
        sa.UniqueConstraint("reference", name="uq_bookings_reference"),
    )
    op.create_index("ix_bookings_tenant_starts_at", "bookings", ["tenant", "starts_at"])
    op.create_index("ix_bookings_call_sid", "bookings", ["call_sid"])
    op.create_index("ix_bookings_tenant_customer_phone", "bookings", ["tenant", "customer_phone"])
    op.create_index(
        "uq_bookings_active_slot",
        "bookings",
        ["tenant", "resource", "starts_at"],
        unique=True,
        sqlite_where=ACTIVE_SLOT,
        postgresql_where=ACTIVE_SLOT,
    )
    op.create_table(
        "calendar_feeds",
        sa.Column("tenant", sa.Text(), nullable=False),
        sa.Column("token_hash", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("tenant", name="pk_calendar_feeds"),
        sa.UniqueConstraint("token_hash", name="uq_calendar_feeds_token_hash"),
    )


def downgrade() -> None:
    op.drop_table("calendar_feeds")
    op.drop_table("bookings")
