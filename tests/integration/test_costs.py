"""Costing calls and monthly spend on both backends (SQLite file and a real PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from receptionist.postcall.costs import (
    CallCost,
    cost_call,
    costs_table,
    monthly_spend,
    tenant_month_total,
)
from receptionist.postcall.pricing import (
    PricingTable,
    UnknownModelPrice,
    load_pricing,
    parse_pricing,
)
from receptionist.store.calls import FinishedCall, finish_call, get_call
from receptionist.store.db import Database
from receptionist.store.schema import ai_token_usage
from receptionist.store.usage import SpendRow, month_range
from receptionist.usage import TokenUsage

LIVE = "gemini-2.5-flash-native-audio-preview-09-2025"
ANALYSIS = "gemini-2.5-flash"
IST = timezone(timedelta(hours=5, minutes=30))

TABLE_TOML = """
[[price]]
model = "gemini-2.5-flash*native-audio*"
valid_from = 2025-01-01
currency = "USD"
audio_input = "3.00"
text_input = "0.30"
audio_output = "12.00"
text_output = "1.20"
source = "seed production code, Aug 2025"

[[price]]
model = "gemini-2.5-flash*native-audio*"
valid_from = 2025-09-01
currency = "USD"
audio_input = "2.00"
text_input = "0.50"
audio_output = "8.00"
text_output = "2.00"
source = "test: a later price"

