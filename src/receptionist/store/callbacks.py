"""AI callbacks: one row per (call, reason) under a unique key, so a call is called back at most
once for one reason, whoever asks (the CLI, the API, the dashboard, a call-type rule) and however
often; the row then follows the new call (placed, answered, no answer, failed).

The per-number daily limit is counted and the row claimed in ONE write transaction, serialised
per (tenant, number): SQLite's write lock is taken at BEGIN (Database.begin), PostgreSQL takes a
transaction-scoped advisory lock on a hash of the pair (a count cannot be locked FOR UPDATE), so
two requests at the limit never both pass it. A rule's callback outside the tenant's hours is
claimed `scheduled` with a `due_at`; the worker starts it when due (:func:`start_scheduled`),
counting the limit again at that moment in the same way."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from receptionist.store.db import Database, lock_until_commit, upsert_insert
from receptionist.store.schema import callbacks, utcnow

__all__ = [
    "Callback",
    "callback_by_token",
    "callback_key",
    "callbacks_for_call",
    "claim_callback",
    "due_callbacks",
    "recent_callbacks_to",
    "reschedule_callback",
    "settle_by_exotel_sid",
    "start_scheduled",
    "update_callback",
]

SCHEDULED = "scheduled"
# statuses that count against a number's daily limit: every call we placed or tried to place
PLACED_STATUSES = ("placing", "placed", "answered", "no_answer", "failed")


def callback_key(call_sid: str, reason: str) -> str:
    return f"callback:{call_sid}:{reason}"


@dataclass(frozen=True, slots=True)
class Callback:
    key: str
    token: str
    tenant: str
    call_sid: str
    reason: str
    to_number: str
    status: str
    exotel_sid: str | None
    error: str | None
    created_at: datetime
    due_at: datetime | None = None  # a scheduled callback's dialling time
    account_sid: str | None = None  # the Exotel account its call was placed through


def _row(row: Any) -> Callback:
    return Callback(
        row.key,
        row.token,
        row.tenant,
        row.call_sid,
        row.reason,
        row.to_number,
        row.status,
        row.exotel_sid,
        row.error,
        row.created_at,
        row.due_at,
        row.account_sid,
    )


_CALLBACK_LOCK_SPACE = 0x4342  # "CB": store.db.lock_until_commit's space for (tenant, number)


async def _count(
    conn: AsyncConnection,
    tenant: str,
    number: str,
    since: datetime,
    *,
    statuses: tuple[str, ...],
    other_than: str | None = None,
) -> int:
    # a scheduled callback counts at its due time (when it is dialled), any other when made
    c = callbacks.c
    stmt = sa.select(sa.func.count()).where(
        c.tenant == tenant,
        c.to_number == number,
        sa.func.coalesce(c.due_at, c.created_at) >= since,
        c.status.in_(statuses),
    )
    if other_than is not None:
        stmt = stmt.where(c.key != other_than)
    return int((await conn.execute(stmt)).scalar_one())


async def claim_callback(
    db: Database,
    *,
    tenant: str,
    call_sid: str,
    reason: str,
    to_number: str,
    token: str,
    limit: int,
    since: datetime,
    account_sid: str | None = None,
    due_at: datetime | None = None,
) -> str:
    """Take the (call, reason) key if the number is under its daily ``limit`` (callbacks made,
    tried or scheduled since ``since``), in one transaction. ``due_at``: claim it `scheduled`
    for then. Returns "claimed", "already" (the key was taken before: never twice for a
    reason) or "rate_limited"."""
    now = utcnow()
    key = callback_key(call_sid, reason)
    async with db.begin() as conn:
        await lock_until_commit(conn, _CALLBACK_LOCK_SPACE, tenant, to_number)
        taken = await conn.execute(sa.select(callbacks.c.id).where(callbacks.c.key == key))
        if taken.first() is not None:
            return "already"
        counted = (*PLACED_STATUSES, SCHEDULED)
        if await _count(conn, tenant, to_number, since, statuses=counted) >= limit:
            return "rate_limited"
        stmt = (
            upsert_insert(db.dialect, callbacks)
            .values(
                key=key,
                token=token,
                tenant=tenant,
                call_sid=call_sid,
                reason=reason,
                to_number=to_number,
                status="placing" if due_at is None else SCHEDULED,
                due_at=due_at,
                account_sid=account_sid,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["key"])
        )
        result = await conn.execute(stmt)
    return "claimed" if result.rowcount else "already"


async def due_callbacks(db: Database, now: datetime, *, limit: int = 50) -> list[Callback]:
    """Scheduled callbacks whose time has come, the oldest first."""
    c = callbacks.c
    stmt = (
        sa.select(callbacks)
        .where(c.status == SCHEDULED, c.due_at <= now)
        .order_by(c.due_at, c.id)
        .limit(limit)
    )
    async with db.session() as conn:
        return [_row(r) for r in (await conn.execute(stmt)).all()]


async def start_scheduled(
    db: Database,
    row: Callback,
    *,
    limit: int,
    now: datetime,
    since: datetime,
    account_sid: str | None,
) -> str:
    """Move a due `scheduled` callback to `placing` (the caller then dials it), counting the
    number's daily limit again in the same transaction. Returns "go", "rate_limited" (the row
    says so and is never dialled) or "gone" (another worker took it, or it is no longer due)."""
    c = callbacks.c
    async with db.begin() as conn:
        await lock_until_commit(conn, _CALLBACK_LOCK_SPACE, row.tenant, row.to_number)
        current = await conn.execute(
            sa.select(c.status).where(c.key == row.key, c.status == SCHEDULED, c.due_at <= now)
        )
        if current.first() is None:
            return "gone"
        made = await _count(
            conn, row.tenant, row.to_number, since, statuses=PLACED_STATUSES, other_than=row.key
        )
        if made >= limit:
            await conn.execute(
                sa.update(callbacks)
                .where(c.key == row.key)
                .values(
                    status="rate_limited",
                    error=f"{made} callback(s) to the number in the last 24 hours",
                    updated_at=now,
                )
            )
            return "rate_limited"
        await conn.execute(
            sa.update(callbacks)
            .where(c.key == row.key)
            .values(status="placing", account_sid=account_sid, updated_at=now)
        )
    return "go"


async def update_callback(
    db: Database,
    key: str,
    status: str,
    *,
    exotel_sid: str | None = None,
    error: str | None = None,
) -> None:
    values: dict[str, Any] = {"status": status, "updated_at": utcnow()}
    if exotel_sid is not None:
        values["exotel_sid"] = exotel_sid
    if error is not None:
        values["error"] = error[:300]
    async with db.begin() as conn:
        await conn.execute(sa.update(callbacks).where(callbacks.c.key == key).values(**values))


async def reschedule_callback(db: Database, key: str, due_at: datetime) -> None:
    """A scheduled callback whose business closed again before it was dialled: a later time."""
    c = callbacks.c
    async with db.begin() as conn:
        await conn.execute(
            sa.update(callbacks)
            .where(c.key == key, c.status == SCHEDULED)
            .values(due_at=due_at, updated_at=utcnow())
        )


async def settle_by_exotel_sid(db: Database, exotel_sid: str, status: str, error: str) -> bool:
    """Exotel's StatusCallback for a callback's call: record how it ended, unless the bridge
    already marked it answered. False: no callback placed that call."""
    c = callbacks.c
    stmt = (
        sa.update(callbacks)
        .where(c.exotel_sid == exotel_sid, c.status.in_(("placing", "placed")))
        .values(status=status, error=error[:300], updated_at=utcnow())
    )
    async with db.begin() as conn:
        result = await conn.execute(stmt)
        if result.rowcount:
            return True
        known = await conn.execute(sa.select(c.id).where(c.exotel_sid == exotel_sid))
        return known.first() is not None


async def recent_callbacks_to(db: Database, tenant: str, to_number: str, since: datetime) -> int:
    """How many callbacks this tenant placed, tried or scheduled to this number since ``since``."""
    async with db.session() as conn:
        return await _count(conn, tenant, to_number, since, statuses=(*PLACED_STATUSES, SCHEDULED))


async def callback_by_token(db: Database, token: str) -> Callback | None:
    async with db.session() as conn:
        row = (await conn.execute(sa.select(callbacks).where(callbacks.c.token == token))).first()
    return None if row is None else _row(row)


async def callbacks_for_call(db: Database, call_sid: str) -> list[Callback]:
    stmt = sa.select(callbacks).where(callbacks.c.call_sid == call_sid).order_by(callbacks.c.id)
    async with db.session() as conn:
        return [_row(r) for r in (await conn.execute(stmt)).all()]
