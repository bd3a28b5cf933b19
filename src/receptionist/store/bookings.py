"""Bookings made during calls: hold a slot or an order (`pending`), confirm at the call's end,
expire holds nobody confirmed, find them again; and the owner's calendar feed tokens.

Why a hold cannot collide: a slot is taken when a live booking (confirmed, or pending and not
expired: `live_at`) of the same tenant and resource overlaps it in time
(`existing.starts < new.ends and existing.ends > new.starts`), whatever grid it was booked on (a
tenant may change `slot_minutes` or its hours with bookings ahead). `hold_slot` checks that and
inserts in one transaction that holds the (tenant, resource) exclusively: on SQLite every write
transaction takes the database's write lock at BEGIN (Database.begin), on PostgreSQL it takes
the transaction-scoped advisory lock of that pair first (`pg_advisory_xact_lock`). An advisory
lock, not an exclusion constraint: "pending and not expired" depends on the time, which a
constraint cannot read, and `btree_gist` (which an exclusion over text and a range needs) is an
extension a managed database may not let us create; not a row lock either, since the first
booking of a resource has no row to lock. Read committed sees the rows the lock's last holder
committed, so the check is never stale. The partial unique index `uq_bookings_active_slot`
(schema.py: one pending-or-confirmed row per tenant, resource and exact start) stays as a
backstop in the database itself.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from receptionist.store.db import Database, lock_until_commit
from receptionist.store.schema import (
    BOOKING_CONFIRMED,
    BOOKING_EXPIRED,
    BOOKING_PENDING,
    bookings,
    calendar_feeds,
    utcnow,
)
from receptionist.untrusted import without_nul

# No 0/O, 1/I/L: a reference is read out on the phone.
_REF_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
REF_LENGTH = 6  # 31^6 ~ 890 million; a collision is retried
MAX_LIST = 500


def new_reference() -> str:
    return "".join(secrets.choice(_REF_ALPHABET) for _ in range(REF_LENGTH))


@dataclass(frozen=True, slots=True)
class Booking:
    id: int
    tenant: str
    reference: str
    kind: str  # "slot" | "order"
    resource: str
    starts_at: datetime | None
    ends_at: datetime | None
    status: str
    call_sid: str | None
    customer_name: str | None
    customer_phone: str | None
    details: dict[str, Any] | None
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            out[name] = value.isoformat() if isinstance(value, datetime) else value
        return out


# --- what "an expired hold" is: the one definition (the tools, the web list, the .ics feed) ---
#
# A pending hold whose `expires_at` has passed (or that has none) is expired, whether or not its
# row says so yet: rows are marked lazily, by the next hold that overlaps it or by the call's end.


def hold_ran_out(status: str, expires_at: datetime | None, now: datetime) -> bool:
    return status == BOOKING_PENDING and (expires_at is None or expires_at <= now)


def effective_status(status: str, expires_at: datetime | None, now: datetime) -> str:
    """The status as the owner and the caller see it: a hold that ran out is expired."""
    return BOOKING_EXPIRED if hold_ran_out(status, expires_at, now) else status


def ran_out_at(now: datetime) -> Any:
    """SQL: rows that `hold_ran_out` at `now`."""
    b = bookings.c
    return sa.and_(b.status == BOOKING_PENDING, sa.or_(b.expires_at.is_(None), b.expires_at <= now))


def live_at(now: datetime) -> Any:
    """SQL: rows that hold their slot at `now`: confirmed, or pending and not yet run out."""
    b = bookings.c
    return sa.or_(
        b.status == BOOKING_CONFIRMED, sa.and_(b.status == BOOKING_PENDING, b.expires_at > now)
    )


def status_is(status: str, now: datetime) -> Any:
    """SQL: rows whose `effective_status` at `now` is `status`."""
    if status == BOOKING_PENDING:
        return sa.and_(bookings.c.status == BOOKING_PENDING, bookings.c.expires_at > now)
    if status == BOOKING_EXPIRED:
        return sa.or_(bookings.c.status == BOOKING_EXPIRED, ran_out_at(now))
    return bookings.c.status == status


def overlapping(start: datetime, end: datetime) -> Any:
    """SQL: slot rows whose time overlaps [start, end) (a row without an end is its start)."""
    b = bookings.c
    return sa.and_(
        b.kind == "slot", b.starts_at < end, sa.func.coalesce(b.ends_at, b.starts_at) > start
    )


def _booking(row: Any) -> Booking:
    m = row._mapping
    return Booking(**{name: m[name] for name in Booking.__slots__})


@dataclass(frozen=True, slots=True)
class SlotHold:
    tenant: str
    resource: str
    starts_at: datetime
    ends_at: datetime
    hold_for: timedelta
    call_sid: str | None = None
    customer_name: str | None = None
    customer_phone: str | None = None
    details: dict[str, Any] | None = None


def _clean(text: str | None) -> str | None:
    return without_nul(text)[:200] if text else None


async def hold_slot(db: Database, hold: SlotHold, *, now: datetime | None = None) -> Booking | None:
    """Hold the slot as `pending` until `now + hold_for`; None: a live booking overlaps it.

    The same call asking again for the hold it already has (a model retrying a `book` whose
    answer it lost) is given that hold back rather than refused by its own booking."""
    now = now or utcnow()
    for _ in range(3):  # a reference collision is retried; a slot collision is an answer
        reference = new_reference()
        try:
            async with db.begin() as conn:
                await lock_until_commit(conn, _BOOKING_LOCK_SPACE, hold.tenant, hold.resource)
                here = sa.and_(
                    bookings.c.tenant == hold.tenant,
                    bookings.c.resource == hold.resource,
                    overlapping(hold.starts_at, hold.ends_at),
                )
                # holds that ran out free their time: marked so (the index admits a new one)
                await conn.execute(
                    sa.update(bookings)
                    .where(here, ran_out_at(now))
                    .values(status=BOOKING_EXPIRED, updated_at=now)
                )
                clash = (
                    await conn.execute(sa.select(bookings).where(here, live_at(now)).limit(2))
                ).all()
                if clash:
                    mine = [_booking(r) for r in clash]
                    if len(mine) == 1 and _same_hold(mine[0], hold):
                        return mine[0]
                    return None
                row = (
                    await conn.execute(
                        sa.insert(bookings)
                        .values(
                            tenant=hold.tenant,
                            reference=reference,
                            kind="slot",
                            resource=hold.resource,
                            starts_at=hold.starts_at,
                            ends_at=hold.ends_at,
                            status=BOOKING_PENDING,
                            call_sid=hold.call_sid,
                            customer_name=_clean(hold.customer_name),
                            customer_phone=_clean(hold.customer_phone),
                            details=hold.details,
                            expires_at=now + hold.hold_for,
                            created_at=now,
                            updated_at=now,
                        )
                        .returning(*bookings.c)
                    )
                ).one()
                return _booking(row)
        except IntegrityError:
            # the backstop: the exact-start index (only another process's insert of the very
            # same slot, had the lock above been bypassed), or the reference's uniqueness
            if await _reference_taken(db, reference):
                continue
            return None
    return None


_BOOKING_LOCK_SPACE = 0x424B  # "BK": store.db.lock_until_commit's space for (tenant, resource)


def _same_hold(existing: Booking, hold: SlotHold) -> bool:
    return (
        hold.call_sid is not None
        and existing.call_sid == hold.call_sid
        and existing.status == BOOKING_PENDING
        and existing.starts_at == hold.starts_at
        and existing.ends_at == hold.ends_at
    )


async def _reference_taken(db: Database, reference: str) -> bool:
    async with db.session() as conn:
        q = sa.select(bookings.c.id).where(bookings.c.reference == reference)
        return (await conn.execute(q)).first() is not None


async def hold_order(
    db: Database,
    *,
    tenant: str,
    details: dict[str, Any],
    hold_for: timedelta,
    call_sid: str | None = None,
    customer_name: str | None = None,
    customer_phone: str | None = None,
    wanted_at: datetime | None = None,
    now: datetime | None = None,
) -> Booking:
    """An order held `pending` (confirmed at the call's end, like a slot)."""
    now = now or utcnow()
    for _ in range(3):
        try:
            async with db.begin() as conn:
                row = (
                    await conn.execute(
                        sa.insert(bookings)
                        .values(
                            tenant=tenant,
                            reference=new_reference(),
                            kind="order",
                            resource="",
                            starts_at=wanted_at,
                            status=BOOKING_PENDING,
                            call_sid=call_sid,
                            customer_name=_clean(customer_name),
                            customer_phone=_clean(customer_phone),
                            details=details,
                            expires_at=now + hold_for,
                            created_at=now,
                            updated_at=now,
                        )
                        .returning(*bookings.c)
                    )
                ).one()
                return _booking(row)
        except IntegrityError:
            continue  # only the reference can collide
    raise RuntimeError("could not find a free booking reference")


@dataclass(frozen=True, slots=True)
class Taken:
    """The live slot bookings between two times, by resource: which slots they block."""

    spans: dict[str, list[tuple[datetime, datetime, str | None]]]  # start, end, call

    def blocks(
        self, resource: str, start: datetime, end: datetime, *, mine: str | None = None
    ) -> bool:
        """Whether a booking of `resource` overlaps [start, end); `mine`: a call whose own
        hold of exactly this slot does not count (hold_slot gives it back to that call)."""
        return any(
            s < end and e > start and not (mine is not None and (s, e, c) == (start, end, mine))
            for s, e, c in self.spans.get(resource, ())
        )


async def taken_slots(
    db: Database, tenant: str, start: datetime, end: datetime, *, now: datetime | None = None
) -> Taken:
    """Every live slot booking overlapping `start`..`end`."""
    now = now or utcnow()
    b = bookings.c
    q = sa.select(b.resource, b.starts_at, b.ends_at, b.call_sid).where(
        b.tenant == tenant, overlapping(start, end), live_at(now)
    )
    spans: dict[str, list[tuple[datetime, datetime, str | None]]] = {}
    async with db.session() as conn:
        for r in (await conn.execute(q)).all():
            span = (r.starts_at, r.ends_at or r.starts_at, r.call_sid)
            spans.setdefault(r.resource, []).append(span)
    return Taken(spans)


async def confirm_call(
    db: Database,
    call_sid: str,
    *,
    references: list[str] | None = None,
    now: datetime | None = None,
) -> int:
    """The call ended: its pending holds become confirmed (a hold another caller already
    replaced after it ran out stays expired); `references`: only those (the ones the caller
    was told of). Returns how many were confirmed."""
    now = now or utcnow()
    where = [bookings.c.call_sid == call_sid, bookings.c.status == BOOKING_PENDING]
    if references is not None:
        where.append(bookings.c.reference.in_(references))
    async with db.begin() as conn:
        result = await conn.execute(
            sa.update(bookings)
            .where(*where)
            .values(status=BOOKING_CONFIRMED, expires_at=None, updated_at=now)
        )
    return int(result.rowcount or 0)


async def settle_call(
    db: Database, call_sid: str, *, told: list[str], now: datetime | None = None
) -> tuple[int, int]:
    """The call ended: the holds whose answer reached the caller (`told`) are confirmed, its
    other pending holds released (marked expired: their answer was lost, so nobody expects
    them). Returns (confirmed, released)."""
    now = now or utcnow()
    confirmed = await confirm_call(db, call_sid, references=told, now=now) if told else 0
    return confirmed, await release_calls(db, [call_sid], now=now)


async def release_calls(db: Database, call_sids: list[str], *, now: datetime | None = None) -> int:
    """Release every pending hold of these calls (ended, or lost with their process)."""
    if not call_sids:
        return 0
    now = now or utcnow()
    async with db.begin() as conn:
        result = await conn.execute(
            sa.update(bookings)
            .where(bookings.c.call_sid.in_(call_sids), bookings.c.status == BOOKING_PENDING)
            .values(status=BOOKING_EXPIRED, expires_at=now, updated_at=now)
        )
    return int(result.rowcount or 0)


async def list_bookings(
    db: Database,
    tenant: str | None,
    *,
    since: datetime | None = None,
    status: str | None = None,
    limit: int = 100,
) -> list[Booking]:
    """Newest start first (orders without a time by when they were made); `tenant` None: all."""
    q = sa.select(bookings)
    if tenant is not None:
        q = q.where(bookings.c.tenant == tenant)
    if since is not None:
        q = q.where(sa.or_(bookings.c.starts_at >= since, bookings.c.starts_at.is_(None)))
    if status is not None:
        q = q.where(status_is(status, utcnow()))
    q = q.order_by(
        sa.func.coalesce(bookings.c.starts_at, bookings.c.created_at).desc(), bookings.c.id.desc()
    ).limit(max(1, min(limit, MAX_LIST)))
    async with db.session() as conn:
        return [_booking(r) for r in (await conn.execute(q)).all()]


async def find_bookings(
    db: Database,
    tenant: str,
    *,
    reference: str | None = None,
    phone: str | None = None,
    name: str | None = None,
    limit: int = 5,
) -> list[Booking]:
    """Earlier orders and bookings matching every one given of reference, phone (last 10
    digits) and name. (Who may ask for what is the tool's rule: tools/functions.py.)"""
    conds = []
    if reference:
        conds.append(bookings.c.reference == reference.upper())
    if phone:
        digits = "".join(c for c in phone if c.isdigit())[-10:]
        if len(digits) >= 6:
            conds.append(bookings.c.customer_phone.like(f"%{digits}"))
    if name:
        conds.append(sa.func.lower(bookings.c.customer_name) == name.strip().lower())
    if not conds:
        return []
    q = (
        sa.select(bookings)
        .where(bookings.c.tenant == tenant, *conds)
        .order_by(bookings.c.created_at.desc(), bookings.c.id.desc())
        .limit(limit)
    )
    async with db.session() as conn:
        return [_booking(r) for r in (await conn.execute(q)).all()]


# --- the calendar feed's token ---------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def new_feed_token(db: Database, tenant: str) -> str:
    """A new secret for the tenant's calendar URL (the old one stops working)."""
    token = secrets.token_urlsafe(32)
    async with db.begin() as conn:
        await conn.execute(sa.delete(calendar_feeds).where(calendar_feeds.c.tenant == tenant))
        await conn.execute(
            sa.insert(calendar_feeds).values(tenant=tenant, token_hash=_token_hash(token))
        )
    return token


async def feed_token_ok(db: Database, tenant: str, token: str) -> bool:
    if not token or len(token) > 100:
        return False
    async with db.session() as conn:
        stored = (
            await conn.execute(
                sa.select(calendar_feeds.c.token_hash).where(calendar_feeds.c.tenant == tenant)
            )
        ).scalar_one_or_none()
    return stored is not None and hmac.compare_digest(stored, _token_hash(token))
