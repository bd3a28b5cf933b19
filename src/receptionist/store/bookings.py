"""Bookings made during calls: hold a slot or an order (`pending`), confirm at the call's end,
expire holds nobody confirmed, find them again; and the owner's calendar feed tokens.

Why a hold cannot collide: the partial unique index `uq_bookings_active_slot` (schema.py) admits
one pending-or-confirmed row per tenant, resource and start. `hold_slot` first marks a stale
pending row of that slot `expired` (its hold ran out), then inserts; a concurrent insert of the
same slot fails on the index in the database itself (PostgreSQL waits for the other transaction,
SQLite serialises writers), so exactly one attempt wins whatever the interleaving.
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

from receptionist.store.db import Database
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


def effective_status(status: str, expires_at: datetime | None, now: datetime) -> str:
    """A pending hold that ran out is expired, whether or not its row was marked so yet (rows
    are marked lazily, by the next attempt at the same slot)."""
    if status == BOOKING_PENDING and expires_at is not None and expires_at <= now:
        return BOOKING_EXPIRED
    return status


def _booking(row: Any) -> Booking:
    m = row._mapping
    return Booking(**{name: m[name] for name in Booking.__slots__})


def _active_at(now: datetime) -> Any:
    """Rows that hold their slot at `now`: confirmed, or pending and not yet expired."""
    return sa.or_(
        bookings.c.status == BOOKING_CONFIRMED,
        sa.and_(bookings.c.status == BOOKING_PENDING, bookings.c.expires_at > now),
    )


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
    """Hold the slot as `pending` until `now + hold_for`; None: someone else holds it."""
    now = now or utcnow()
    for _ in range(3):  # a reference collision is retried; a slot collision is an answer
        reference = new_reference()
        try:
            async with db.begin() as conn:
                # a hold that ran out frees its slot: mark it so the index admits a new one
                await conn.execute(
                    sa.update(bookings)
                    .where(
                        bookings.c.tenant == hold.tenant,
                        bookings.c.resource == hold.resource,
                        bookings.c.starts_at == hold.starts_at,
                        bookings.c.kind == "slot",
                        bookings.c.status == BOOKING_PENDING,
                        bookings.c.expires_at <= now,
                    )
                    .values(status=BOOKING_EXPIRED, updated_at=now)
                )
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
            if await _reference_taken(db, reference):
                continue
            return None
    return None


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


async def taken_slots(
    db: Database, tenant: str, start: datetime, end: datetime, *, now: datetime | None = None
) -> set[tuple[str, datetime]]:
    """(resource, start) of every slot held between `start` and `end`."""
    now = now or utcnow()
    q = sa.select(bookings.c.resource, bookings.c.starts_at).where(
        bookings.c.tenant == tenant,
        bookings.c.kind == "slot",
        bookings.c.starts_at >= start,
        bookings.c.starts_at < end,
        _active_at(now),
    )
    async with db.session() as conn:
        return {(r.resource, r.starts_at) for r in (await conn.execute(q)).all()}


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
        q = q.where(bookings.c.status == status)
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
