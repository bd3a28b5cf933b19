"""Tenants kept in the database: every saved version of a tenant's files, the version in force
on its `tenant_configs` row, and on each call the version that answered it.

Revision ID: 0008_tenant_versions
Revises: 0007_no_costed_stage
Create Date: 2026-12-07 18:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0008_tenant_versions"
down_revision: str | Sequence[str] | None = "0007_no_costed_stage"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
JSON = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "tenant_versions",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("files", JSON, nullable=False),
        sa.Column("content_hash", sa.Text(), nullable=False),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name="pk_tenant_versions"),
        sa.UniqueConstraint("tenant_id", "version", name="uq_tenant_versions_tenant_id_version"),
    )
    # plain ADD COLUMN on both dialects (batch mode would rebuild call_details on SQLite and drop
    # the search triggers of migration 0005)
    op.add_column("tenant_configs", sa.Column("version", sa.Integer(), nullable=True))
    op.add_column("call_details", sa.Column("tenant_version", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE call_details DROP COLUMN tenant_version")
    op.execute("ALTER TABLE tenant_configs DROP COLUMN version")
    op.drop_table("tenant_versions")
