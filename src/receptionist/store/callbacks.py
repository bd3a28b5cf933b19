"""AI callbacks: one row per (call, reason) under a unique key, so a call is called back at most
once for one reason, whoever asks (the CLI, the API, the dashboard, a call-type rule) and however
often; the row then follows the new call (placed, answered, no answer, failed)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from receptionist.store.db import Database, upsert_insert
from receptionist.store.schema import callbacks, utcnow

__all__ = [
    "Callback",
    "callback_by_token",
    "callback_key",
    "callbacks_for_call",
    "claim_callback",
    "recent_callbacks_to",
    "settle_by_exotel_sid",
    "update_callback",
]

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
    )


async def claim_callback(
    db: Database, *, tenant: str, call_sid: str, reason: str, to_number: str, token: str
) -> bool:
    """Take the (call, reason) key; False when it was taken before (never twice for a reason)."""
    now = utcnow()
    stmt = (
        upsert_insert(db.dialect, callbacks)
        .values(
            key=callback_key(call_sid, reason),
            token=token,
            tenant=tenant,
            call_sid=call_sid,
            reason=reason,
            to_number=to_number,
            status="placing",
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["key"])
    )
    async with db.begin() as conn:
        result = await conn.execute(stmt)
    return bool(result.rowcount)


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
    """How many callbacks this tenant placed (or tried) to this number since ``since``."""
    c = callbacks.c
    stmt = sa.select(sa.func.count()).where(
        c.tenant == tenant,
        c.to_number == to_number,
        c.created_at >= since,
        c.status.in_(PLACED_STATUSES),
    )
    async with db.session() as conn:
        return int((await conn.execute(stmt)).scalar_one())


async def callback_by_token(db: Database, token: str) -> Callback | None:
    async with db.session() as conn:
        row = (await conn.execute(sa.select(callbacks).where(callbacks.c.token == token))).first()
    return None if row is None else _row(row)


async def callbacks_for_call(db: Database, call_sid: str) -> list[Callback]:
    stmt = sa.select(callbacks).where(callbacks.c.call_sid == call_sid).order_by(callbacks.c.id)
    async with db.session() as conn:
        return [_row(r) for r in (await conn.execute(stmt)).all()]
