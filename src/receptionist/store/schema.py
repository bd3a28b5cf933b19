"""Database tables (SQLAlchemy 2 Core), portable across SQLite and PostgreSQL.

The table names and the seed's columns are kept (tenant_configs, call_details, exotel_call_details,
notifications, ai_token_usage); the columns the design needs are added. The Alembic migrations in
``receptionist/store/migrations/versions`` create exactly these tables; a test compares the two.

Portability rules:
- JSON columns are ``JSON`` on SQLite and ``JSONB`` on PostgreSQL; Python ``None`` is stored as SQL
  NULL (not the JSON literal ``null``).
- Timestamps are ``UTCDateTime``: ``TIMESTAMP WITH TIME ZONE`` on PostgreSQL, ISO text on SQLite;
  values are always written and returned as timezone-aware UTC datetimes.
- Auto-increment primary keys are BIGINT on PostgreSQL and INTEGER (the rowid) on SQLite.
- ``call_details.tenant`` is deliberately not a foreign key: a call of an unknown or not yet synced
  tenant is still recorded.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect

# --- values used in the call record ------------------------------------------------------------

CALL_STATUS_IN_PROGRESS = "in_progress"
CALL_STATUS_COMPLETED = "completed"
CALL_STATUS_FAILED = "failed"
CALL_STATUS_REJECTED = "rejected"  # unknown/inactive tenant or bad credentials: never answered
CALL_STATUSES = frozenset(
    {CALL_STATUS_IN_PROGRESS, CALL_STATUS_COMPLETED, CALL_STATUS_FAILED, CALL_STATUS_REJECTED}
)
#: The end reason of a call whose server process died (SIGKILL, a lost machine) while it was
#: live: closed by another server's reaper (status `failed`) with the last checkpoint as its
#: transcript (store/checkpoints.py).
END_REASON_SERVER_LOST = "server_lost"


class Stage(StrEnum):
    """Where a call is on its way through the post-call pipeline (`call_details.stage`).

    The values are what the rows store: never rename one (a migration would have to rewrite
    every row). The steps between them are postcall/pipeline.py's.
    """

    #: The call is being handled by a bridge; the post-call pipeline leaves it alone.
    LIVE = "live"
    #: The call ended and its transcript is stored: the first stage the pipeline works on.
    TRANSCRIPT_SAVED = "transcript_saved"
    ANALYSED = "analysed"
    MESSAGES_QUEUED = "messages_queued"  # and the call's tokens costed
    EXOTEL_DETAILS = "exotel_details"  # waiting for Exotel's record of the call
    DONE = "done"
    FAILED = "failed"  # given up; last_error says why


TOKEN_PURPOSES = frozenset({"live", "analysis", "message"})


# --- values used in notifications --------------------------------------------------------------
# queued → sending → sent → delivered → read; or failed (final), unknown (the send may or may not
# have reached the provider: resolved by its report or by a person), skipped (decided not to send,
# with the reason), logged (the `log` provider: nothing left the machine).
NOTIFY_QUEUED = "queued"
NOTIFY_SENDING = "sending"
NOTIFY_SENT = "sent"
NOTIFY_DELIVERED = "delivered"
NOTIFY_READ = "read"
NOTIFY_FAILED = "failed"
NOTIFY_UNKNOWN = "unknown"
NOTIFY_SKIPPED = "skipped"
NOTIFY_LOGGED = "logged"


def utcnow() -> datetime:
    """The current time as a timezone-aware UTC datetime."""
    return datetime.now(UTC)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timezone-aware timestamp stored in UTC on every backend.

    Naive datetimes are taken to be UTC. SQLite has no time zone support, so the value is stored
    there as naive UTC and given ``tzinfo=UTC`` again when read.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def json_type() -> sa.types.TypeEngine[Any]:
    """JSON on SQLite, JSONB on PostgreSQL; ``None`` is stored as SQL NULL."""
    return sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def id_type() -> sa.types.TypeEngine[int]:
    """BIGINT auto-increment on PostgreSQL, INTEGER (the rowid alias) on SQLite."""
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def _created_at() -> sa.Column[datetime]:
    return sa.Column(
        "created_at", UTCDateTime(), nullable=False, default=utcnow, server_default=sa.func.now()
    )


def _updated_at() -> sa.Column[datetime]:
    return sa.Column(
        "updated_at",
        UTCDateTime(),
        nullable=False,
        default=utcnow,
        onupdate=utcnow,
        server_default=sa.func.now(),
    )


tenant_configs = sa.Table(
    "tenant_configs",
    metadata,
    sa.Column("id", id_type(), primary_key=True, autoincrement=True),
    sa.Column("tenant_id", sa.Text(), nullable=False),
    sa.Column("tenant_name", sa.Text(), nullable=False),
    sa.Column("call_type_schema", json_type(), nullable=True),
    sa.Column("owner_phone", sa.Text(), nullable=True),
    sa.Column("is_active", sa.Boolean(), nullable=False, default=True, server_default=sa.true()),
    sa.Column("languages", json_type(), nullable=True),
    # the whole parsed tenant.toml
    sa.Column("config", json_type(), nullable=True),
    # a hash of the tenant's prompt files: tells which prompt answered a call
    sa.Column("prompt_version", sa.Text(), nullable=True),
    # the tenant_versions row in force (None: the tenant was only synced as a summary)
    sa.Column("version", sa.Integer(), nullable=True),
    _created_at(),
    _updated_at(),
    sa.UniqueConstraint("tenant_id"),
)

#: Every saved version of every tenant: its files, whole (tenants/bundle.py), never changed
#: once written; restoring an old one saves it again as the newest.
tenant_versions = sa.Table(
    "tenant_versions",
    metadata,
    sa.Column("id", id_type(), primary_key=True, autoincrement=True),
    sa.Column("tenant_id", sa.Text(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("files", json_type(), nullable=False),  # path inside the tenant -> text
    sa.Column("content_hash", sa.Text(), nullable=False),
    sa.Column("author", sa.Text(), nullable=False),  # "folder", "cli", "key:<id>"
    sa.Column("note", sa.Text(), nullable=True),
    _created_at(),
    sa.UniqueConstraint("tenant_id", "version"),
)


#: Everything the owner's stats read of a call, after the tenant and time range they filter on.
STATS_INDEX_COLUMNS = (
    "tenant", "started_at", "status", "answered_at", "duration_ms", "call_type", "call_sid",
)  # fmt: skip

call_details = sa.Table(
    "call_details",
    metadata,
    sa.Column("id", id_type(), primary_key=True, autoincrement=True),
    sa.Column("session_id", sa.Text(), nullable=False),
    sa.Column("call_sid", sa.Text(), nullable=False),
    sa.Column("stream_sid", sa.Text(), nullable=True),
    sa.Column("tenant", sa.Text(), nullable=True),
    # the tenant version that answered (tenant_versions.version; None: a folder tenant)
    sa.Column("tenant_version", sa.Integer(), nullable=True),
    sa.Column("from_number", sa.Text(), nullable=True),
    sa.Column("to_number", sa.Text(), nullable=True),
    sa.Column("direction", sa.Text(), nullable=True),
    sa.Column("custom_parameters", json_type(), nullable=True),
    sa.Column("sample_rate", sa.Integer(), nullable=True),
    sa.Column("engine", sa.Text(), nullable=True),
    sa.Column("model", sa.Text(), nullable=True),
    sa.Column(
        "status",
        sa.Text(),
        nullable=False,
        default=CALL_STATUS_IN_PROGRESS,
        server_default=CALL_STATUS_IN_PROGRESS,
    ),
    sa.Column("end_reason", sa.Text(), nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
    # list of turns: {speaker: "caller"|"agent", text, start_ms, end_ms, interrupted?}
    sa.Column("transcript", json_type(), nullable=True),
    sa.Column("call_type", sa.Text(), nullable=True),
    sa.Column("summary", sa.Text(), nullable=True),
    sa.Column("critical_call_details", json_type(), nullable=True),
    # frame counters, bad-input counters, latency figures
    sa.Column("stats", json_type(), nullable=True),
    # list of {t_ms, kind, detail}: bad input, warnings
    sa.Column("events", json_type(), nullable=True),
    sa.Column("started_at", UTCDateTime(), nullable=True),
    sa.Column("answered_at", UTCDateTime(), nullable=True),  # first agent audio
    sa.Column("ended_at", UTCDateTime(), nullable=True),
    sa.Column("duration_ms", sa.Integer(), nullable=True),
    # post-call pipeline: the call record is the job
    sa.Column(
        "stage", sa.Text(), nullable=False, default=Stage.LIVE, server_default=Stage.LIVE.value
    ),
    sa.Column("attempts", sa.Integer(), nullable=False, default=0, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
    sa.Column("lease_owner", sa.Text(), nullable=True),
    sa.Column("lease_expires_at", UTCDateTime(), nullable=True),
    sa.Column("last_error", sa.Text(), nullable=True),
    # the call's distinct words (store/search.py), written with its transcript and summary;
    # indexed for search by migration 0005 (PostgreSQL GIN over its words, SQLite FTS5 table
    # `call_search` kept by triggers), which are not modelled here
    sa.Column("search_text", sa.Text(), nullable=True),
    # the caller's digits reversed: "number ends with" is a prefix range on an index
    sa.Column("caller_key", sa.Text(), nullable=True),
    # the server process handling the live call (server_processes.id) and when its transcript
    # was last checkpointed into `transcript`: what a reaper needs when that process dies
    sa.Column("server_id", sa.Text(), nullable=True),
    sa.Column("checkpoint_at", UTCDateTime(), nullable=True),
    # a hand-off to a person (store/handoffs.py): {who, reason, at, outcome?, outcome_at?}
    sa.Column("handoff", json_type(), nullable=True),
    _created_at(),
    _updated_at(),
    sa.UniqueConstraint("session_id"),
    sa.UniqueConstraint("call_sid"),
    # the owner's list: keyset pages in start order, alone or with one filter
    sa.Index(None, "tenant", "started_at", "id"),
    sa.Index(None, "tenant", "call_type", "started_at", "id"),
    sa.Index(None, "tenant", "status", "started_at", "id"),
    sa.Index(None, "tenant", "caller_key"),
    sa.Index(None, "started_at", "id"),
    # the owner's stats read a range of one tenant's calls from this index alone (no row with
    # its transcript is visited): everything the counts, durations and costs need
    sa.Index("ix_call_details_stats", *STATS_INDEX_COLUMNS),
    sa.Index(None, "stage", "next_attempt_at"),
    # the reaper's lookup: only live calls are in it, so it stays as small as the calls in
    # progress (started_at: rows of servers that predate server_id are reaped by age)
    sa.Index(
        "ix_call_details_live_server",
        "server_id",
        "started_at",
        sqlite_where=sa.text("status = 'in_progress'"),
        postgresql_where=sa.text("status = 'in_progress'"),
    ),
)

#: Objects migration 0005 makes that schema.py does not model (a GIN expression index, the
#: SQLite FTS5 table and its shadow tables): the schema-vs-migration comparison skips them.
SEARCH_INDEX_OBJECTS = ("call_search", "ix_call_details_search")


exotel_call_details = sa.Table(
    "exotel_call_details",
    metadata,
    sa.Column("id", id_type(), primary_key=True, autoincrement=True),
    sa.Column("call_sid", sa.Text(), nullable=False),
    sa.Column("tenant", sa.Text(), nullable=True),
    sa.Column("from_number", sa.Text(), nullable=True),
    sa.Column("to_number", sa.Text(), nullable=True),
    sa.Column("call_duration", sa.Integer(), nullable=True),  # seconds, as Exotel reports it
    sa.Column("call_status", sa.Text(), nullable=True),
    sa.Column("recording_url", sa.Text(), nullable=True),
    sa.Column("price", sa.Numeric(12, 6), nullable=True),
    sa.Column("start_time", UTCDateTime(), nullable=True),
    sa.Column("end_time", UTCDateTime(), nullable=True),
    sa.Column("direction", sa.Text(), nullable=True),
    sa.Column("exotel_data", json_type(), nullable=True),  # the raw API answer
    sa.Column("fetched_at", UTCDateTime(), nullable=True),
    _created_at(),
    sa.UniqueConstraint("call_sid"),
    sa.Index(None, "tenant"),
)


notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("id", id_type(), primary_key=True, autoincrement=True),
    sa.Column("call_sid", sa.Text(), nullable=True),
    sa.Column("tenant", sa.Text(), nullable=True),
    sa.Column("recipient", sa.Text(), nullable=True),
    sa.Column("recipient_type", sa.Text(), nullable=True),  # customer | owner
    sa.Column("message_type", sa.Text(), nullable=True),
    sa.Column("template_name", sa.Text(), nullable=True),
    sa.Column("status", sa.Text(), nullable=False, default="queued", server_default="queued"),
    sa.Column("idempotency_key", sa.Text(), nullable=False),
    sa.Column("language", sa.Text(), nullable=True),
    sa.Column("urgent", sa.Boolean(), nullable=False, default=False, server_default=sa.false()),
    sa.Column("provider", sa.Text(), nullable=True),
    sa.Column("provider_ref", sa.Text(), nullable=True),
    sa.Column("payload", json_type(), nullable=True),
    sa.Column("details", json_type(), nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("attempts", sa.Integer(), nullable=False, default=0, server_default="0"),
    _created_at(),
    _updated_at(),
    sa.Column("sent_at", UTCDateTime(), nullable=True),
    sa.Column("delivered_at", UTCDateTime(), nullable=True),
    sa.Column("read_at", UTCDateTime(), nullable=True),
    # the send is a small job of its own: due time and a lease, like call_details' stages
    sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
    sa.Column("lease_owner", sa.Text(), nullable=True),
    sa.Column("lease_expires_at", UTCDateTime(), nullable=True),
    sa.UniqueConstraint("idempotency_key"),
    sa.Index(None, "call_sid"),
    sa.Index(None, "tenant", "created_at"),
    sa.Index(None, "status", "next_attempt_at"),
    sa.Index(None, "provider_ref"),
)


# Events for the business's own systems (hooks/): one row per event and URL, written in the
# transaction that makes the event true, delivered (at least once) by the worker, retried with
# backoff; the receiver de-duplicates by event_id.
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", id_type(), primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.Text(), nullable=False),
    sa.Column("event_type", sa.Text(), nullable=False),
    sa.Column("tenant", sa.Text(), nullable=False),
    sa.Column("call_sid", sa.Text(), nullable=True),
    sa.Column("url", sa.Text(), nullable=False),
    sa.Column("secret_env", sa.Text(), nullable=False),
    sa.Column("payload", json_type(), nullable=False),
    sa.Column("status", sa.Text(), nullable=False),  # pending | delivered | failed
    sa.Column("attempts", sa.Integer(), nullable=False, default=0, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
    sa.Column("lease_owner", sa.Text(), nullable=True),
    sa.Column("lease_expires_at", UTCDateTime(), nullable=True),
    sa.Column("last_status_code", sa.Integer(), nullable=True),
    sa.Column("last_error", sa.Text(), nullable=True),
    _created_at(),
    _updated_at(),
    sa.Column("delivered_at", UTCDateTime(), nullable=True),
    sa.UniqueConstraint("event_id", "url"),
    sa.Index(None, "status", "next_attempt_at"),
    sa.Index(None, "tenant", "created_at"),
)

# AI callbacks (callbacks.py): one row per (call, reason), its `key` unique, so a call is never
# called back twice for one reason, whoever asks and however often; `token` names the row in the
# stream URL Exotel opens for the new call.
callbacks = sa.Table(
    "callbacks",
    metadata,
    sa.Column("id", id_type(), primary_key=True, autoincrement=True),
    sa.Column("key", sa.Text(), nullable=False),  # callback:<call_sid>:<reason>
    sa.Column("token", sa.Text(), nullable=False),
    sa.Column("tenant", sa.Text(), nullable=False),
    sa.Column("call_sid", sa.Text(), nullable=False),  # the call being called back
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("to_number", sa.Text(), nullable=False),
    # scheduled | placing | placed | answered | no_answer | failed | rate_limited
    sa.Column("status", sa.Text(), nullable=False),
    sa.Column("exotel_sid", sa.Text(), nullable=True),  # the new call's sid
    sa.Column("error", sa.Text(), nullable=True),
    _created_at(),
    _updated_at(),
    # a `scheduled` callback is dialled by the worker from this time (the tenant's next opening)
    sa.Column("due_at", UTCDateTime(), nullable=True),
    # the Exotel account that placed the call: the bridge accepts its stream only from it
    sa.Column("account_sid", sa.Text(), nullable=True),
    sa.UniqueConstraint("key"),
    sa.UniqueConstraint("token"),
    sa.Index(None, "tenant", "to_number", "created_at"),
    sa.Index(None, "status", "due_at"),
)

# Every attempt at a webhook delivery: what the owner's window shows for it.
webhook_attempts = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column("id", id_type(), primary_key=True, autoincrement=True),
    sa.Column("delivery_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
    sa.Column("attempted_at", UTCDateTime(), nullable=False),
    sa.Column("status_code", sa.Integer(), nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("duration_ms", sa.Integer(), nullable=False),
    sa.Index(None, "delivery_id"),
)


# Call recordings (recordings/): one row per recorded call, written once the bridge's raw tape
# is finished; the uploader on the machine that holds the tape (`node`) encodes and stores it,
# retried with backoff under a lease; retention deletes it later (the row stays, `deleted`).
call_recordings = sa.Table(
    "call_recordings",
    metadata,
    sa.Column("id", id_type(), primary_key=True, autoincrement=True),
    sa.Column("call_sid", sa.Text(), nullable=False),
    sa.Column("tenant", sa.Text(), nullable=False),
    sa.Column("node", sa.Text(), nullable=False),  # the machine whose disk holds the raw tape
    sa.Column("raw_base", sa.Text(), nullable=True),  # the raw tracks' path without suffix
    sa.Column("sample_rate", sa.Integer(), nullable=False),
    # pending | stored | failed | opted_out | empty | deleted
    sa.Column("status", sa.Text(), nullable=False),
    sa.Column("store", sa.Text(), nullable=True),  # local | s3
    sa.Column("store_key", sa.Text(), nullable=True),
    sa.Column("content_type", sa.Text(), nullable=True),
    sa.Column("bytes", sa.Integer(), nullable=True),
    sa.Column("duration_ms", sa.Integer(), nullable=True),
    sa.Column("attempts", sa.Integer(), nullable=False, default=0, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
    sa.Column("lease_owner", sa.Text(), nullable=True),
    sa.Column("lease_expires_at", UTCDateTime(), nullable=True),
    sa.Column("last_error", sa.Text(), nullable=True),
    _created_at(),
    _updated_at(),
    sa.Column("stored_at", UTCDateTime(), nullable=True),
    sa.Column("deleted_at", UTCDateTime(), nullable=True),
    sa.UniqueConstraint("call_sid"),
    sa.Index(None, "status", "next_attempt_at"),
    sa.Index(None, "tenant", "created_at"),
)


# Every delivery report received, matched or not. A report that names no message we know (its
# request id was never recorded because the sender died or timed out) is the evidence that one of
# the identical messages waiting for an answer did go out: see notifications.requeue_unconfirmed.
notification_reports = sa.Table(
    "notification_reports",
    metadata,
    sa.Column("id", id_type(), primary_key=True, autoincrement=True),
    sa.Column("provider_ref", sa.Text(), nullable=True),
    sa.Column("recipient", sa.Text(), nullable=True),
    sa.Column("template_name", sa.Text(), nullable=True),
    sa.Column("status", sa.Text(), nullable=False),
    sa.Column("reason", sa.Text(), nullable=True),
    sa.Column("notification_id", id_type(), nullable=True),
    sa.Column("outcome", sa.Text(), nullable=False),  # updated | unchanged | unknown_ref | ...
    sa.Column("received_at", UTCDateTime(), nullable=False, default=utcnow),
    sa.Index(None, "recipient", "template_name"),
    sa.Index(None, "notification_id"),
)


# One row per `serve` process start: its heartbeat tells the other servers it is alive; a row
# whose heartbeat stopped (or that is gone) marks that process's live calls as lost.
server_processes = sa.Table(
    "server_processes",
    metadata,
    sa.Column("id", sa.Text(), primary_key=True),  # a fresh uuid per process start
    sa.Column("host", sa.Text(), nullable=False),  # hostname
    sa.Column("pid", sa.Integer(), nullable=False),
    # boot id + pid namespace: two rows with the same value share one pid space, so the pid of
    # one can be checked from the other (containers give every process pid 1 in its own space)
    sa.Column("pid_space", sa.Text(), nullable=False, server_default=""),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("heartbeat_at", UTCDateTime(), nullable=False),
)


ai_token_usage = sa.Table(
    "ai_token_usage",
    metadata,
    sa.Column("id", id_type(), primary_key=True, autoincrement=True),
    sa.Column("call_sid", sa.Text(), nullable=False),
    sa.Column("tenant", sa.Text(), nullable=True),
    sa.Column("model_name", sa.Text(), nullable=False),
    sa.Column("purpose", sa.Text(), nullable=False, default="live", server_default="live"),
    sa.Column("input_tokens", sa.Integer(), nullable=False, default=0, server_default="0"),
    sa.Column("output_tokens", sa.Integer(), nullable=False, default=0, server_default="0"),
    sa.Column("input_audio_tokens", sa.Integer(), nullable=False, default=0, server_default="0"),
    sa.Column("input_text_tokens", sa.Integer(), nullable=False, default=0, server_default="0"),
    sa.Column("output_audio_tokens", sa.Integer(), nullable=False, default=0, server_default="0"),
    sa.Column("output_text_tokens", sa.Integer(), nullable=False, default=0, server_default="0"),
    sa.Column("total_tokens", sa.Integer(), nullable=False, default=0, server_default="0"),
    sa.Column("total_cost", sa.Numeric(12, 6), nullable=True),  # filled by the costing step
    sa.Column("currency", sa.Text(), nullable=True),
    sa.Column("details", json_type(), nullable=True),
    _created_at(),
    # one row per (call, model, purpose): a re-run overwrites, never adds. Its index also serves
    # lookups by call_sid.
    sa.UniqueConstraint("call_sid", "model_name", "purpose"),
    sa.Index(None, "tenant", "created_at"),
)


# Keys to the owner's API and dashboard. Only a hash is kept: the key itself is shown once, when
# it is made. `tenant` NULL is an operator's (admin) key, which sees every tenant.
api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", id_type(), primary_key=True, autoincrement=True),
    sa.Column("prefix", sa.Text(), nullable=False),  # shown in lists, finds the row
    sa.Column("key_hash", sa.Text(), nullable=False),
    sa.Column("tenant", sa.Text(), nullable=True),
    sa.Column("name", sa.Text(), nullable=True),
    _created_at(),
    sa.Column("last_used_at", UTCDateTime(), nullable=True),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
    sa.UniqueConstraint("prefix"),
)


# Dashboard sign-ins. The browser holds a random token in an HttpOnly cookie; only its hash is
# kept. A session lives while its key does: a revoked key's sessions stop at the next request.
web_sessions = sa.Table(
    "web_sessions",
    metadata,
    sa.Column("id", id_type(), primary_key=True, autoincrement=True),
    sa.Column("token_hash", sa.Text(), nullable=False),
    sa.Column("key_id", id_type(), nullable=False),
    sa.Column("csrf_token", sa.Text(), nullable=False),  # the forms' synchronizer token
    sa.Column("language", sa.Text(), nullable=True),  # the owner's choice (en, hi); NULL: tenant's
    _created_at(),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("last_seen_at", UTCDateTime(), nullable=True),
    sa.UniqueConstraint("token_hash"),
    sa.Index(None, "key_id"),
    sa.Index(None, "expires_at"),
)


# Bookings the agent made during calls (receptionist.tools): a slot of a resource (a stylist, a
# chair) or an order. A hold is `pending` until its call ends (then `confirmed` if the caller
# was told of it, else released: `expired`), or until `expires_at` (after the call's longest
# possible end), after which the next overlapping hold marks it `expired`. Two callers can never
# hold overlapping times of one resource: store/bookings.py checks the overlap under a lock of
# the (tenant, resource); the partial unique index (one active row per tenant, resource and
# exact start) is the database's own backstop.
BOOKING_PENDING = "pending"
BOOKING_CONFIRMED = "confirmed"
BOOKING_EXPIRED = "expired"
BOOKING_CANCELLED = "cancelled"
BOOKING_STATUSES = frozenset(
    {BOOKING_PENDING, BOOKING_CONFIRMED, BOOKING_EXPIRED, BOOKING_CANCELLED}
)
_ACTIVE_SLOT = sa.text("kind = 'slot' AND status IN ('pending', 'confirmed')")

bookings = sa.Table(
    "bookings",
    metadata,
    sa.Column("id", id_type(), primary_key=True, autoincrement=True),
    sa.Column("tenant", sa.Text(), nullable=False),
    sa.Column("reference", sa.Text(), nullable=False),  # said to the caller, e.g. "B7K3Q"
    sa.Column("kind", sa.Text(), nullable=False),  # "slot" | "order"
    sa.Column("resource", sa.Text(), nullable=False),  # "" for an order
    sa.Column("starts_at", UTCDateTime(), nullable=True),  # an order: when it is wanted, if said
    sa.Column("ends_at", UTCDateTime(), nullable=True),
    sa.Column("status", sa.Text(), nullable=False),
    sa.Column("call_sid", sa.Text(), nullable=True),
    sa.Column("customer_name", sa.Text(), nullable=True),
    sa.Column("customer_phone", sa.Text(), nullable=True),
    sa.Column("details", json_type(), nullable=True),  # service, items, total ...
    sa.Column("expires_at", UTCDateTime(), nullable=True),
    _created_at(),
    _updated_at(),
    sa.UniqueConstraint("reference"),
    sa.Index(None, "tenant", "starts_at"),
    sa.Index(None, "call_sid"),
    sa.Index(None, "tenant", "customer_phone"),
    sa.Index(
        "uq_bookings_active_slot",
        "tenant",
        "resource",
        "starts_at",
        unique=True,
        sqlite_where=_ACTIVE_SLOT,
        postgresql_where=_ACTIVE_SLOT,
    ),
)

# The owner's calendar feed (.ics): a secret token per tenant in the URL a phone's calendar
# subscribes to; only its hash is kept (the URL is shown once, when it is made).
calendar_feeds = sa.Table(
    "calendar_feeds",
    metadata,
    sa.Column("tenant", sa.Text(), primary_key=True),
    sa.Column("token_hash", sa.Text(), nullable=False),
    _created_at(),
    sa.UniqueConstraint("token_hash"),
)

# A booking's state in the tenant's Google Calendar (receptionist.gcal.sync): `pushed` is what the
# calendar last took ("event": the booking is in it; "absent": removed), `target` what the last
# attempt tried to make it; a row is due while the booking's status wants otherwise. No row: the
# booking was never in the calendar. Failed attempts back off (`next_attempt_at`) and keep their
# reason (`last_error`) until `attempts` reaches the limit.
calendar_sync = sa.Table(
    "calendar_sync",
    metadata,
    sa.Column("booking_id", id_type(), primary_key=True, autoincrement=False),
    sa.Column("tenant", sa.Text(), nullable=False),
    sa.Column("target", sa.Text(), nullable=False),  # "event" | "absent"
    sa.Column("pushed", sa.Text(), nullable=True),
    sa.Column("event_id", sa.Text(), nullable=False),
    sa.Column("calendar_id", sa.Text(), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False, default=0, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
    sa.Column("last_error", sa.Text(), nullable=True),
    _updated_at(),
    sa.Index(None, "tenant"),
)


__all__ = [
    "BOOKING_STATUSES",
    "CALL_STATUSES",
    "CALL_STATUS_COMPLETED",
    "CALL_STATUS_FAILED",
    "CALL_STATUS_IN_PROGRESS",
    "END_REASON_SERVER_LOST",
    "TOKEN_PURPOSES",
    "Stage",
    "UTCDateTime",
    "ai_token_usage",
    "api_keys",
    "bookings",
    "calendar_feeds",
    "calendar_sync",
    "call_details",
    "call_recordings",
    "exotel_call_details",
    "json_type",
    "metadata",
    "notification_reports",
    "notifications",
    "server_processes",
    "tenant_configs",
    "utcnow",
    "web_sessions",
]
