"""The call list's parts: cursors, search, filters, and rows shaped into the API's models."""

from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import TSQUERY
from sqlalchemy.ext.compiler import compiles

from receptionist.store.schema import (
    UTCDateTime,
    call_details,
)
from receptionist.store.search import caller_prefix, fts5_query, pg_tsquery, query_words
from receptionist.web.deps import WebDeps, WebError, day_bounds
from receptionist.web.models import (
    Notification,
)

SORTS = ("newest", "oldest")
Sort = Literal["newest", "oldest"]


def encode_cursor(started_at: datetime | None, row_id: int, sort: str = "newest") -> str:
    raw = orjson.dumps([sort, started_at.isoformat() if started_at else None, row_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str = "newest") -> tuple[datetime | None, int]:
    """The (started_at, id) a cursor points after; a cursor of the other sort is refused (its
    position means nothing in this order)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        made_for, when, row_id = orjson.loads(raw)
        if not isinstance(row_id, int) or isinstance(row_id, bool) or made_for != sort:
            raise ValueError
        at = datetime.fromisoformat(when) if when is not None else None
        if at is not None and at.tzinfo is None:
            raise ValueError
        return at, row_id
    except (binascii.Error, ValueError, TypeError, orjson.JSONDecodeError):
        raise WebError(400, "bad_cursor", "the cursor is not one this API gave out") from None


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# PostgreSQL: the expression migration 0005 indexes (GIN); written the same way so the planner
# matches it. SQLite: the FTS5 table the same migration keeps in step with call_details.
def _pg_words() -> sa.ColumnElement[Any]:
    return sa.func.array_to_tsvector(
        sa.func.string_to_array(call_details.c.search_text, sa.literal_column("' '"))
    )


def _search(dialect: str, q: str) -> sa.ColumnElement[bool]:
    """Calls holding every word of `q` (each as a word prefix). Punctuation, SQL and FTS
    operators in `q` are only separators or plain words; text with no word finds nothing."""
    terms = query_words(q)
    if not terms:
        return sa.false()
    if dialect == "postgresql":
        # The query goes into the SQL text as a quoted constant, not a parameter: a prepared
        # statement switches to one generic plan after five runs, and for full-text search the
        # right plan depends on the words (a common word: walk the tenant's newest calls and
        # test each; a rare one: the GIN index, then sort). Measured: 5x slower once generic.
        query: sa.BindParameter[str] = sa.bindparam(
            "words", pg_tsquery(terms), literal_execute=True
        )
        return _pg_words().op("@@")(sa.cast(query, TSQUERY))
    if dialect == "sqlite":
        matched: sa.Select[Any] = (
            sa.select(sa.literal_column("rowid"))
            .select_from(sa.table("call_search"))
            .where(sa.literal_column("call_search").op("MATCH")(sa.literal(fts5_query(terms))))
        )
        # `id + 0`, not `id`: SQLite would otherwise fetch every matching call by its id (all
        # tenants, big rows) and sort them; with the index on id turned off it walks the
        # tenant's (started_at, id) index in order and stops at a page. 1M calls: 4-40 ms
        # instead of 0.1-0.6 s.
        return (call_details.c.id + 0).in_(matched)
    # another database: a scan of the plain words (still no JSON escapes, still literal)
    return sa.and_(*(call_details.c.search_text.like(_like(t), escape="\\") for t in terms))


@dataclass(frozen=True)
class CallFilters:
    """The filters the call list, its CSV export and the dashboard share."""

    date_from: date | None = None
    date_to: date | None = None
    call_type: str | None = None
    status: str | None = None
    caller: str | None = None  # digits the caller's number ends with (or the whole number)
    q: str | None = None  # words in the transcript, summary or call type (word prefixes)

    def apply(self, stmt: sa.Select[Any], tz: ZoneInfo, dialect: str) -> sa.Select[Any]:
        c = call_details.c
        if self.date_from is not None:
            stmt = stmt.where(c.started_at >= day_bounds(self.date_from, tz, end=False))
        if self.date_to is not None:
            stmt = stmt.where(c.started_at < day_bounds(self.date_to, tz, end=True))
        if self.call_type:
            stmt = stmt.where(c.call_type == self.call_type)
        if self.status:
            stmt = stmt.where(c.status == self.status)
        if self.caller:
            digits = "".join(ch for ch in self.caller if ch.isdigit() and ch.isascii())
            if not digits:
                raise WebError(400, "bad_filter", "caller: give some digits of the number")
            low, high = caller_prefix(digits)
            stmt = stmt.where(c.caller_key >= low, c.caller_key < high)
        if self.q and self.q.strip():
            stmt = stmt.where(_search(dialect, self.q))
        return stmt


class TurnCount(sa.sql.functions.FunctionElement[int]):
    """How many turns a transcript holds, counted by the database: a list page needs the number,
    and reading 50 whole transcripts to count them was most of its time."""

    type = sa.Integer()
    inherit_cache = True


@compiles(TurnCount, "postgresql")
def _turn_count_pg(element: TurnCount, compiler: Any, **kw: Any) -> str:
    arg = compiler.process(element.clauses, **kw)
    return f"CASE WHEN jsonb_typeof({arg}) = 'array' THEN jsonb_array_length({arg}) END"


@compiles(TurnCount)
def _turn_count(element: TurnCount, compiler: Any, **kw: Any) -> str:
    return f"json_array_length({compiler.process(element.clauses, **kw)})"


_c = call_details.c
LIST_COLUMNS = (
    _c.id, _c.call_sid, _c.tenant, _c.from_number, _c.status, _c.end_reason, _c.call_type,
    _c.summary, _c.stage, _c.started_at, _c.ended_at, _c.duration_ms,
    TurnCount(_c.transcript).label("turns"),
)  # fmt: skip


def newest_first(stmt: sa.Select[Any]) -> sa.Select[Any]:
    c = call_details.c
    return stmt.order_by(c.started_at.desc().nulls_last(), c.id.desc())


def check_sort(sort: str) -> str:
    if sort not in SORTS:
        raise WebError(400, "bad_request", f"sort: one of {', '.join(SORTS)}")
    return sort


def _phases(
    base: sa.Select[Any], sort: str, cursor: tuple[datetime | None, int] | None
) -> list[sa.Select[Any]]:
    """The statements that read the rows after `cursor`, in order, for one sort.

    newest: started_at desc, id desc, calls with no start time last; oldest: the exact reverse.
    Timed and untimed calls are read by separate statements so each is a plain range on the
    (tenant, [filter,] started_at, id) indexes: `(started_at, id) < (t, i)` is an index bound,
    where one OR-ed statement would make the database walk every row before the cursor.
    """
    c = call_details.c
    newest = sort == "newest"
    timed = base.where(c.started_at.is_not(None))
    untimed = base.where(c.started_at.is_(None))
    if newest:
        timed = timed.order_by(c.started_at.desc(), c.id.desc())
        untimed = untimed.order_by(c.id.desc())
    else:
        timed = timed.order_by(c.started_at.asc(), c.id.asc())
        untimed = untimed.order_by(c.id.asc())
    if cursor is None:
        return [timed, untimed] if newest else [untimed, timed]
    when, row_id = cursor
    if when is None:
        untimed = untimed.where(c.id < row_id if newest else c.id > row_id)
        return [untimed] if newest else [untimed, timed]
    key = sa.tuple_(c.started_at, c.id)
    mark = sa.tuple_(sa.literal(when, UTCDateTime()), sa.literal(row_id, sa.BigInteger()))
    timed = timed.where(key < mark if newest else key > mark)
    return [timed, untimed] if newest else [timed]


async def page_rows(
    deps: WebDeps,
    base: sa.Select[Any],
    sort: str,
    cursor: tuple[datetime | None, int] | None,
    size: int,
) -> list[Any]:
    """Up to `size` rows after `cursor` in `sort` order."""
    rows: list[Any] = []
    async with deps.db.session() as conn:
        for stmt in _phases(base, sort, cursor):
            rows += (await conn.execute(stmt.limit(size - len(rows)))).all()
            if len(rows) >= size:
                break
    return rows


# --- shaping rows -------------------------------------------------------------------------------


def turn_count_of(row: Any) -> int:
    """A list row's count (see TurnCount), or a whole row's transcript counted here."""
    counted = getattr(row, "turns", None)
    if counted is not None:
        return int(counted)
    transcript = getattr(row, "transcript", None)
    return len(transcript) if isinstance(transcript, list) else 0


def summary_of(row: Any) -> dict[str, Any]:
    return {
        "call_sid": row.call_sid,
        "tenant": row.tenant,
        "from_number": row.from_number,
        "status": row.status,
        "end_reason": row.end_reason,
        "call_type": row.call_type,
        "summary": row.summary,
        "stage": row.stage,
        "started_at": row.started_at,
        "ended_at": row.ended_at,
        "duration_ms": row.duration_ms,
        "turns": turn_count_of(row),
    }


def notification_of(row: Any) -> Notification:
    return Notification(
        id=row.id,
        call_sid=row.call_sid,
        tenant=row.tenant,
        recipient_type=row.recipient_type,
        recipient=row.recipient,
        template_name=row.template_name,
        status=row.status,
        urgent=bool(row.urgent),
        text=(row.details or {}).get("text"),
        error=row.error,
        attempts=row.attempts,
        created_at=row.created_at,
        sent_at=row.sent_at,
        delivered_at=row.delivered_at,
        read_at=row.read_at,
    )


def money_pair(value: Decimal | None, rate: Decimal) -> tuple[float | None, float | None]:
    if value is None:
        return None, None
    return float(value), float((value * rate).quantize(Decimal("0.01")))


def _offset_ms(value: Any) -> float | None:
    """A turn's time offset as stored, or None when it is not a finite number (a row written by
    hand or by an older version must not fail the whole call's page)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def turn_of(t: dict[str, Any]) -> dict[str, Any]:
    return {
        "speaker": str(t.get("speaker") or ""),
        "text": str(t.get("text") or ""),
        "start_ms": _offset_ms(t.get("start_ms")),
        "end_ms": _offset_ms(t.get("end_ms")),
        "interrupted": bool(t.get("interrupted")),
    }
