"""The REST API under `/api/v1` (FastAPI: OpenAPI at `/openapi.json`).

Every route depends on `scope`, which turns `Authorization: Bearer <key>` into a `Scope` (or a
401), and reads only through that scope's selects (web/scope.py). Errors are JSON
`{"error": {"code", "message"}}`.
"""

from __future__ import annotations

import base64
import binascii
import csv
import html
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import orjson
import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from receptionist.store.api_keys import KeyOwner, check_key
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
    ErrorBody,
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


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _error(status: int, code: str, message: str) -> JSONResponse:
    body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status)


@dataclass(frozen=True)
class ApiDeps:
    db: Database
    tenants: TenantRepository
    usd_inr: Decimal


def _deps(request: Request) -> ApiDeps:
    deps: ApiDeps = request.app.state.api
    return deps


async def scope(
    request: Request,
    deps: Annotated[ApiDeps, Depends(_deps)],
    tenant: Annotated[
        str | None, Query(description="Admin keys: the tenant to look at (default: all).")
    ] = None,
) -> Scope:
    """The one gate: a valid key, and the data it may see."""
    header = request.headers.get("authorization", "")
    scheme, _, presented = header.partition(" ")
    owner: KeyOwner | None = None
    if scheme.lower() == "bearer" and presented:
        owner = await check_key(deps.db, presented.strip())
    if owner is None:
        raise ApiError(401, "unauthorized", "a valid API key is required (Authorization: Bearer)")
    if owner.tenant is not None:
        # a deactivated tenant's owner still reads its history; a deleted one's key is dead
        try:
            deps.tenants.get_any(owner.tenant)
        except UnknownTenant:
            raise ApiError(
                403, "tenant_gone", f"tenant {owner.tenant!r} no longer exists"
            ) from None
        except TenantError:
            pass  # a tenant folder with problems is still this owner's tenant
    return Scope.of(owner, tenant)


ScopeDep = Annotated[Scope, Depends(scope)]
DepsDep = Annotated[ApiDeps, Depends(_deps)]


# --- cursors and filters ------------------------------------------------------------------------


def _encode_cursor(started_at: datetime | None, row_id: int) -> str:
    raw = orjson.dumps([started_at.isoformat() if started_at else None, row_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime | None, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        when, row_id = orjson.loads(raw)
        if not isinstance(row_id, int) or isinstance(row_id, bool):
            raise ValueError
        return (datetime.fromisoformat(when) if when is not None else None), row_id
    except (binascii.Error, ValueError, TypeError, orjson.JSONDecodeError):
        raise ApiError(400, "bad_cursor", "the cursor is not one this API gave out") from None


def _day_bounds(value: date, tz: ZoneInfo, *, end: bool) -> datetime:
    """Midnight of `value` (or of the day after, for an inclusive end) in the tenant's zone."""
    day = value + timedelta(days=1) if end else value
    return datetime.combine(day, time(0), tz).astimezone(UTC)


def _tz(deps: ApiDeps, s: Scope) -> ZoneInfo:
    if s.tenant is not None:
        try:
            return ZoneInfo(deps.tenants.get_any(s.tenant).timezone)
        except (TenantError, ValueError, KeyError):
            pass
    return ZoneInfo(DEFAULT_TZ)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


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


# --- routes -------------------------------------------------------------------------------------

router = APIRouter(prefix="/api/v1", responses={401: {"model": ErrorBody}})


@router.get("/tenants", response_model=list[Tenant], summary="Tenants this key may see")
async def list_tenants(s: ScopeDep, deps: DepsDep) -> list[Tenant]:
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


@dataclass(frozen=True)
class CallFilters:
    """The filters the call list, its CSV export and the stats share."""

    date_from: date | None
    date_to: date | None
    call_type: str | None
    status: str | None
    caller: str | None
    q: str | None

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
                raise ApiError(400, "bad_filter", "caller: give some digits of the number")
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


def call_filters(
    date_from: Annotated[
        date | None, Query(alias="from", description="First day (YYYY-MM-DD, tenant's time zone)")
    ] = None,
    date_to: Annotated[date | None, Query(alias="to", description="Last day, inclusive")] = None,
    call_type: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(max_length=32)] = None,
    caller: Annotated[
        str | None, Query(max_length=32, description="Digits of the caller's number")
    ] = None,
    q: Annotated[
        str | None, Query(max_length=200, description="Words in the transcript or summary")
    ] = None,
) -> CallFilters:
    return CallFilters(date_from, date_to, call_type, status, caller, q)


FiltersDep = Annotated[CallFilters, Depends(call_filters)]

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


@router.get("/calls", response_model=Page[CallSummary], summary="Calls, newest first")
async def list_calls(
    s: ScopeDep,
    deps: DepsDep,
    filters: FiltersDep,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[
        int, Query(ge=1, description=f"Page size, at most {MAX_PAGE} (larger is capped)")
    ] = DEFAULT_PAGE,
) -> Page[CallSummary]:
    stmt = filters.apply(s.calls(*_LIST_COLUMNS), _tz(deps, s))
    if cursor:
        stmt = _after(stmt, _decode_cursor(cursor))
    size = min(limit, MAX_PAGE)
    async with deps.db.session() as conn:
        rows = (await conn.execute(_newest_first(stmt).limit(size + 1))).all()
    more = len(rows) > size
    rows = rows[:size]
    next_cursor = _encode_cursor(rows[-1].started_at, rows[-1].id) if more else None
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


@router.get(
    "/calls.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
    summary="The filtered call list as CSV (streamed)",
)
async def export_calls(s: ScopeDep, deps: DepsDep, filters: FiltersDep) -> StreamingResponse:
    base = filters.apply(s.calls(*_LIST_COLUMNS), _tz(deps, s))  # a bad filter fails here

    async def rows() -> AsyncIterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(_CSV_HEADER)
        cursor: tuple[datetime | None, int] | None = None
        while True:  # keyset pages: memory stays bounded whatever the list's length
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

    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="calls.csv"'},
    )


