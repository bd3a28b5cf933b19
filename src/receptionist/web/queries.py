"""What the owner's window reads and changes: one function per question, shared by the REST API
(web/api.py) and the dashboard (web/dashboard.py), so both answer the same thing the same way.

The figures (statistics, "today") are in web/figures.py, the call list's cursors, filters and
row shaping in web/call_list.py, and what every question needs (dependencies, errors, the
tenant's time zone) in web/deps.py.

Every function takes a `Scope` (web/scope.py) and reads only through its selects. A problem the
caller can fix raises `WebError` with a status, a stable code and a message; the API turns it into
JSON, the dashboard into a page.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from receptionist import callbacks
from receptionist.store.callbacks import callbacks_for_call
from receptionist.store.jobs import reschedule
from receptionist.store.notifications import requeue
from receptionist.store.schema import (
    NOTIFY_FAILED,
    NOTIFY_UNKNOWN,
    Stage,
    ai_token_usage,
    call_details,
    exotel_call_details,
    notifications,
    utcnow,
)
from receptionist.telephony.exotel_api import ExotelApiError
from receptionist.tenants.repository import TenantError
from receptionist.web.call_list import (
    LIST_COLUMNS,
    CallFilters,
    check_sort,
    decode_cursor,
    encode_cursor,
    money_pair,
    notification_of,
    page_rows,
    summary_of,
    turn_count_of,
    turn_of,
)
from receptionist.web.deps import DEFAULT_PAGE, MAX_PAGE, WebDeps, WebError, tenant_tz
from receptionist.web.models import (
    CallbackDone,
    CallbackItem,
    CallDetail,
    CallSummary,
    Done,
    ExotelRecord,
    Notification,
    Page,
    Tenant,
    Turn,
    Usage,
)
from receptionist.web.recordings import recording_of
from receptionist.web.scope import Scope

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
    sort = check_sort(sort)
    base = filters.apply(s.calls(*LIST_COLUMNS), tenant_tz(deps, s), deps.db.dialect)
    size = max(1, min(limit, MAX_PAGE))
    after = decode_cursor(cursor, sort) if cursor else None
    rows = await page_rows(deps, base, sort, after, size + 1)
    more = len(rows) > size
    rows = rows[:size]
    next_cursor = encode_cursor(rows[-1].started_at, rows[-1].id, sort) if more else None
    return Page[CallSummary](
        items=[CallSummary(**summary_of(r)) for r in rows], next_cursor=next_cursor
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
    sort = check_sort(sort)
    base = filters.apply(s.calls(*LIST_COLUMNS), tenant_tz(deps, s), deps.db.dialect)

    async def rows() -> AsyncIterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(_CSV_HEADER)
        cursor: tuple[datetime | None, int] | None = None
        while True:
            batch = await page_rows(deps, base, sort, cursor, _CSV_BATCH)
            for r in batch:
                duration = round(r.duration_ms / 1000) if r.duration_ms is not None else None
                started = r.started_at.isoformat() if r.started_at else ""
                turns = turn_count_of(r)
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


async def live_calls(s: Scope, deps: WebDeps) -> list[CallSummary]:
    c = call_details.c
    stmt = s.calls().where(c.status == "in_progress").order_by(c.started_at.desc()).limit(MAX_PAGE)
    async with deps.db.session() as conn:
        rows = (await conn.execute(stmt)).all()
    return [CallSummary(**summary_of(r)) for r in rows]


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
    usages, total = _usages(usage, deps.usd_inr)
    cost_usd, cost_inr = money_pair(total, deps.usd_inr)
    return CallDetail(
        **summary_of(row),
        to_number=row.to_number,
        engine=row.engine,
        model=row.model,
        error=row.error,
        answered_at=row.answered_at,
        transcript=[Turn(**turn_of(t)) for t in row.transcript or [] if isinstance(t, dict)],
        details=row.critical_call_details,
        events=list(row.events or []),
        stats=row.stats,
        usage=usages,
        cost_usd=cost_usd,
        cost_inr=cost_inr,
        notifications=[notification_of(n) for n in sent],
        exotel=_exotel_record(exo) if exo is not None else None,
        attempts=row.attempts,
        last_error=row.last_error,
        handoff=row.handoff,
        recording=await recording_of(s, deps, call_sid),
        callbacks=[
            CallbackItem(
                reason=c.reason,
                status=c.status,
                to_number=c.to_number,
                due_at=c.due_at,
                exotel_sid=c.exotel_sid,
                error=c.error,
                created_at=c.created_at,
            )
            for c in await callbacks_for_call(deps.db, call_sid)
        ],
        callbacks_open_at=_callbacks_open_at(deps, row.tenant),
    )


def _callbacks_open_at(deps: WebDeps, tenant_id: str | None) -> datetime | None:
    """The next opening of the tenant's callback hours when they are closed now."""
    try:
        rules = deps.tenants.get_any(tenant_id or "").callbacks
    except TenantError:
        return None
    if rules is None:
        return None
    now = utcnow()
    opening = rules.hours.next_open(now)
    return None if opening is None or opening == now else opening


