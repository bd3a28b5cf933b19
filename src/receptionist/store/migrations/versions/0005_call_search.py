"""The owner's list at scale: a plain-text search column with a real index, the caller's digits
reversed, indexes for keyset pages with each filter, per-call response times in `stats`.

Existing rows are filled in batches (the words are cut in Python, store/search.py, exactly as
new calls' are). Search index: PostgreSQL GIN over the words array (built-in, no extension
needed); SQLite an FTS5 external-content table `call_search` kept in step by triggers.

Revision ID: 0005_call_search
Revises: 0004_web_sessions
Create Date: 2026-12-07 05:10:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from receptionist.store.search import caller_key, response_times, search_document

revision: str = "0005_call_search"
down_revision: str | Sequence[str] | None = "0004_web_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 2000
# the stats' covering index (written out here: a migration does not follow later schema edits)
STATS_COLUMNS = (
    "tenant", "started_at", "status", "answered_at", "duration_ms", "call_type", "call_sid",
)  # fmt: skip

# FTS5 cuts words exactly where store/search.py did (letters, digits and marks are word
# characters); diacritics are kept, as PostgreSQL keeps them.
FTS5_TOKENIZER = "unicode61 remove_diacritics 0 categories 'L* N* M* Co'"

SQLITE_SEARCH = [
    f"""CREATE VIRTUAL TABLE call_search USING fts5(
        search_text, content='call_details', content_rowid='id', tokenize="{FTS5_TOKENIZER}")""",
    """CREATE TRIGGER call_search_ai AFTER INSERT ON call_details BEGIN
        INSERT INTO call_search(rowid, search_text) VALUES (new.id, new.search_text);
    END""",
    """CREATE TRIGGER call_search_ad AFTER DELETE ON call_details BEGIN
        INSERT INTO call_search(call_search, rowid, search_text)
            VALUES ('delete', old.id, old.search_text);
    END""",
    """CREATE TRIGGER call_search_au AFTER UPDATE OF search_text ON call_details BEGIN
        INSERT INTO call_search(call_search, rowid, search_text)
            VALUES ('delete', old.id, old.search_text);
        INSERT INTO call_search(rowid, search_text) VALUES (new.id, new.search_text);
    END""",
    "INSERT INTO call_search(call_search) VALUES ('rebuild')",
]

# The expression queries.py compares with: keep the two identical, or the index is not used.
PG_SEARCH = (
    "CREATE INDEX ix_call_details_search ON call_details "
    "USING gin (array_to_tsvector(string_to_array(search_text, ' ')))"
)

NEW_INDEXES: list[tuple[str, list[str]]] = [
    ("ix_call_details_tenant_started_at_id", ["tenant", "started_at", "id"]),
    ("ix_call_details_tenant_call_type_started_at_id", ["tenant", "call_type", "started_at", "id"]),
    ("ix_call_details_tenant_status_started_at_id", ["tenant", "status", "started_at", "id"]),
    ("ix_call_details_tenant_caller_key", ["tenant", "caller_key"]),
    ("ix_call_details_started_at_id", ["started_at", "id"]),
    ("ix_call_details_stats", list(STATS_COLUMNS)),
]
OLD_INDEXES: list[tuple[str, list[str]]] = [
    ("ix_call_details_tenant_started_at", ["tenant", "started_at"]),
    ("ix_call_details_started_at", ["started_at"]),
]


def _backfill(conn: sa.Connection) -> None:
    calls = sa.table(
        "call_details",
        sa.column("id", sa.Integer()),
        sa.column("transcript", sa.JSON()),
        sa.column("summary", sa.Text()),
        sa.column("call_type", sa.Text()),
        sa.column("from_number", sa.Text()),
        sa.column("stats", sa.JSON()),
        sa.column("search_text", sa.Text()),
        sa.column("caller_key", sa.Text()),
    )
    c = calls.c
    last = 0
    while True:
        rows = conn.execute(
            sa.select(c.id, c.transcript, c.summary, c.call_type, c.from_number, c.stats)
            .where(c.id > last)
            .order_by(c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        updates: list[dict[str, Any]] = []
        for r in rows:
            stats = dict(r.stats) if isinstance(r.stats, dict) else {}
            stats.setdefault("response_ms", response_times(r.transcript))
            updates.append(
                {
                    "row_id": r.id,
                    "search_text": search_document(r.transcript, r.summary, r.call_type),
                    "caller_key": caller_key(r.from_number),
                    "stats": stats,
                }
            )
        conn.execute(
            sa.update(calls)
            .where(c.id == sa.bindparam("row_id"))
            .values(
                {
                    "search_text": sa.bindparam("search_text"),
                    "caller_key": sa.bindparam("caller_key"),
                    "stats": sa.bindparam("stats", type_=_json(conn)),
                }
            ),
            updates,
        )
        last = rows[-1].id


def _json(conn: sa.Connection) -> sa.types.TypeEngine[Any]:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import JSONB

        return JSONB()
    return sa.JSON()


def upgrade() -> None:
    conn = op.get_bind()
    with op.batch_alter_table("call_details") as batch:
        batch.add_column(sa.Column("search_text", sa.Text(), nullable=True))
        batch.add_column(sa.Column("caller_key", sa.Text(), nullable=True))
    _backfill(conn)
    for name, _cols in OLD_INDEXES:
        op.drop_index(name, table_name="call_details")
    for name, cols in NEW_INDEXES:
        op.create_index(name, "call_details", cols)
    if conn.dialect.name == "postgresql":
        op.execute(PG_SEARCH)
    elif conn.dialect.name == "sqlite":
        for statement in SQLITE_SEARCH:
            op.execute(statement)


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_call_details_search")
    elif conn.dialect.name == "sqlite":
        for trigger in ("call_search_ai", "call_search_ad", "call_search_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS call_search")
    for name, _cols in NEW_INDEXES:
        op.drop_index(name, table_name="call_details")
    for name, cols in OLD_INDEXES:
        op.create_index(name, "call_details", cols)
    with op.batch_alter_table("call_details") as batch:
        batch.drop_column("caller_key")
        batch.drop_column("search_text")