MAX_STATS_DAYS = 366
LATENCY_SAMPLE_CALLS = 2000  # the latest calls of the range whose turns are timed


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


@router.get("/stats", response_model=Stats, summary="Per day and per call type, with costs")
async def stats(
    s: ScopeDep,
    deps: DepsDep,
    date_from: Annotated[
        date | None, Query(alias="from", description="Default: 30 days ago")
    ] = None,
    date_to: Annotated[date | None, Query(alias="to", description="Default: today")] = None,
) -> Stats:
    tz = _tz(deps, s)
    last = date_to or datetime.now(tz).date()
    first = date_from or last - timedelta(days=29)
    if first > last or (last - first).days >= MAX_STATS_DAYS:
        raise ApiError(
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


@router.get("/calls/live", response_model=list[CallSummary], summary="Calls in progress")
async def live_calls(s: ScopeDep, deps: DepsDep) -> list[CallSummary]:
    c = call_details.c
    stmt = s.calls().where(c.status == "in_progress").order_by(c.started_at.desc()).limit(MAX_PAGE)
    async with deps.db.session() as conn:
        rows = (await conn.execute(stmt)).all()
    return [CallSummary(**_summary(r)) for r in rows]


async def _call_row(s: Scope, deps: ApiDeps, call_sid: str) -> Any:
    async with deps.db.session() as conn:
        row = (await conn.execute(s.calls().where(call_details.c.call_sid == call_sid))).first()
    if row is None:  # another tenant's call reads exactly like a missing one
        raise ApiError(404, "not_found", f"no call {call_sid!r}")
    return row


@router.get(
    "/calls/{call_sid}",
    response_model=CallDetail,
    responses={404: {"model": ErrorBody}},
    summary="One call: transcript, analysis, cost, messages, Exotel's record, events",
)
async def get_call(call_sid: str, s: ScopeDep, deps: DepsDep) -> CallDetail:
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


def _turn(t: dict[str, Any]) -> dict[str, Any]:
    return {
        "speaker": str(t.get("speaker") or ""),
        "text": str(t.get("text") or ""),
        "start_ms": t.get("start_ms"),
        "end_ms": t.get("end_ms"),
        "interrupted": bool(t.get("interrupted")),
    }


@router.post(
    "/calls/{call_sid}/retry",
    response_model=Done,
    responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}},
    summary="Run a failed call's post-call work again",
)
async def retry_call(call_sid: str, s: ScopeDep, deps: DepsDep) -> Done:
    row = await _call_row(s, deps, call_sid)
    if row.stage != "failed":
        raise ApiError(409, "not_failed", f"the call is at {row.stage!r}; only failed calls")
    await reschedule(deps.db, call_sid, stage="transcript_saved")
    return Done(message=f"call {call_sid} will be processed again")


