"""What the owner's window reads and changes: one function per question, shared by the REST API
(web/api.py) and the dashboard (web/dashboard.py), so both answer the same thing the same way.

Every function takes a `Scope` (web/scope.py) and reads only through its selects. A problem the
caller can fix raises `WebError` with a status, a stable code and a message; the API turns it into
JSON, the dashboard into a page.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import TSQUERY
from sqlalchemy.ext.compiler import compiles

from receptionist.store.api_keys import KeyOwner
from receptionist.store.db import Database
from receptionist.store.jobs import reschedule
from receptionist.store.notifications import requeue
from receptionist.store.schema import (
    NOTIFY_FAILED,
    NOTIFY_UNKNOWN,
    Stage,
    UTCDateTime,
    ai_token_usage,
    call_details,
    exotel_call_details,
    notifications,
)
from receptionist.store.search import caller_prefix, fts5_query, pg_tsquery, query_words
from receptionist.tenants.repository import TenantError, TenantRepository, UnknownTenant
from receptionist.web.models import (
    CallDetail,
    CallSummary,
    DayStats,
    Done,
    ExotelRecord,
    Latency,
    Notification,
    Page,
    Stats,
    Tenant,
    Turn,
    TypeStats,
    Usage,
)
from receptionist.web.scope import Scope

MAX_PAGE = 200
DEFAULT_PAGE = 50
DEFAULT_TZ = "Asia/Kolkata"
MAX_STATS_DAYS = 366
LATENCY_SAMPLE_CALLS = 2000  # the latest calls of the range whose turns are timed


class WebError(Exception):
    """A request the server will not answer as asked: status, stable code, plain message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class WebDeps:
    db: Database
    tenants: TenantRepository
    usd_inr: Decimal


def scope_for(deps: WebDeps, owner: KeyOwner, chosen: str | None) -> Scope:
    """The data a checked key may see. A deactivated tenant's owner still reads its history; a
    deleted tenant's key is dead."""
    if owner.tenant is not None:
        try:
            deps.tenants.get_any(owner.tenant)
        except UnknownTenant:
            raise WebError(
                403, "tenant_gone", f"tenant {owner.tenant!r} no longer exists"
            ) from None
        except TenantError:
            pass  # a tenant folder with problems is still this owner's tenant
    return Scope.of(owner, chosen)


def is_db_down(exc: BaseException) -> bool:
    return isinstance(exc, OSError | sa.exc.OperationalError | sa.exc.InterfaceError)


def unexpected_text(exc: BaseException) -> str:
    if is_db_down(exc):
        return "the database is not answering; try again shortly"
    return "something went wrong on our side; it has been logged"


# --- time, cursors and filters ------------------------------------------------------------------


def tenant_tz(deps: WebDeps, s: Scope) -> ZoneInfo:
    if s.tenant is not None:
        try:
            return ZoneInfo(deps.tenants.get_any(s.tenant).timezone)
        except (TenantError, ValueError, KeyError):
            pass
    return ZoneInfo(DEFAULT_TZ)


def _day_bounds(value: date, tz: ZoneInfo, *, end: bool) -> datetime:
    """Midnight of `value` (or of the day after, for an inclusive end) in the tenant's zone."""
    day = value + timedelta(days=1) if end else value
    return datetime.combine(day, time(0), tz).astimezone(UTC)


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
            stmt = stmt.where(c.started_at >= _day_bounds(self.date_from, tz, end=False))
        if self.date_to is not None:
            stmt = stmt.where(c.started_at < _day_bounds(self.date_to, tz, end=True))
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
_LIST_COLUMNS = (
    _c.id, _c.call_sid, _c.tenant, _c.from_number, _c.status, _c.end_reason, _c.call_type,
    _c.summary, _c.stage, _c.started_at, _c.ended_at, _c.duration_ms,
    TurnCount(_c.transcript).label("turns"),
)  # fmt: skip


def _newest_first(stmt: sa.Select[Any]) -> sa.Select[Any]:
    c = call_details.c
    return stmt.order_by(c.started_at.desc().nulls_last(), c.id.desc())


