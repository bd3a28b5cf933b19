"""Which bookings the owner's Google Calendar must be brought in step with, and what came of it.

Nothing marks a booking for sync: a booking is due while what its status wants of the calendar
("event" when confirmed, "absent" otherwise) differs from what the calendar last took (`pushed`,
no row: never in it). So a confirmation, a cancellation or an expiry made anywhere (the call's
end, the API, a hold running out) is picked up by the next pass, and a crash between the push
and its record only repeats a push that is idempotent (the event's id is the booking's).

`claim` takes a due booking for `lease_s` with a compare-and-set on the row as it was read, so
two workers never push one booking at once; `failed` backs off and keeps the reason, visible in
`sync_problems` (and the API) until a push succeeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from receptionist.store.bookings import Booking, _booking
from receptionist.store.db import Database
from receptionist.store.schema import BOOKING_CONFIRMED, bookings, calendar_sync

DEFAULT_MAX_ATTEMPTS = 8
EVENT = "event"
ABSENT = "absent"
#: bookings that ended longer ago than this are not pushed (a calendar set up late is not
#: back-filled with the past)
PAST = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class SyncDue:
    booking: Booking
    target: str  # EVENT | ABSENT
    calendar_id: str | None  # where the event was put (a removal goes there); None: not yet
    row: dict[str, Any] | None  # the sync row as read (for the claim's compare-and-set)


def _wanted() -> Any:
    return sa.case((bookings.c.status == BOOKING_CONFIRMED, EVENT), else_=ABSENT)


async def due(
    db: Database, tenants: list[str], *, now: datetime, max_attempts: int, limit: int = 20
) -> list[SyncDue]:
    if not tenants:
        return []
    s = calendar_sync.c
    wanted = _wanted()
    q = (
        sa.select(bookings, *(c.label(f"sync_{c.name}") for c in calendar_sync.c))
        .select_from(bookings.outerjoin(calendar_sync, s.booking_id == bookings.c.id))
        .where(
            bookings.c.tenant.in_(tenants),
            bookings.c.kind == "slot",
            wanted != sa.func.coalesce(s.pushed, ABSENT),
            sa.or_(
                s.booking_id.is_(None),
                s.target != wanted,  # wanted something else since: a fresh start
                sa.and_(
                    s.attempts < max_attempts,
                    sa.or_(s.next_attempt_at.is_(None), s.next_attempt_at <= now),
                ),
            ),
            sa.or_(wanted == ABSENT, bookings.c.ends_at >= now - PAST),
        )
        .order_by(bookings.c.id)
        .limit(limit)
    )
    async with db.session() as conn:
        rows = (await conn.execute(q)).all()
    out = []
    for r in rows:
        m = r._mapping
        row = {c.name: m[f"sync_{c.name}"] for c in calendar_sync.c}
        exists = row["booking_id"] is not None
        out.append(
            SyncDue(
                booking=_booking(r),
                target=EVENT if m["status"] == BOOKING_CONFIRMED else ABSENT,
                calendar_id=row["calendar_id"] if exists else None,
                row=row if exists else None,
            )
        )
    return out


async def claim(
    db: Database,
    item: SyncDue,
    *,
    event_id: str,
    calendar_id: str,
    now: datetime,
    lease_s: float,
) -> bool:
    """Take the booking for one push (until `now + lease_s`); False: another worker has it."""
    s = calendar_sync.c
    until = now + timedelta(seconds=lease_s)
    if item.row is None:
        try:
            async with db.begin() as conn:
                await conn.execute(
                    sa.insert(calendar_sync).values(
                        booking_id=item.booking.id,
                        tenant=item.booking.tenant,
                        target=item.target,
                        pushed=None,
                        event_id=event_id,
                        calendar_id=calendar_id,
                        attempts=0,
                        next_attempt_at=until,
                        updated_at=now,
                    )
                )
        except IntegrityError:
            return False
        return True
    async with db.begin() as conn:
        old = item.row
        fresh = old["target"] != item.target
        result = await conn.execute(
            sa.update(calendar_sync)
            .where(
                s.booking_id == item.booking.id,
                s.target == old["target"],
                s.attempts == old["attempts"],
                s.next_attempt_at.is_not_distinct_from(old["next_attempt_at"]),
            )
            .values(
                target=item.target,
                # an event goes where the settings say now; a removal where the event was put
                calendar_id=calendar_id if item.target == EVENT else old["calendar_id"],
                attempts=0 if fresh else old["attempts"],
                next_attempt_at=until,
                updated_at=now,
            )
        )
        return bool(result.rowcount)


async def pushed(db: Database, booking_id: int, target: str, *, now: datetime) -> None:
    async with db.begin() as conn:
        await conn.execute(
            sa.update(calendar_sync)
            .where(calendar_sync.c.booking_id == booking_id)
            .values(
                pushed=target, attempts=0, next_attempt_at=None, last_error=None, updated_at=now
            )
        )


async def failed(
    db: Database,
    booking_id: int,
    error: str,
    *,
    now: datetime,
    base_s: float,
    max_backoff_s: float = 3600.0,
) -> int:
    """Record a failed push and when to try again (doubling from `base_s`); returns the attempts
    made so far."""
    s = calendar_sync.c
    async with db.begin() as conn:
        attempts = (
            await conn.execute(sa.select(s.attempts).where(s.booking_id == booking_id))
        ).scalar_one() + 1
        delay = min(max_backoff_s, base_s * 2 ** (attempts - 1))
        await conn.execute(
            sa.update(calendar_sync)
            .where(s.booking_id == booking_id)
            .values(
                attempts=attempts,
                next_attempt_at=now + timedelta(seconds=delay),
                last_error=error[:300],
                updated_at=now,
            )
        )
    return int(attempts)


@dataclass(frozen=True, slots=True)
class SyncProblem:
    reference: str
    target: str
    attempts: int
    last_error: str
    next_attempt_at: datetime | None
    gave_up: bool


async def sync_problems(
    db: Database,
    tenant: str | None,
    *,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    limit: int = 50,
) -> list[SyncProblem]:
    """The bookings whose last push failed (`gave_up`: no more attempts will be made)."""
    s = calendar_sync.c
    q = (
        sa.select(bookings.c.reference, s.target, s.attempts, s.last_error, s.next_attempt_at)
        .select_from(calendar_sync.join(bookings, bookings.c.id == s.booking_id))
        .where(s.last_error.is_not(None))
        .order_by(s.updated_at.desc())
        .limit(limit)
    )
    if tenant is not None:
        q = q.where(s.tenant == tenant)
    async with db.session() as conn:
        rows = (await conn.execute(q)).all()
    return [
        SyncProblem(
            reference=r.reference,
            target=r.target,
            attempts=r.attempts,
            last_error=r.last_error,
            next_attempt_at=r.next_attempt_at,
            gave_up=r.attempts >= max_attempts,
        )
        for r in rows
    ]