def _usages(rows: Any, rate: Decimal) -> tuple[list[Usage], Decimal | None]:
    """The call's token usage rows, priced; and their total cost (None: none was priced)."""
    usages = []
    total: Decimal | None = None
    for u in rows:
        usd, inr = money_pair(u.total_cost, rate)
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
    return usages, total


def _exotel_record(exo: Any) -> ExotelRecord:
    return ExotelRecord(
        status=exo.call_status,
        duration_s=exo.call_duration,
        price=float(exo.price) if exo.price is not None else None,
        recording_url=exo.recording_url,
        start_time=exo.start_time,
        end_time=exo.end_time,
        fetched_at=exo.fetched_at,
    )


async def retry_call(s: Scope, deps: WebDeps, call_sid: str) -> Done:
    row = await _call_row(s, deps, call_sid)
    if row.stage != Stage.FAILED:
        raise WebError(409, "not_failed", f"the call is at {row.stage!r}; only failed calls")
    await reschedule(deps.db, call_sid, stage=Stage.TRANSCRIPT_SAVED)
    return Done(message=f"call {call_sid} will be processed again")


async def call_back(
    s: Scope, deps: WebDeps, call_sid: str, *, when_open: bool = False
) -> CallbackDone:
    """Have the AI call this call's caller back now (callbacks.py has the rules); with
    ``when_open`` a request outside the hours is scheduled for their next opening instead of
    refused (the refusal carries that opening as ``opens_at``)."""
    row = await _call_row(s, deps, call_sid)  # in scope, or a 404
    if deps.callbacks is None:
        raise WebError(409, "no_exotel", "callbacks need Exotel's API and CALLBACK_STREAM_URL")
    try:
        if when_open:
            done = await callbacks.schedule_callback(
                deps.callbacks, call_sid, "requested", tenant_id=row.tenant
            )
        else:
            done = await callbacks.place_callback(
                deps.callbacks, call_sid, "requested", tenant_id=row.tenant
            )
    except callbacks.CallbackRefused as exc:
        raise WebError(409, f"callback_{exc.reason}", exc.message, opens_at=exc.opens_at) from None
    except ExotelApiError as exc:
        raise WebError(502, "exotel_error", f"Exotel refused the call: {exc.kind}") from None
    if isinstance(done, callbacks.Scheduled):
        return CallbackDone(
            message=f"{done.to_number} will be called back at {done.due_at.isoformat()}",
            status="scheduled",
            due_at=done.due_at,
        )
    callbacks.follow_up(deps.callbacks, done)
    return CallbackDone(
        message=f"calling {done.to_number} back (Exotel call {done.exotel_sid})",
        status="placed",
        due_at=None,
    )


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
    return [notification_of(r) for r in rows]


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