def _check_sort(sort: str) -> str:
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


async def _page_rows(
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


def _turns(row: Any) -> int:
    """A list row's count (see TurnCount), or a whole row's transcript counted here."""
    counted = getattr(row, "turns", None)
    if counted is not None:
        return int(counted)
    transcript = getattr(row, "transcript", None)
    return len(transcript) if isinstance(transcript, list) else 0


def _summary(row: Any) -> dict[str, Any]:
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
        "turns": _turns(row),
    }


def _notification(row: Any) -> Notification:
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


def _money(value: Decimal | None, rate: Decimal) -> tuple[float | None, float | None]:
    if value is None:
        return None, None
    return float(value), float((value * rate).quantize(Decimal("0.01")))


def _offset_ms(value: Any) -> float | None:
    """A turn's time offset as stored, or None when it is not a finite number (a row written by
    hand or by an older version must not fail the whole call's page)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _turn(t: dict[str, Any]) -> dict[str, Any]:
    return {
        "speaker": str(t.get("speaker") or ""),
        "text": str(t.get("text") or ""),
        "start_ms": _offset_ms(t.get("start_ms")),
        "end_ms": _offset_ms(t.get("end_ms")),
        "interrupted": bool(t.get("interrupted")),
    }


# --- the questions ------------------------------------------------------------------------------


def tenants(s: Scope, deps: WebDeps) -> list[Tenant]:
    loaded, _ = deps.tenants.load_all()
    return [
        Tenant(
            tenant_id=t.tenant_id,
            name=t.name,
            active=t.active,
            languages=list(t.languages),
            timezone=t.timezone,
            call_types=list(t.call_type_names),
            budget_warn_usd=float(t.budget_warn_usd) if t.budget_warn_usd is not None else None,
            budget_limit_usd=float(t.budget_limit_usd) if t.budget_limit_usd is not None else None,
        )
        for t in loaded
        if s.sees(t.tenant_id)
    ]


async def calls_page(
    s: Scope,
    deps: WebDeps,
    filters: CallFilters,
    cursor: str | None,
    limit: int,
    sort: str = "newest",
) -> Page[CallSummary]:
    sort = _check_sort(sort)
    base = filters.apply(s.calls(*_LIST_COLUMNS), tenant_tz(deps, s), deps.db.dialect)
    size = max(1, min(limit, MAX_PAGE))
    after = decode_cursor(cursor, sort) if cursor else None
    rows = await _page_rows(deps, base, sort, after, size + 1)
    more = len(rows) > size
    rows = rows[:size]
    next_cursor = encode_cursor(rows[-1].started_at, rows[-1].id, sort) if more else None
    return Page[CallSummary](
        items=[CallSummary(**_summary(r)) for r in rows], next_cursor=next_cursor
    )


_CSV_HEADER = (
    "call_sid", "tenant", "started_at", "duration_s", "from_number", "status", "end_reason",
    "call_type", "summary", "turns",
)  # fmt: skip
_CSV_BATCH = 500


def _csv_cell(value: Any) -> Any:
    """A spreadsheet runs a cell that starts with = + - @ as a formula: such text (a caller's
    words, a summary) is made inert with a leading quote. A phone number stays as it is."""
    if not isinstance(value, str) or value[:1] not in ("=", "+", "-", "@", "\t", "\r"):
        return value
    if value[0] == "+" and value[1:].replace(" ", "").isdigit():
        return value
    return "'" + value


def calls_csv(
    s: Scope, deps: WebDeps, filters: CallFilters, sort: str = "newest"
) -> AsyncIterator[str]:
    """The filtered list as CSV text, in keyset pages: memory stays bounded whatever its length.
    A bad filter raises here, before the first byte is sent."""
    sort = _check_sort(sort)
    base = filters.apply(s.calls(*_LIST_COLUMNS), tenant_tz(deps, s), deps.db.dialect)

    async def rows() -> AsyncIterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(_CSV_HEADER)
        cursor: tuple[datetime | None, int] | None = None
        while True:
            batch = await _page_rows(deps, base, sort, cursor, _CSV_BATCH)
            for r in batch:
                duration = round(r.duration_ms / 1000) if r.duration_ms is not None else None
                started = r.started_at.isoformat() if r.started_at else ""
                turns = _turns(r)
                values = (r.call_sid, r.tenant, started, duration, r.from_number, r.status,
                          r.end_reason, r.call_type, r.summary, turns)  # fmt: skip
                writer.writerow(_csv_cell(v) for v in values)
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            if len(batch) < _CSV_BATCH:
                return
            cursor = (batch[-1].started_at, batch[-1].id)

    return rows()


def _percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))], 1)


@dataclass
class _Tally:
    calls: int = 0
    answered: int = 0
    missed: int = 0
    failed: int = 0
    durations: int = 0
    duration_ms: int = 0
    cost: Decimal = Decimal(0)

    def add(self, status: str, heard: bool, duration_ms: int | None) -> None:
        self.calls += 1
        if status == "failed":
            self.failed += 1
        elif status == "rejected" or (status == "completed" and not heard):
            self.missed += 1
        elif status == "completed":
            self.answered += 1
        if duration_ms is not None:
            self.durations += 1
            self.duration_ms += duration_ms

    def add_group(self, status: str, heard: bool, n: int, durations: int, duration_ms: int) -> None:
        """`n` calls of one status (and heard or not) at once, as a GROUP BY row counts them."""
        self.calls += n
        if status == "failed":
            self.failed += n
        elif status == "rejected" or (status == "completed" and not heard):
            self.missed += n
        elif status == "completed":
            self.answered += n
        self.durations += durations
        self.duration_ms += duration_ms

    def merge(self, other: _Tally) -> None:
        """Add another tally's counts (its cost is summed separately)."""
        self.calls += other.calls
        self.answered += other.answered
        self.missed += other.missed
        self.failed += other.failed
        self.durations += other.durations
        self.duration_ms += other.duration_ms

    def duration_avg(self) -> float | None:
        return round(self.duration_ms / self.durations / 1000, 1) if self.durations else None

    def out(self, day: date, rate: Decimal) -> DayStats:
        usd, inr = _money(self.cost, rate)
        return DayStats(
            day=day,
            calls=self.calls,
            answered=self.answered,
            missed=self.missed,
            failed=self.failed,
            duration_s_avg=self.duration_avg(),
            cost_usd=usd or 0.0,
            cost_inr=inr or 0.0,
        )


