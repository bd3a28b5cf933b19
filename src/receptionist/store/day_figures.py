"""One tenant's calls over one stretch of time, counted for the owner's daily digest
(notify/digest.py): how many, by type, not answered, failed, complaints, and their AI cost."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa

from receptionist.store.db import Database
from receptionist.store.schema import (
    CALL_STATUS_FAILED,
    CALL_STATUS_REJECTED,
    ai_token_usage,
    call_details,
    notifications,
)

__all__ = ["DayFigures", "day_figures", "notification_exists"]


@dataclass(frozen=True, slots=True)
class DayFigures:
    calls: int
    by_type: dict[str, int]  # call type -> calls, most first (untyped calls left out)
    missed: int  # refused, or over before anyone answered
    failed: int
    complaints: int  # calls of a type whose name says complaint
    cost_usd: Decimal


async def day_figures(db: Database, tenant: str, start: datetime, end: datetime) -> DayFigures:
    """Calls of `tenant` that started in [start, end)."""
    c = call_details.c
    in_range = sa.and_(c.tenant == tenant, c.started_at >= start, c.started_at < end)
    missed = sa.or_(c.status == CALL_STATUS_REJECTED, c.answered_at.is_(None))
    counts = sa.select(
        sa.func.count(),
        sa.func.count().filter(missed),
        sa.func.count().filter(c.status == CALL_STATUS_FAILED),
        sa.func.count().filter(sa.func.lower(c.call_type).contains("complaint")),
    ).where(in_range)
    types = (
        sa.select(c.call_type, sa.func.count().label("n"))
        .where(in_range, c.call_type.is_not(None))
        .group_by(c.call_type)
        .order_by(sa.desc("n"), c.call_type)
    )
    u = ai_token_usage.c
    cost = sa.select(sa.func.coalesce(sa.func.sum(u.total_cost), 0)).where(
        u.call_sid.in_(sa.select(c.call_sid).where(in_range))
    )
    async with db.session() as conn:
        total, not_answered, failed, complaints = (await conn.execute(counts)).one()
        by_type = {row.call_type: int(row.n) for row in await conn.execute(types)}
        spent = (await conn.execute(cost)).scalar_one()
    return DayFigures(
        calls=int(total),
        by_type=by_type,
        missed=int(not_answered),
        failed=int(failed),
        complaints=int(complaints),
        cost_usd=Decimal(str(spent or 0)),
    )


async def notification_exists(db: Database, idempotency_key: str) -> bool:
    async with db.session() as conn:
        found = await conn.execute(
            sa.select(notifications.c.id).where(notifications.c.idempotency_key == idempotency_key)
        )
        return found.first() is not None