[[price]]
model = "gemini-2.5-flash"
valid_from = 2025-01-01
currency = "USD"
audio_input = "1.00"
text_input = "0.30"
audio_output = "2.50"
text_output = "2.50"
source = "test"
"""


@pytest.fixture
def table() -> PricingTable:
    return parse_pricing(TABLE_TOML, origin="test-prices.toml")


def live_usage(audio_in: int = 1_000_000, audio_out: int = 100_000) -> TokenUsage:
    return TokenUsage(
        model_name=LIVE,
        purpose="live",
        input_tokens=audio_in + 2_000,
        output_tokens=audio_out + 500,
        input_audio_tokens=audio_in,
        input_text_tokens=2_000,
        output_audio_tokens=audio_out,
        output_text_tokens=500,
    )


def analysis_usage() -> TokenUsage:
    # no modality split: charged as text (the purpose's modality)
    return TokenUsage(
        model_name=ANALYSIS, purpose="analysis", input_tokens=4_000, output_tokens=300
    )


async def add_call(
    db: Database,
    call_sid: str,
    *,
    tenant: str | None,
    started_at: datetime,
    usage: list[TokenUsage],
) -> None:
    await finish_call(
        db,
        FinishedCall(
            call_sid=call_sid,
            status="completed",
            tenant=tenant,
            started_at=started_at,
            ended_at=started_at + timedelta(minutes=2),
            usage=usage,
        ),
    )


# live: 1,000,000*3 + 2,000*0.30 + 100,000*12 + 500*1.20 = 4,201,200 per 1M = 4.201200
LIVE_COST = Decimal("4.201200")
# analysis: 4,000*0.30 + 300*2.50 = 1,950 per 1M = 0.001950
ANALYSIS_COST = Decimal("0.001950")


async def test_cost_call_fills_every_row_and_is_idempotent(
    db: Database, table: PricingTable
) -> None:
    started = datetime(2025, 8, 20, 9, 0, tzinfo=UTC)
    await add_call(
        db, "CA1", tenant="bakery", started_at=started, usage=[live_usage(), analysis_usage()]
    )

    result = await cost_call(db, "CA1", table)
    assert isinstance(result, CallCost)
    assert result.priced_on == date(2025, 8, 20)
    assert result.by_model == {LIVE: LIVE_COST, ANALYSIS: ANALYSIS_COST}
    assert result.total == LIVE_COST + ANALYSIS_COST == Decimal("4.203150")
    assert result.newly_costed == 2
    assert {line.price_version for line in result.lines} == {
        "gemini-2.5-flash*native-audio*@2025-01-01",
        "gemini-2.5-flash@2025-01-01",
    }

    call = await get_call(db, "CA1")
    assert call is not None
    rows = {u["model_name"]: u for u in call["usage"]}
    assert rows[LIVE]["total_cost"] == LIVE_COST
    assert rows[ANALYSIS]["total_cost"] == ANALYSIS_COST
    assert {u["currency"] for u in call["usage"]} == {"USD"}
    pricing = rows[LIVE]["details"]["pricing"]
    assert pricing["version"] == "gemini-2.5-flash*native-audio*@2025-01-01"
    assert pricing["source"] == "seed production code, Aug 2025"
    assert pricing["table"] == table.digest
    assert rows[ANALYSIS]["details"]["pricing"]["remainder"]["modality"] == "text"
    assert rows[ANALYSIS]["details"]["pricing"]["remainder"]["input"] == 4_000

    # a second run changes nothing and reports the same figures
    async with db.session() as conn:
        before = (await conn.execute(sa.select(ai_token_usage).order_by("id"))).mappings().all()
    again = await cost_call(db, "CA1", table)
    async with db.session() as conn:
        after = (await conn.execute(sa.select(ai_token_usage).order_by("id"))).mappings().all()
    assert [dict(r) for r in after] == [dict(r) for r in before]
    assert again.total == result.total
    assert again.by_model == result.by_model
    assert again.newly_costed == 0
    assert {line.price_version for line in again.lines} == {
        line.price_version for line in result.lines
    }


async def test_prices_follow_the_call_date_or_the_given_day(
    db: Database, table: PricingTable
) -> None:
    # the call started on 1 Sept UTC: the later price applies
    await add_call(
        db,
        "CA-SEPT",
        tenant="bakery",
        started_at=datetime(2025, 9, 1, 0, 0, 5, tzinfo=UTC),
        usage=[live_usage(1_000_000, 0)],
    )
    cost = await cost_call(db, "CA-SEPT", table)
    # 1,000,000*2 + 2,000*0.50 + 500*2.00 = 2,002,000 per 1M
    assert cost.total == Decimal("2.002000")
    assert cost.lines[0].price_version == "gemini-2.5-flash*native-audio*@2025-09-01"

    await add_call(
        db,
        "CA-ON",
        tenant="bakery",
        started_at=datetime(2025, 9, 10, tzinfo=UTC),
        usage=[live_usage(1_000_000, 0)],
    )
    cost = await cost_call(db, "CA-ON", table, on=date(2025, 8, 31))
    # the old price: 1,000,000*3 + 2,000*0.30 + 500*1.20 = 3,001,200 per 1M
    assert cost.total == Decimal("3.001200")


async def test_unknown_model_raises_and_writes_nothing(db: Database, table: PricingTable) -> None:
    await add_call(
        db,
        "CA-UNK",
        tenant="salon",
        started_at=datetime(2025, 8, 1, tzinfo=UTC),
        usage=[
            live_usage(),
            TokenUsage(model_name="mystery-model", purpose="message", input_tokens=10),
        ],
    )
    with pytest.raises(UnknownModelPrice, match="mystery-model"):
        await cost_call(db, "CA-UNK", table)
    call = await get_call(db, "CA-UNK")
    assert call is not None
    assert [u["total_cost"] for u in call["usage"]] == [None, None]
    assert [u["currency"] for u in call["usage"]] == [None, None]


async def test_changed_usage_is_costed_again(db: Database, table: PricingTable) -> None:
    started = datetime(2025, 8, 2, tzinfo=UTC)
    await add_call(db, "CA-RE", tenant="bakery", started_at=started, usage=[live_usage()])
    first = await cost_call(db, "CA-RE", table)
    # the bridge saves the call again with more tokens: the store clears the cost
    await add_call(db, "CA-RE", tenant="bakery", started_at=started, usage=[live_usage(2_000_000)])
    second = await cost_call(db, "CA-RE", table)
    assert second.newly_costed == 1
    assert second.total == first.total + Decimal("3.000000")


async def test_call_without_usage_costs_nothing(db: Database, table: PricingTable) -> None:
    await add_call(
        db, "CA-LOCAL", tenant="bakery", started_at=datetime(2025, 8, 3, tzinfo=UTC), usage=[]
    )
    cost = await cost_call(db, "CA-LOCAL", table)
    assert cost.lines == ()
    assert cost.total == Decimal(0)


async def test_concurrent_costing_writes_each_row_once(db: Database, table: PricingTable) -> None:
    await add_call(
        db,
        "CA-RACE",
        tenant="bakery",
        started_at=datetime(2025, 8, 4, tzinfo=UTC),
        usage=[live_usage(), analysis_usage()],
    )
    results = await asyncio.gather(*(cost_call(db, "CA-RACE", table) for _ in range(4)))
    assert {r.total for r in results} == {LIVE_COST + ANALYSIS_COST}
    assert sum(r.newly_costed for r in results) == 2


async def test_packaged_table_costs_a_live_call(db: Database) -> None:
    await add_call(
        db,
        "CA-PKG",
        tenant="bakery",
        started_at=datetime(2025, 8, 5, tzinfo=UTC),
        usage=[live_usage()],
    )
    cost = await cost_call(db, "CA-PKG", load_pricing())
    assert cost.total == LIVE_COST  # the seed's figures


# --- monthly spend -----------------------------------------------------------------------------


async def _month_fixture(db: Database, table: PricingTable) -> None:
    calls = [
        # (call_sid, tenant, started_at, usage)
        ("CA-M1", "bakery", datetime(2025, 3, 1, 0, 0, 0, tzinfo=UTC), [live_usage()]),
        (
            "CA-M2",
            "bakery",
            datetime(2025, 3, 31, 23, 59, 59, tzinfo=UTC),  # 1 April in India: still March
            [live_usage(), analysis_usage()],
        ),
        ("CA-M3", "salon", datetime(2025, 3, 15, 12, tzinfo=UTC), [live_usage(500_000, 0)]),
        # 05:00 on 1 April in India is 23:30 on 31 March UTC: March
        ("CA-M4", "salon", datetime(2025, 4, 1, 5, 0, tzinfo=IST), [analysis_usage()]),
        ("CA-A1", "bakery", datetime(2025, 4, 1, 0, 0, 0, tzinfo=UTC), [live_usage()]),
        ("CA-F1", "bakery", datetime(2025, 2, 28, 23, 59, 59, tzinfo=UTC), [live_usage()]),
    ]
    for sid, tenant, started, usage in calls:
        await add_call(db, sid, tenant=tenant, started_at=started, usage=usage)
        await cost_call(db, sid, table)
    # a March call not costed yet
    await add_call(
        db,
        "CA-M5",
        tenant="bakery",
        started_at=datetime(2025, 3, 20, tzinfo=UTC),
        usage=[analysis_usage()],
    )


async def test_monthly_spend_groups_by_tenant_and_model(db: Database, table: PricingTable) -> None:
    await _month_fixture(db, table)
    # live_usage(500_000, 0): 500,000*3 + 2,000*0.30 + 500*1.20 = 1,501,200 per 1M
    salon_live = Decimal("1.501200")

    rows = await monthly_spend(db, tenant=None, month="2025-03")
    assert rows == [
        SpendRow("bakery", ANALYSIS, 2, 8_000, 600, ANALYSIS_COST, uncosted_rows=1),
        SpendRow("bakery", LIVE, 2, 2_004_000, 201_000, LIVE_COST * 2),
        SpendRow("salon", ANALYSIS, 1, 4_000, 300, ANALYSIS_COST),
        SpendRow("salon", LIVE, 1, 502_000, 500, salon_live),
    ]

    salon = await monthly_spend(db, tenant="salon", month="2025-03")
    assert [(r.tenant, r.model) for r in salon] == [("salon", ANALYSIS), ("salon", LIVE)]

    april = await monthly_spend(db, tenant=None, month="2025-04")
    assert [(r.tenant, r.model, r.calls, r.cost_usd) for r in april] == [
        ("bakery", LIVE, 1, LIVE_COST)
    ]
    feb = await monthly_spend(db, tenant="bakery", month="2025-02")
    assert [(r.calls, r.cost_usd) for r in feb] == [(1, LIVE_COST)]
    assert await monthly_spend(db, tenant="nobody", month="2025-03") == []
    assert await monthly_spend(db, tenant=None, month="2024-12") == []

    assert await tenant_month_total(db, "bakery", "2025-03") == LIVE_COST * 2 + ANALYSIS_COST
    assert await tenant_month_total(db, "salon", "2025-03") == salon_live + ANALYSIS_COST
    assert await tenant_month_total(db, "salon", "2025-04") == Decimal(0)


async def test_monthly_spend_december_rolls_into_next_year(
    db: Database, table: PricingTable
) -> None:
    await add_call(
        db,
        "CA-DEC",
        tenant="bakery",
        started_at=datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC),
        usage=[live_usage()],
    )
    await add_call(
        db,
        "CA-JAN",
        tenant="bakery",
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        usage=[analysis_usage()],
    )
    for sid in ("CA-DEC", "CA-JAN"):
        await cost_call(db, sid, table)
    # the September price: 1,000,000*2 + 2,000*0.50 + 100,000*8 + 500*2 = 2,802,000 per 1M
    assert await tenant_month_total(db, "bakery", "2025-12") == Decimal("2.802000")
    assert await tenant_month_total(db, "bakery", "2026-01") == ANALYSIS_COST


@pytest.mark.parametrize("bad", ["2025-13", "2025-1", "March", "2025-00", ""])
async def test_bad_month_is_rejected(sqlite_db: Database, bad: str) -> None:
    with pytest.raises(ValueError, match="month"):
        await monthly_spend(sqlite_db, tenant=None, month=bad)


def test_month_range() -> None:
    assert month_range("2025-12") == (
        datetime(2025, 12, 1, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=UTC),
    )


# --- rendering ---------------------------------------------------------------------------------


def test_costs_table_shows_usd_and_inr() -> None:
    rows = [
        SpendRow("bakery", LIVE, 2, 2_004_000, 201_000, Decimal("8.402400")),
        SpendRow(None, ANALYSIS, 1, 4_000, 300, Decimal("0.001950"), uncosted_rows=1),
    ]
    table = costs_table(rows, Decimal("83.25"), title="March 2025")
    assert isinstance(table, Table)
    console = Console(width=160, record=True, color_system=None)
    console.print(table)
    text = console.export_text()
    assert "Cost (USD)" in text and "Cost (INR @ 83.25)" in text
    assert "$8.4024" in text and "₹699.50" in text  # 8.4024 × 83.25 = 699.4998
    assert "(unknown)" in text
    assert "$8.4044" in text and "₹699.66" in text  # totals
    assert "2,004,000" in text
    assert "not costed yet" in text