@router.get("/notifications", response_model=list[Notification], summary="WhatsApp messages")
async def list_notifications(
    s: ScopeDep,
    deps: DepsDep,
    status: Annotated[str | None, Query(max_length=32)] = None,
    call_sid: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1)] = DEFAULT_PAGE,
) -> list[Notification]:
    n = notifications.c
    stmt = s.notifications()
    if status:
        stmt = stmt.where(n.status == status)
    if call_sid:
        stmt = stmt.where(n.call_sid == call_sid)
    stmt = stmt.order_by(n.id.desc()).limit(min(limit, MAX_PAGE))
    async with deps.db.session() as conn:
        rows = (await conn.execute(stmt)).all()
    return [_notification(r) for r in rows]


@router.post(
    "/notifications/{notification_id}/resend",
    response_model=Done,
    responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}},
    summary="Send a failed or unknown message again (after checking it did not arrive)",
)
async def resend_notification(notification_id: int, s: ScopeDep, deps: DepsDep) -> Done:
    async with deps.db.session() as conn:
        row = (
            await conn.execute(
                s.notifications(notifications.c.status).where(notifications.c.id == notification_id)
            )
        ).first()
    if row is None:
        raise ApiError(404, "not_found", f"no message {notification_id}")
    if row.status not in (NOTIFY_FAILED, NOTIFY_UNKNOWN) or not await requeue(
        deps.db, notification_id
    ):
        raise ApiError(409, "not_resendable", "only failed or unknown messages are sent again")
    return Done(message=f"message {notification_id} is queued again")


# --- the app ------------------------------------------------------------------------------------


def create_api(db: Database, tenants: TenantRepository, usd_inr: Decimal) -> FastAPI:
    """The API as an ASGI app of its own (mounted at the root of the server's app)."""
    api = FastAPI(
        title="Receptionist API",
        version="1",
        description="Calls, analysis, costs and WhatsApp messages of the tenants a key may see.",
        docs_url=None,  # the stock page loads its scripts from a CDN; ours (below) is offline
        redoc_url=None,
    )
    api.state.api = ApiDeps(db=db, tenants=tenants, usd_inr=usd_inr)
    api.include_router(router)

    @api.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    async def docs() -> HTMLResponse:
        return HTMLResponse(docs_page(api.openapi()))

    @api.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message)

    @api.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path"))
        return _error(400, "bad_request", f"{where}: {first.get('msg', 'invalid')}")

    @api.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail))

    @api.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _error(503 if _is_db_down(exc) else 500, "unavailable", _unexpected_text(exc))

    return api


def docs_page(spec: dict[str, Any]) -> str:
    """The API's reference as one plain HTML page, made from its OpenAPI document on the server
    (the stock Swagger page fetches its scripts from a CDN, which an offline install cannot)."""
    e = html.escape
    parts = [
        "<!doctype html><html lang=en><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>{e(spec['info']['title'])}</title>"
        "<style>body{font:16px/1.45 system-ui,sans-serif;max-width:52rem;margin:auto;padding:1rem}"
        "code{background:#f3f3f3;padding:0 .2em}section{border-top:1px solid #ddd;padding:.5rem 0}"
        "td{padding:0 .6rem .2rem 0;vertical-align:top}</style>",
        f"<h1>{e(spec['info']['title'])}</h1><p>{e(spec['info'].get('description', ''))}</p>",
        "<p>Every request carries <code>Authorization: Bearer &lt;key&gt;</code> (made with "
        "<code>receptionist keys create</code>). Errors are "
        '<code>{"error": {"code": ..., "message": ...}}</code>. The machine-readable document '
        "is <a href='/openapi.json'>/openapi.json</a>.</p>",
    ]
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            parts.append(
                f"<section><h2><code>{e(method.upper())} {e(path)}</code></h2>"
                f"<p>{e(op.get('summary', ''))}</p>"
            )
            params = op.get("parameters", [])
            if params:
                parts.append("<table>")
                for prm in params:
                    kind = prm.get("schema", {}).get("type") or "value"
                    need = "required" if prm.get("required") else "optional"
                    parts.append(
                        f"<tr><td><code>{e(prm['name'])}</code></td><td>{e(prm['in'])}, "
                        f"{e(str(kind))}, {need}</td><td>{e(prm.get('description', ''))}</td></tr>"
                    )
                parts.append("</table>")
            codes = ", ".join(e(code) for code in op.get("responses", {}))
            parts.append(f"<p>Answers: {codes}</p></section>")
    return "".join(parts)


def _is_db_down(exc: Exception) -> bool:
    return isinstance(exc, OSError | sa.exc.OperationalError | sa.exc.InterfaceError)


def _unexpected_text(exc: Exception) -> str:
    if _is_db_down(exc):
        return "the database is not answering; try again shortly"
    return "something went wrong on our side; it has been logged"