BUCKET_S = 900  # every real UTC offset is a whole number of quarter hours (India: +5:30)


def _bucket(dialect: str, column: Any) -> sa.ColumnElement[Any]:
    """The quarter hour (UTC, counted from the epoch) a timestamp falls in."""
    if dialect == "sqlite":  # ISO text there; strftime('%s') reads it as UTC seconds
        # `//`: SQLAlchemy's `/` is true division, which would give every call its own group
        return sa.cast(sa.func.strftime("%s", column), sa.Integer) // BUCKET_S
    # date_part is double precision; extract() is numeric since PostgreSQL 14, and slower
    return sa.cast(sa.func.floor(sa.func.date_part("epoch", column) / BUCKET_S), sa.BigInteger)


async def stats(
    s: Scope, deps: WebDeps, date_from: date | None = None, date_to: date | None = None
) -> Stats:
    """Counted by the database in quarter hours, folded into the tenant's days here: the answer
    is the same, the rows read are bounded by the range (not by the number of calls), and no
    transcript is loaded (response times were measured when each call was stored)."""
    tz = tenant_tz(deps, s)
    last = date_to or datetime.now(tz).date()
    first = date_from or last - timedelta(days=29)
    if first > last or (last - first).days >= MAX_STATS_DAYS:
        raise WebError(
            400, "bad_range", f"from must be on or before to, at most {MAX_STATS_DAYS} days"
        )
    lo, hi = _day_bounds(first, tz, end=False), _day_bounds(last, tz, end=True)
    dialect = deps.db.dialect
    c, u = call_details.c, ai_token_usage.c
    in_range = (c.started_at >= lo, c.started_at < hi)
    bucket = _bucket(dialect, c.started_at).label("bucket")
    heard = c.answered_at.is_not(None).label("heard")
    n = sa.func.count().label("n")
    timed = sa.func.count(c.duration_ms).label("timed")
    total_ms = sa.func.coalesce(sa.func.sum(c.duration_ms), 0).label("total_ms")
    by_bucket = (
        s.calls(bucket, c.status, heard, n, timed, total_ms)
        .where(*in_range)
        .group_by(bucket, c.status, heard)
    )
    by_type = s.calls(c.call_type, n, timed, total_ms).where(*in_range).group_by(c.call_type)
    costs = (
        s.usage(bucket, sa.func.sum(u.total_cost).label("cost"))
        .join(call_details, call_details.c.call_sid == u.call_sid)
        # A call's usage is written when it ends or later, never before it starts: a bound the
        # (tenant, created_at) index uses, so the usage table is not read whole (a day's slack
        # for clocks of different machines).
        .where(*in_range, u.total_cost.is_not(None), u.created_at >= lo - timedelta(days=1))
        .group_by(bucket)
    )
    if s.tenant is not None:  # the calls' side too, so it is read through the tenant's index
        costs = costs.where(c.tenant == s.tenant)
    sample = (
        s.calls(c.stats["response_ms"].label("response_ms"))
        .where(*in_range)
        .order_by(c.started_at.desc(), c.id.desc())
        .limit(LATENCY_SAMPLE_CALLS)
    )
    async with deps.db.session() as conn:
        bucket_rows = (await conn.execute(by_bucket)).all()
        type_rows = (await conn.execute(by_type)).all()
        cost_rows = (await conn.execute(costs)).all()
        samples = (await conn.scalars(sample)).all()

    days = {first + timedelta(days=i): _Tally() for i in range((last - first).days + 1)}
    total = _Tally()

    day_of: dict[int, _Tally] = {}  # a quarter hour's local day (a few rows share each)

    def local_day(b: Any) -> _Tally:
        b = int(b)
        tally = day_of.get(b)
        if tally is None:
            day = datetime.fromtimestamp(b * BUCKET_S, UTC).astimezone(tz).date()
            tally = day_of[b] = days[day]
        return tally

    for bucket_, status, heard_, n_, timed_, total_ms_ in bucket_rows:
        local_day(bucket_).add_group(status, bool(heard_), int(n_), int(timed_), int(total_ms_))
    for t in days.values():
        total.merge(t)
    types: dict[str | None, _Tally] = {}
    for r in type_rows:
        types.setdefault(r.call_type, _Tally()).add_group("", False, r.n, r.timed, r.total_ms)
    for r in cost_rows:
        local_day(r.bucket).cost += Decimal(str(r.cost))
    total.cost = sum((t.cost for t in days.values()), Decimal(0))
    response = [
        float(ms)
        for times in samples
        if isinstance(times, list)
        for ms in times
        if isinstance(ms, int | float) and not isinstance(ms, bool)
    ]
    rate = deps.usd_inr
    return Stats(
        date_from=first,
        date_to=last,
        days=[t.out(day, rate) for day, t in days.items()],
        call_types=[
            TypeStats(call_type=k, calls=t.calls, duration_s_avg=t.duration_avg())
            for k, t in sorted(types.items(), key=lambda kv: -kv[1].calls)
        ],
        totals=total.out(last, rate),
        response=Latency(
            turns=len(response),
            p50_ms=_percentile(response, 50),
            p90_ms=_percentile(response, 90),
            p99_ms=_percentile(response, 99),
        ),
    )


