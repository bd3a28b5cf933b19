"""The costing step of the post-call pipeline, monthly spend, and a table for the terminal.

:func:`cost_call` prices every ``ai_token_usage`` row of a call that has no cost yet
(``total_cost IS NULL``), writing ``total_cost`` (rounded half-up to 6 places), ``currency`` and,
under ``details["pricing"]``, the price entry used (``version`` = ``"<model>@<valid_from>"``, its
source and rates, the table's digest) and how the tokens were charged (the remainder rule of
:mod:`receptionist.postcall.pricing`). Rows already costed are left alone, so a re-run changes
nothing. Every row is priced before anything is written: one unknown model raises
:class:`~receptionist.postcall.pricing.UnknownModelPrice` and leaves the call untouched.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

from rich.table import Table

from receptionist.postcall.pricing import (
    PricingTable,
    UnknownModelPrice,
    cost_breakdown,
    round_cost,
    usd_to_inr,
)
from receptionist.store.db import Database
from receptionist.store.usage import (
    SpendRow,
    UsageRow,
    call_started_on,
    month_range,
    set_usage_cost,
    spend_by_tenant_model,
    tenant_spend_total,
    usage_rows,
)

CURRENCY = "USD"


@dataclass(frozen=True, slots=True)
class CostLine:
    """The cost of one usage row (one model, one purpose) of a call."""

    model_name: str
    purpose: str
    input_tokens: int
    output_tokens: int
    cost: Decimal  # 6 decimal places, USD
    currency: str
    price_version: str | None  # None when costed earlier without a recorded version
    newly_costed: bool  # False: the row already had its cost


@dataclass(frozen=True, slots=True)
class CallCost:
    """All costs of one call: one line per usage row, and their total."""

    call_sid: str
    priced_on: date
    lines: tuple[CostLine, ...] = ()
    currency: str = CURRENCY
    total: Decimal = field(default_factory=lambda: Decimal("0.000000"))

    @property
    def by_model(self) -> dict[str, Decimal]:
        """Cost per model name (its purposes added up)."""
        out: dict[str, Decimal] = {}
        for line in self.lines:
            out[line.model_name] = out.get(line.model_name, Decimal("0.000000")) + line.cost
        return out

    @property
    def newly_costed(self) -> int:
        return sum(1 for line in self.lines if line.newly_costed)


async def cost_call(
    db: Database, call_sid: str, table: PricingTable, *, on: date | None = None
) -> CallCost:
    """Cost every not-yet-costed usage row of ``call_sid`` (idempotent; see the module doc).

    Prices are those valid on ``on``; by default the UTC day the call started (the day the tokens
    were spent), else the day the usage row was written, else today.
    """
    async with db.begin() as conn:
        rows = await usage_rows(conn, call_sid, lock=True)
        day = on or await call_started_on(conn, call_sid)
        if day is None:
            created = [r.created_at for r in rows if r.created_at is not None]
            day = min(created).astimezone(UTC).date() if created else datetime.now(UTC).date()

        # price everything first: an unknown model must leave the call untouched
        planned = []
        for row in rows:
            if row.total_cost is not None:
                continue
            price = table.price_for(row.usage.model_name, day)
            if price.currency != CURRENCY:  # pragma: no cover - the loader only accepts USD
                raise ValueError(f"price {price.version} is in {price.currency}, not {CURRENCY}")
            breakdown = cost_breakdown(row.usage, price)
            planned.append((row, price, breakdown))

        written: dict[int, tuple[Decimal, str]] = {}
        for row, price, breakdown in planned:
            cost = round_cost(breakdown.total)
            pricing_info = {
                **price.describe(),
                "table": table.digest,
                "priced_on": day.isoformat(),
                "exact_cost": str(breakdown.total),
                **breakdown.describe(),
            }
            details = {**(row.usage.details or {}), "pricing": pricing_info}
            if await set_usage_cost(conn, row.id, cost=cost, currency=CURRENCY, details=details):
                written[row.id] = (cost, price.version)

    # rows costed concurrently by someone else (not in `written`) are read back as they are
    if len(written) != len(planned):
        async with db.session() as conn:
            rows = await usage_rows(conn, call_sid)

    lines = []
    for row in rows:
        if row.id in written:
            cost, new_version = written[row.id]
            lines.append(_line(row, cost, CURRENCY, new_version, newly=True))
        elif row.total_cost is not None:
            pricing = (row.usage.details or {}).get("pricing") or {}
            version = pricing.get("version") if isinstance(pricing, dict) else None
            lines.append(_line(row, row.total_cost, row.currency or CURRENCY, version, newly=False))
        else:  # pragma: no cover - lost a race and the other writer left it NULL
            raise RuntimeError(f"usage row {row.id} of call {call_sid} could not be costed")
    total = sum((line.cost for line in lines), start=Decimal("0.000000"))
    return CallCost(call_sid=call_sid, priced_on=day, lines=tuple(lines), total=total)


def _line(
    row: UsageRow, cost: Decimal, currency: str, version: str | None, *, newly: bool
) -> CostLine:
    return CostLine(
        model_name=row.usage.model_name,
        purpose=row.usage.purpose,
        input_tokens=row.usage.input_tokens,
        output_tokens=row.usage.output_tokens,
        cost=cost,
        currency=currency,
        price_version=version,
        newly_costed=newly,
    )


async def monthly_spend(db: Database, *, tenant: str | None, month: str) -> list[SpendRow]:
    """Spend per (tenant, model) in calendar month ``"YYYY-MM"`` (UTC); all tenants if None.

    ``calls`` counts distinct calls; ``cost_usd`` sums costed rows only (``uncosted_rows`` says
    how many rows of the month still wait for :func:`cost_call`).
    """
    start, end = month_range(month)
    return await spend_by_tenant_model(db, start=start, end=end, tenant=tenant)


async def tenant_month_total(db: Database, tenant: str, month: str) -> Decimal:
    """The USD total of one tenant's costed usage in month ``"YYYY-MM"`` (UTC)."""
    start, end = month_range(month)
    return await tenant_spend_total(db, tenant, start=start, end=end)


