"""Queries on ``ai_token_usage``: the rows of one call for costing, and spend by month.

Costs are stored in ``total_cost`` (NUMERIC(12, 6), NULL = not costed yet) with ``currency``;
the arithmetic lives in :mod:`receptionist.postcall.pricing`, the orchestration in
:mod:`receptionist.postcall.costs`. Functions taking an ``AsyncConnection`` run inside the
caller's transaction; the others take a :class:`~receptionist.store.db.Database`.

Time basis for months: the call's ``started_at`` (UTC) when the call is recorded, otherwise the
usage row's ``created_at``. Months are calendar months in UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from receptionist.store.db import Database
from receptionist.store.schema import UTCDateTime, ai_token_usage, call_details
from receptionist.usage import TokenUsage

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_Q6 = Decimal("0.000001")


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One ``ai_token_usage`` row: whose tokens, the tokens, and their cost once costed."""

    id: int
    call_sid: str
    tenant: str | None
    usage: TokenUsage  # model, purpose, figures and details
    total_cost: Decimal | None
    currency: str | None
    created_at: datetime | None


@dataclass(frozen=True, slots=True)
class SpendRow:
    """Spend of one tenant on one model in a month."""

    tenant: str | None
    model: str
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    #: usage rows of the month not costed yet: ``cost_usd`` leaves them out
    uncosted_rows: int = 0


def to_decimal(value: Any) -> Decimal:
    """A NUMERIC value from either backend (SQLite may hand back a float) as a 6-place Decimal."""
    if value is None:
        return Decimal("0.000000")
    dec = value if isinstance(value, Decimal) else Decimal(str(value))
    return dec.quantize(_Q6)


def month_range(month: str) -> tuple[datetime, datetime]:
    """``"YYYY-MM"`` → [first instant of the month, first instant of the next) in UTC."""
    m = _MONTH.match(month.strip()) if isinstance(month, str) else None
    if m is None:
        raise ValueError(f"month must look like YYYY-MM, got {month!r}")
    year, mon = int(m.group(1)), int(m.group(2))
    if not 1 <= mon <= 12 or year < 1:
        raise ValueError(f"no such month: {month!r}")
    start = datetime(year, mon, 1, tzinfo=UTC)
    end = datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=UTC)
    return start, end


# --- one call -----------------------------------------------------------------------------------


async def call_started_on(conn: AsyncConnection, call_sid: str) -> date | None:
    """The UTC calendar day the call started, or None when the call (or its start) is unknown."""
    c = call_details.c
    started = (
        await conn.execute(sa.select(c.started_at).where(c.call_sid == call_sid))
    ).scalar_one_or_none()
    return started.astimezone(UTC).date() if started is not None else None


async def usage_rows(conn: AsyncConnection, call_sid: str, *, lock: bool = False) -> list[UsageRow]:
    """The call's usage rows, oldest first; ``lock=True`` takes row locks (PostgreSQL)."""
    t = ai_token_usage.c
    stmt = sa.select(ai_token_usage).where(t.call_sid == call_sid).order_by(t.id)
    if lock:
        stmt = stmt.with_for_update()
    rows = (await conn.execute(stmt)).mappings().all()
    return [
        UsageRow(
            id=r["id"],
            call_sid=r["call_sid"],
            tenant=r["tenant"],
            usage=TokenUsage.from_row(r),
            total_cost=to_decimal(r["total_cost"]) if r["total_cost"] is not None else None,
            currency=r["currency"],
            created_at=r["created_at"],
        )
        for r in rows
    ]


async def set_usage_cost(
    conn: AsyncConnection,
    row_id: int,
    *,
    cost: Decimal,
    currency: str,
    details: dict[str, Any] | None,
) -> bool:
    """Fill the cost of one row, only if it has none yet. Returns whether the row was updated."""
    t = ai_token_usage.c
    result = await conn.execute(
        sa.update(ai_token_usage)
        .where(t.id == row_id, t.total_cost.is_(None))
        .values(total_cost=cost, currency=currency, details=details)
    )
    return bool(result.rowcount)


# --- spend --------------------------------------------------------------------------------------


def _spend_source() -> tuple[Any, Any, Any]:
    """(FROM clause, tenant expression, time expression) shared by the spend queries."""
    u = ai_token_usage
    c = call_details
    source = u.outerjoin(c, c.c.call_sid == u.c.call_sid)
    tenant = sa.func.coalesce(u.c.tenant, c.c.tenant)
    when = sa.func.coalesce(c.c.started_at, u.c.created_at, type_=UTCDateTime())
    return source, tenant, when


def _in_range(when: Any, start: datetime, end: datetime) -> Any:
    return sa.and_(
        when >= sa.bindparam(None, start, type_=UTCDateTime()),
        when < sa.bindparam(None, end, type_=UTCDateTime()),
    )


async def spend_by_tenant_model(
    db: Database, *, start: datetime, end: datetime, tenant: str | None = None
) -> list[SpendRow]:
    """Spend per (tenant, model) of usage in [start, end), optionally of one tenant.

    Ordered by tenant (unknown tenant last), then model.
    """
    u = ai_token_usage.c
    source, tenant_expr, when = _spend_source()
    tenant_col = tenant_expr.label("tenant")
    stmt = (
        sa.select(
            tenant_col,
            u.model_name,
            sa.func.count(sa.distinct(u.call_sid)).label("calls"),
            sa.func.coalesce(sa.func.sum(u.input_tokens), 0).label("input_tokens"),
            sa.func.coalesce(sa.func.sum(u.output_tokens), 0).label("output_tokens"),
            sa.func.sum(u.total_cost).label("cost"),
            sa.func.sum(sa.case((u.total_cost.is_(None), 1), else_=0)).label("uncosted"),
        )
        .select_from(source)
        .where(_in_range(when, start, end))
        .group_by(tenant_expr, u.model_name)
        .order_by(tenant_expr.is_(None), tenant_expr, u.model_name)
    )
    if tenant is not None:
        stmt = stmt.where(tenant_expr == tenant)
    async with db.session() as conn:
        rows = (await conn.execute(stmt)).mappings().all()
    return [
        SpendRow(
            tenant=r["tenant"],
            model=r["model_name"],
            calls=int(r["calls"]),
            input_tokens=int(r["input_tokens"]),
            output_tokens=int(r["output_tokens"]),
            cost_usd=to_decimal(r["cost"]),
            uncosted_rows=int(r["uncosted"] or 0),
        )
        for r in rows
    ]


async def tenant_spend_total(
    db: Database, tenant: str, *, start: datetime, end: datetime
) -> Decimal:
    """Total cost of one tenant's costed usage in [start, end)."""
    u = ai_token_usage.c
    source, tenant_expr, when = _spend_source()
    stmt = (
        sa.select(sa.func.sum(u.total_cost))
        .select_from(source)
        .where(_in_range(when, start, end), tenant_expr == tenant)
    )
    async with db.session() as conn:
        total = (await conn.execute(stmt)).scalar_one_or_none()
    return to_decimal(total)


__all__ = [
    "SpendRow",
    "UsageRow",
    "call_started_on",
    "month_range",
    "set_usage_cost",
    "spend_by_tenant_model",
    "tenant_spend_total",
    "to_decimal",
    "usage_rows",
]