async def live_calls(s: Scope, deps: WebDeps) -> list[CallSummary]:
    c = call_details.c
    stmt = s.calls().where(c.status == "in_progress").order_by(c.started_at.desc()).limit(MAX_PAGE)
    async with deps.db.session() as conn:
        rows = (await conn.execute(stmt)).all()
    return [CallSummary(**_summary(r)) for r in rows]


async def _call_row(s: Scope, deps: WebDeps, call_sid: str) -> Any:
    async with deps.db.session() as conn:
        row = (await conn.execute(s.calls().where(call_details.c.call_sid == call_sid))).first()
    if row is None:  # another tenant's call reads exactly like a missing one
        raise WebError(404, "not_found", f"no call {call_sid!r}")
    return row


async def call_detail(s: Scope, deps: WebDeps, call_sid: str) -> CallDetail:
    row = await _call_row(s, deps, call_sid)
    async with deps.db.session() as conn:
        usage = (
            await conn.execute(
                s.usage().where(ai_token_usage.c.call_sid == call_sid).order_by(ai_token_usage.c.id)
            )
        ).all()
        sent = (
            await conn.execute(
                s.notifications()
                .where(notifications.c.call_sid == call_sid)
                .order_by(notifications.c.id)
            )
        ).all()
        exo = (
            await conn.execute(s.exotel_details().where(exotel_call_details.c.call_sid == call_sid))
        ).first()
    rate = deps.usd_inr
    usages = []
    total: Decimal | None = None
    for u in usage:
        usd, inr = _money(u.total_cost, rate)
        usages.append(
            Usage(
                model_name=u.model_name,
                purpose=u.purpose,
                input_tokens=u.input_tokens,
                output_tokens=u.output_tokens,
                total_tokens=u.total_tokens,
                total_cost_usd=usd,
                total_cost_inr=inr,
            )
        )
        if u.total_cost is not None:
            total = (total or Decimal(0)) + u.total_cost
    cost_usd, cost_inr = _money(total, rate)
    return CallDetail(
        **_summary(row),
        to_number=row.to_number,
        engine=row.engine,
        model=row.model,
        error=row.error,
        answered_at=row.answered_at,
        transcript=[Turn(**_turn(t)) for t in row.transcript or [] if isinstance(t, dict)],
        details=row.critical_call_details,
        events=list(row.events or []),
        stats=row.stats,
        usage=usages,
        cost_usd=cost_usd,
        cost_inr=cost_inr,
        notifications=[_notification(n) for n in sent],
        exotel=ExotelRecord(
            status=exo.call_status,
            duration_s=exo.call_duration,
            price=float(exo.price) if exo.price is not None else None,
            recording_url=exo.recording_url,
            start_time=exo.start_time,
            end_time=exo.end_time,
            fetched_at=exo.fetched_at,
        )
        if exo is not None
        else None,
        attempts=row.attempts,
        last_error=row.last_error,
    )