def costs_table(rows: Iterable[SpendRow], inr_rate: Decimal, *, title: str | None = None) -> Table:
    """A rich table of spend rows with USD and INR columns and a total line."""
    table = Table(title=title, show_footer=True)
    items = list(rows)
    total_usd = sum((r.cost_usd for r in items), start=Decimal("0.000000"))
    total_calls = sum(r.calls for r in items)
    total_in = sum(r.input_tokens for r in items)
    total_out = sum(r.output_tokens for r in items)
    uncosted = sum(r.uncosted_rows for r in items)
    table.add_column("Tenant", footer="Total")
    table.add_column("Model", overflow="fold")
    table.add_column("Calls", justify="right", footer=f"{total_calls:,}")
    table.add_column("Input tokens", justify="right", footer=f"{total_in:,}")
    table.add_column("Output tokens", justify="right", footer=f"{total_out:,}")
    table.add_column("Cost (USD)", justify="right", footer=_usd(total_usd))
    table.add_column(
        f"Cost (INR @ {inr_rate})", justify="right", footer=_inr(usd_to_inr(total_usd, inr_rate))
    )
    for r in items:
        table.add_row(
            r.tenant or "(unknown)",
            r.model,
            f"{r.calls:,}",
            f"{r.input_tokens:,}",
            f"{r.output_tokens:,}",
            _usd(r.cost_usd) + (" *" if r.uncosted_rows else ""),
            _inr(usd_to_inr(r.cost_usd, inr_rate)),
        )
    if uncosted:
        table.caption = f"* {uncosted} usage row(s) not costed yet and not included"
    return table


def _usd(amount: Decimal) -> str:
    return f"${amount:,.4f}"


def _inr(amount: Decimal) -> str:
    return f"₹{amount:,.2f}"


__all__ = [
    "CallCost",
    "CostLine",
    "SpendRow",
    "UnknownModelPrice",
    "cost_call",
    "costs_table",
    "monthly_spend",
    "tenant_month_total",
]
