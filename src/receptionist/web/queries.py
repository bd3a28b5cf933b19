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
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import sqlalchemy as sa

from receptionist.store.api_keys import KeyOwner
from receptionist.store.db import Database
from receptionist.store.jobs import reschedule
from receptionist.store.notifications import requeue
from receptionist.store.schema import (
    NOTIFY_FAILED,
    NOTIFY_UNKNOWN,
    ai_token_usage,
    call_details,
    exotel_call_details,
    notifications,
)
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


def encode_cursor(started_at: datetime | None, row_id: int) -> str:
    raw = orjson.dumps([started_at.isoformat() if started_at else None, row_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime | None, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        when, row_id = orjson.loads(raw)
        if not isinstance(row_id, int) or isinstance(row_id, bool):
            raise ValueError
        return (datetime.fromisoformat(when) if when is not None else None), row_id
    except (binascii.Error, ValueError, TypeError, orjson.JSONDecodeError):
        raise WebError(400, "bad_cursor", "the cursor is not one this API gave out") from None


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True)
class CallFilters:
    """The filters the call list, its CSV export and the dashboard share."""

    date_from: date | None = None
    date_to: date | None = None
    call_type: str | None = None
    status: str | None = None
    caller: str | None = None
    q: str | None = None

    def apply(self, stmt: sa.Select[Any], tz: ZoneInfo) -> sa.Select[Any]:
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
            digits = "".join(ch for ch in self.caller if ch.isdigit())
            if not digits:
                raise WebError(400, "bad_filter", "caller: give some digits of the number")
            stmt = stmt.where(c.from_number.like(_like(digits), escape="\\"))
        if self.q and self.q.strip():
            pattern = _like(self.q.strip())
            stmt = stmt.where(
                sa.or_(
                    c.summary.ilike(pattern, escape="\\"),
                    sa.cast(c.transcript, sa.Text).ilike(pattern, escape="\\"),
                )
            )
        return stmt


_c = call_details.c
_LIST_COLUMNS = (
    _c.id, _c.call_sid, _c.tenant, _c.from_number, _c.status, _c.end_reason, _c.call_type,
    _c.summary, _c.stage, _c.started_at, _c.ended_at, _c.duration_ms, _c.transcript,
)  # fmt: skip


def _after(stmt: sa.Select[Any], cursor: tuple[datetime | None, int]) -> sa.Select[Any]:
    """Rows after `cursor` in (started_at desc, id desc) order; NULL start times come last."""
    when, row_id = cursor
    c = call_details.c
    if when is None:
        return stmt.where(c.started_at.is_(None), c.id < row_id)
    return stmt.where(
        sa.or_(
            c.started_at < when,
            sa.and_(c.started_at == when, c.id < row_id),
            c.started_at.is_(None),
        )
    )


def _newest_first(stmt: sa.Select[Any]) -> sa.Select[Any]:
    c = call_details.c
    return stmt.order_by(c.started_at.desc().nulls_last(), c.id.desc())


# --- shaping rows -------------------------------------------------------------------------------


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
        "turns": len(row.transcript or []),
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


def _turn(t: dict[str, Any]) -> dict[str, Any]:
    return {
        "speaker": str(t.get("speaker") or ""),
        "text": str(t.get("text") or ""),
        "start_ms": t.get("start_ms"),
        "end_ms": t.get("end_ms"),
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
    s: Scope, deps: WebDeps, filters: CallFilters, cursor: str | None, limit: int
) -> Page[CallSummary]:
    stmt = filters.apply(s.calls(*_LIST_COLUMNS), tenant_tz(deps, s))
    if cursor:
        stmt = _after(stmt, decode_cursor(cursor))
    size = max(1, min(limit, MAX_PAGE))
    async with deps.db.session() as conn:
        rows = (await conn.execute(_newest_first(stmt).limit(size + 1))).all()
    more = len(rows) > size
    rows = rows[:size]
    next_cursor = encode_cursor(rows[-1].started_at, rows[-1].id) if more else None
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


def calls_csv(s: Scope, deps: WebDeps, filters: CallFilters) -> AsyncIterator[str]:
    """The filtered list as CSV text, in keyset pages: memory stays bounded whatever its length.
    A bad filter raises here, before the first byte is sent."""
    base = filters.apply(s.calls(*_LIST_COLUMNS), tenant_tz(deps, s))

    async def rows() -> AsyncIterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(_CSV_HEADER)
        cursor: tuple[datetime | None, int] | None = None
        while True:
            stmt = base if cursor is None else _after(base, cursor)
            async with deps.db.session() as conn:
                batch = (await conn.execute(_newest_first(stmt).limit(_CSV_BATCH))).all()
            for r in batch:
                duration = round(r.duration_ms / 1000) if r.duration_ms is not None else None
                started = r.started_at.isoformat() if r.started_at else ""
                turns = len(r.transcript or [])
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


def _response_times(transcript: Any) -> list[float]:
    """Caller's end → agent's start, for each agent turn that answers a caller turn."""
    times, caller_end = [], None
    for turn in transcript or []:
        if not isinstance(turn, dict):
            continue
        if turn.get("speaker") == "caller":
            caller_end = turn.get("end_ms")
        elif turn.get("speaker") == "agent" and isinstance(caller_end, int | float):
            start = turn.get("start_ms")
            if isinstance(start, int | float) and start >= caller_end:
                times.append(float(start - caller_end))
            caller_end = None
    return times


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


async def stats(
    s: Scope, deps: WebDeps, date_from: date | None = None, date_to: date | None = None
) -> Stats:
    tz = tenant_tz(deps, s)
    last = date_to or datetime.now(tz).date()
    first = date_from or last - timedelta(days=29)
    if first > last or (last - first).days >= MAX_STATS_DAYS:
        raise WebError(
            400, "bad_range", f"from must be on or before to, at most {MAX_STATS_DAYS} days"
        )
    lo, hi = _day_bounds(first, tz, end=False), _day_bounds(last, tz, end=True)
    c, u = call_details.c, ai_token_usage.c
    calls = s.calls(c.call_sid, c.started_at, c.status, c.answered_at, c.call_type, c.duration_ms)
    calls = calls.where(c.started_at >= lo, c.started_at < hi)
    costs = (
        s.usage(c.started_at, u.total_cost)
        .join(call_details, call_details.c.call_sid == u.call_sid)
        .where(c.started_at >= lo, c.started_at < hi, u.total_cost.is_not(None))
    )
    timed = _newest_first(s.calls(c.transcript).where(c.started_at >= lo, c.started_at < hi)).limit(
        LATENCY_SAMPLE_CALLS
    )
    async with deps.db.session() as conn:
        call_rows = (await conn.execute(calls)).all()
        cost_rows = (await conn.execute(costs)).all()
        transcripts = (await conn.scalars(timed)).all()

    days = {first + timedelta(days=i): _Tally() for i in range((last - first).days + 1)}
    types: dict[str | None, _Tally] = {}
    total = _Tally()
    for r in call_rows:
        day = r.started_at.astimezone(tz).date()
        for tally in (days[day], types.setdefault(r.call_type, _Tally()), total):
            tally.add(r.status, r.answered_at is not None, r.duration_ms)
    for r in cost_rows:
        days[r.started_at.astimezone(tz).date()].cost += r.total_cost
        total.cost += r.total_cost
    response = [ms for t in transcripts for ms in _response_times(t)]
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
    if row.stage != "failed":
        raise WebError(409, "not_failed", f"the call is at {row.stage!r}; only failed calls")
    await reschedule(deps.db, call_sid, stage="transcript_saved")
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