async def retry_call(s: Scope, deps: WebDeps, call_sid: str) -> Done:
    row = await _call_row(s, deps, call_sid)
    if row.stage != Stage.FAILED:
        raise WebError(409, "not_failed", f"the call is at {row.stage!r}; only failed calls")
    await reschedule(deps.db, call_sid, stage=Stage.TRANSCRIPT_SAVED)
    return Done(message=f"call {call_sid} will be processed again")


async def notification_list(
    s: Scope,
    deps: WebDeps,
    status: str | None = None,
    call_sid: str | None = None,
    limit: int = DEFAULT_PAGE,
) -> list[Notification]:
    n = notifications.c
    stmt = s.notifications()
    if status:
        stmt = stmt.where(n.status == status)
    if call_sid:
        stmt = stmt.where(n.call_sid == call_sid)
    stmt = stmt.order_by(n.id.desc()).limit(max(1, min(limit, MAX_PAGE)))
    async with deps.db.session() as conn:
        rows = (await conn.execute(stmt)).all()
    return [_notification(r) for r in rows]


async def resend_notification(s: Scope, deps: WebDeps, notification_id: int) -> Done:
    async with deps.db.session() as conn:
        row = (
            await conn.execute(
                s.notifications(notifications.c.status).where(notifications.c.id == notification_id)
            )
        ).first()
    if row is None:
        raise WebError(404, "not_found", f"no message {notification_id}")
    if row.status not in (NOTIFY_FAILED, NOTIFY_UNKNOWN) or not await requeue(
        deps.db, notification_id
    ):
        raise WebError(409, "not_resendable", "only failed or unknown messages are sent again")
    return Done(message=f"message {notification_id} is queued again")


