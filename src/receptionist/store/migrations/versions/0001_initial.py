"""Initial schema: tenant_configs, call_details, exotel_call_details, notifications, ai_token_usage.

Revision ID: 0001_initial
Revises:
Create Date: 2025-01-01 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0001_initial"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Types are spelled out here (not imported from receptionist.store.schema) so this revision keeps
# creating the same tables when schema.py moves on.
JSON = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def _id() -> sa.Column:
    return sa.Column("id", ID, primary_key=True, autoincrement=True)


def _created_at() -> sa.Column:
    return sa.Column("created_at", TS, nullable=False, server_default=sa.func.now())


def _updated_at() -> sa.Column:
    return sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now())


def _count(name: str) -> sa.Column:
    return sa.Column(name, sa.Integer(), nullable=False, server_default="0")


def upgrade() -> None:
    op.create_table(
        "tenant_configs",
        _id(),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("tenant_name", sa.Text(), nullable=False),
        sa.Column("call_type_schema", JSON, nullable=True),
        sa.Column("owner_phone", sa.Text(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("languages", JSON, nullable=True),
        sa.Column("config", JSON, nullable=True),
        sa.Column("prompt_version", sa.Text(), nullable=True),
        _created_at(),
        _updated_at(),
        sa.PrimaryKeyConstraint("id", name="pk_tenant_configs"),
        sa.UniqueConstraint("tenant_id", name="uq_tenant_configs_tenant_id"),
    )

    op.create_table(
        "call_details",
        _id(),
        sa.Column("session_id", sa.Text(), nullable=False),
        sa.Column("call_sid", sa.Text(), nullable=False),
        sa.Column("stream_sid", sa.Text(), nullable=True),
        sa.Column("tenant", sa.Text(), nullable=True),
        sa.Column("from_number", sa.Text(), nullable=True),
        sa.Column("to_number", sa.Text(), nullable=True),
        sa.Column("direction", sa.Text(), nullable=True),
        sa.Column("custom_parameters", JSON, nullable=True),
        sa.Column("sample_rate", sa.Integer(), nullable=True),
        sa.Column("engine", sa.Text(), nullable=True),
        sa.Column("model", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False, server_default="in_progress"),
        sa.Column("end_reason", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("transcript", JSON, nullable=True),
        sa.Column("call_type", sa.Text(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("critical_call_details", JSON, nullable=True),
        sa.Column("stats", JSON, nullable=True),
        sa.Column("events", JSON, nullable=True),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("answered_at", TS, nullable=True),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("stage", sa.Text(), nullable=False, server_default="live"),
        _count("attempts"),
        sa.Column("next_attempt_at", TS, nullable=True),
        sa.Column("lease_owner", sa.Text(), nullable=True),
        sa.Column("lease_expires_at", TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _created_at(),
        _updated_at(),
        sa.PrimaryKeyConstraint("id", name="pk_call_details"),
        sa.UniqueConstraint("session_id", name="uq_call_details_session_id"),
        sa.UniqueConstraint("call_sid", name="uq_call_details_call_sid"),
    )
    op.create_index("ix_call_details_tenant_started_at", "call_details", ["tenant", "started_at"])
    op.create_index("ix_call_details_started_at", "call_details", ["started_at"])
    op.create_index(
        "ix_call_details_stage_next_attempt_at", "call_details", ["stage", "next_attempt_at"]
    )

    op.create_table(
        "exotel_call_details",
        _id(),
        sa.Column("call_sid", sa.Text(), nullable=False),
        sa.Column("tenant", sa.Text(), nullable=True),
        sa.Column("from_number", sa.Text(), nullable=True),
        sa.Column("to_number", sa.Text(), nullable=True),
        sa.Column("call_duration", sa.Integer(), nullable=True),
        sa.Column("call_status", sa.Text(), nullable=True),
        sa.Column("recording_url", sa.Text(), nullable=True),
        sa.Column("price", sa.Numeric(12, 6), nullable=True),
        sa.Column("start_time", TS, nullable=True),
        sa.Column("end_time", TS, nullable=True),
        sa.Column("direction", sa.Text(), nullable=True),
        sa.Column("exotel_data", JSON, nullable=True),
        sa.Column("fetched_at", TS, nullable=True),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name="pk_exotel_call_details"),
        sa.UniqueConstraint("call_sid", name="uq_exotel_call_details_call_sid"),
    )
    op.create_index("ix_exotel_call_details_tenant", "exotel_call_details", ["tenant"])

    op.create_table(
        "notifications",
        _id(),
        sa.Column("call_sid", sa.Text(), nullable=True),
        sa.Column("tenant", sa.Text(), nullable=True),
        sa.Column("recipient", sa.Text(), nullable=True),
        sa.Column("recipient_type", sa.Text(), nullable=True),
        sa.Column("message_type", sa.Text(), nullable=True),
        sa.Column("template_name", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False, server_default="pending"),
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        sa.Column("provider", sa.Text(), nullable=True),
        sa.Column("provider_ref", sa.Text(), nullable=True),
        sa.Column("payload", JSON, nullable=True),
        sa.Column("details", JSON, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        _count("attempts"),
        _created_at(),
        _updated_at(),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("delivered_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_notifications"),
        sa.UniqueConstraint("idempotency_key", name="uq_notifications_idempotency_key"),
    )
    op.create_index("ix_notifications_call_sid", "notifications", ["call_sid"])
    op.create_index("ix_notifications_tenant_created_at", "notifications", ["tenant", "created_at"])

    op.create_table(
        "ai_token_usage",
        _id(),
        sa.Column("call_sid", sa.Text(), nullable=False),
        sa.Column("tenant", sa.Text(), nullable=True),
        sa.Column("model_name", sa.Text(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False, server_default="live"),
        _count("input_tokens"),
        _count("output_tokens"),
        _count("input_audio_tokens"),
        _count("input_text_tokens"),
        _count("output_audio_tokens"),
        _count("output_text_tokens"),
        _count("total_tokens"),
        sa.Column("total_cost", sa.Numeric(12, 6), nullable=True),
        sa.Column("currency", sa.Text(), nullable=True),
        sa.Column("details", JSON, nullable=True),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name="pk_ai_token_usage"),
        sa.UniqueConstraint(
            "call_sid",
            "model_name",
            "purpose",
            name="uq_ai_token_usage_call_sid_model_name_purpose",
        ),
    )
    op.create_index(
        "ix_ai_token_usage_tenant_created_at", "ai_token_usage", ["tenant", "created_at"]
    )


def downgrade() -> None:
    op.drop_table("ai_token_usage")
    op.drop_table("notifications")
    op.drop_table("exotel_call_details")
    op.drop_table("call_details")
    op.drop_table("tenant_configs")
