"""The owner's bookings: listed (every select from `Scope.bookings()`), and as an `.ics` feed at
a secret URL a phone's calendar subscribes to (a calendar app sends no API key, so the URL's
token is the credential: 256 random bits, kept only as a hash, compared in constant time; a new
one replaces the old).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import icalendar
import sqlalchemy as sa

from receptionist.store import bookings as store
from receptionist.store.calendar_sync import sync_problems
from receptionist.store.schema import BOOKING_CONFIRMED, bookings, utcnow
from receptionist.web.deps import MAX_PAGE, WebDeps, WebError
from receptionist.web.models import Booking, CalendarSyncProblem
from receptionist.web.scope import Scope

__all__ = ["booking_list", "calendar_ics", "calendar_sync_problems", "new_feed"]

FEED_DAYS_BACK = 30  # a feed carries the last month and everything ahead
FEED_MAX_EVENTS = 2000


def _model(row: Any, now: datetime | None = None) -> Booking:
    values = dict(row._mapping)
    values["status"] = store.effective_status(
        values["status"], values["expires_at"], now or utcnow()
    )
    return Booking.model_validate(values, from_attributes=False)


async def booking_list(
    s: Scope,
    deps: WebDeps,
    status: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
) -> list[Booking]:
    b = bookings.c
    now = utcnow()
    stmt = s.bookings()
    if status:
        stmt = stmt.where(store.status_is(status, now))  # a hold that ran out is expired
    if since is not None:
        stmt = stmt.where(sa.or_(b.starts_at >= since, b.starts_at.is_(None)))
    stmt = stmt.order_by(sa.func.coalesce(b.starts_at, b.created_at).desc(), b.id.desc()).limit(
        max(1, min(limit, MAX_PAGE))
    )
    async with deps.db.session() as conn:
        rows = (await conn.execute(stmt)).all()
    return [_model(r, now) for r in rows]


async def calendar_sync_problems(s: Scope, deps: WebDeps) -> list[CalendarSyncProblem]:
    """The bookings whose Google Calendar push failed last (the key's tenant; an admin: all)."""
    found = await sync_problems(deps.db, s.tenant)
    return [CalendarSyncProblem.model_validate(p, from_attributes=True) for p in found]


def feed_path(tenant: str, token: str) -> str:
    return f"/calendar/{tenant}/{token}.ics"


async def new_feed(s: Scope, deps: WebDeps) -> tuple[str, str]:
    """A new secret feed for the key's tenant (an admin names one): (tenant, token)."""
    if s.tenant is None:
        raise WebError(400, "bad_request", "tenant: an admin key must name the tenant")
    return s.tenant, await store.new_feed_token(deps.db, s.tenant)


async def calendar_ics(deps: WebDeps, tenant: str, token: str) -> bytes:
    """The tenant's held and confirmed slots as iCalendar; 404 for a wrong tenant or token
    (the same answer either way: a guess learns nothing)."""
    if not await store.feed_token_ok(deps.db, tenant, token):
        raise WebError(404, "not_found", "no such calendar")
    since = utcnow() - timedelta(days=FEED_DAYS_BACK)
    b = bookings.c
    stmt = (
        sa.select(bookings)
        .where(
            b.tenant == tenant,
            b.kind == "slot",
            b.starts_at >= since,
            store.live_at(utcnow()),  # a hold that ran out is no booking
        )
        .order_by(b.starts_at)
        .limit(FEED_MAX_EVENTS)
    )
    async with deps.db.session() as conn:
        rows = (await conn.execute(stmt)).all()
    cal = icalendar.Calendar()
    cal.add("prodid", "-//Receptionist//bookings//EN")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", f"{tenant} bookings")
    for row in rows:
        event = icalendar.Event()
        event.add("uid", f"{row.reference}@{tenant}.receptionist")
        event.add("dtstamp", row.updated_at)
        event.add("dtstart", row.starts_at)
        event.add("dtend", row.ends_at or row.starts_at)
        service = (row.details or {}).get("service") if isinstance(row.details, dict) else None
        who = row.customer_name or "caller"
        event.add("summary", f"{service or 'Booking'}: {who} ({row.resource})")
        event.add("description", f"Ref {row.reference}; phone {row.customer_phone or '-'}")
        event.add("status", "CONFIRMED" if row.status == BOOKING_CONFIRMED else "TENTATIVE")
        cal.add_component(event)
    return bytes(cal.to_ical())