# --- the dashboard's "today" (appended: used by web/dashboard) ----------------------------------


@dataclass(frozen=True)
class TodaySummary:
    """The owner's day at a glance, in the tenant's time zone."""

    day: date
    answered: int
    missed: int
    failed: int
    in_progress: int
    call_types: list[tuple[str | None, int]]  # today's calls per type, most first
    urgent: list[CallSummary]  # today's calls that raised an urgent message
    messages: list[tuple[str, int]]  # today's WhatsApp messages per status
    month: str  # "YYYY-MM" (UTC, as the budget guard counts)
    month_cost_usd: float
    month_cost_inr: float
    budget_warn_usd: float | None
    budget_limit_usd: float | None


async def today(s: Scope, deps: WebDeps, *, now: datetime | None = None) -> TodaySummary:
    tz = tenant_tz(deps, s)
    now = now or datetime.now(UTC)
    day = now.astimezone(tz).date()
    lo, hi = _day_bounds(day, tz, end=False), _day_bounds(day, tz, end=True)
    c, n, u = call_details.c, notifications.c, ai_token_usage.c
    heard = c.answered_at.is_not(None).label("heard")
    counts = (
        s.calls(c.status, heard, c.call_type, sa.func.count().label("n"))
        .where(c.started_at >= lo, c.started_at < hi)
        .group_by(c.status, heard, c.call_type)
    )
    by_status = (
        s.notifications(n.status, sa.func.count().label("n"))
        .where(n.created_at >= lo, n.created_at < hi)
        .group_by(n.status)
        .order_by(n.status)
    )
    urgent_sids = (
        s.notifications(n.call_sid)
        .where(n.urgent.is_(True), n.created_at >= lo, n.created_at < hi, n.call_sid.is_not(None))
        .scalar_subquery()
    )
    urgent = _newest_first(s.calls(*_LIST_COLUMNS).where(c.call_sid.in_(urgent_sids))).limit(
        MAX_PAGE
    )
    month_start = datetime(now.year, now.month, 1, tzinfo=UTC)
    spent = (
        s.usage(sa.func.sum(u.total_cost))
        .join(call_details, call_details.c.call_sid == u.call_sid)
        .where(c.started_at >= month_start, c.started_at < now + timedelta(days=1))
    )
    async with deps.db.session() as conn:
        count_rows = (await conn.execute(counts)).all()
        status_rows = (await conn.execute(by_status)).all()
        urgent_rows = (await conn.execute(urgent)).all()
        month_total = (await conn.execute(spent)).scalar_one_or_none()
    answered = missed = failed = in_progress = 0
    types: dict[str | None, int] = {}
    for r in count_rows:  # the same rules as the stats' tally
        k = int(r.n)
        if r.status == "failed":
            failed += k
        elif r.status == "rejected" or (r.status == "completed" and not r.heard):
            missed += k
        elif r.status == "completed":
            answered += k
        elif r.status == "in_progress":
            in_progress += k
        types[r.call_type] = types.get(r.call_type, 0) + k
    total = Decimal(str(month_total)) if month_total is not None else Decimal(0)
    usd, inr = _money(total, deps.usd_inr)
    warn = limit = None
    if s.tenant is not None:
        try:
            t = deps.tenants.get_any(s.tenant)
            warn = float(t.budget_warn_usd) if t.budget_warn_usd is not None else None
            limit = float(t.budget_limit_usd) if t.budget_limit_usd is not None else None
        except TenantError:
            pass
    return TodaySummary(
        day=day,
        answered=answered,
        missed=missed,
        failed=failed,
        in_progress=in_progress,
        call_types=sorted(types.items(), key=lambda kv: (-kv[1], kv[0] or "")),
        urgent=[CallSummary(**_summary(r)) for r in urgent_rows],
        messages=[(r.status, int(r.n)) for r in status_rows],
        month=f"{now:%Y-%m}",
        month_cost_usd=usd or 0.0,
        month_cost_inr=inr or 0.0,
        budget_warn_usd=warn,
        budget_limit_usd=limit,
    )
