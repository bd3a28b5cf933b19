"""The grounded brain's totals and earlier orders go through the same `quote` and
`order_status` tools as Gemini Live (a real ToolBox over a real store): the brain never adds a
total up itself, and an order is looked up by the caller's name or their own number."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from receptionist.engines.local.grounded import GroundedBrain
from receptionist.store import bookings as store
from receptionist.store.db import Database
from receptionist.tools.runner import ToolBox, ToolContext
from tests.tool_tenants import tool_tenant

NOW = datetime(2026, 12, 7, 3, 30, tzinfo=UTC)  # Monday 09:00 in Chennai
YESTERDAY = NOW - timedelta(days=1)  # Sunday 09:00
CALLER = "+919811112222"
NO_TOOLS = "\n[tools]\nenabled = []\n"


def _brain(
    tmp_path: Path, db: Database, name: str = "bakery", extra: str | None = None, **kw: Any
) -> tuple[GroundedBrain, ToolBox]:
    tenant = tool_tenant(tmp_path, name, extra)
    ctx = ToolContext(
        tenant=tenant, db=db, call_sid="CAlocal", caller_number=CALLER, clock=lambda: NOW
    )
    box = ToolBox(ctx, **kw)
    brain = GroundedBrain(tenant, CALLER, now=NOW)
    brain.use_tools(box)
    return brain, box


# --- quote ----------------------------------------------------------------------------------


async def test_a_total_comes_from_the_quote_tool(tmp_path: Path, sqlite_db: Database) -> None:
    brain, box = _brain(tmp_path, sqlite_db)
    said = await brain.reply("How much for six chocolate brownies and a milk bread?")
    assert said.reason == "quote"
    assert said.text == "6 Chocolate brownies at 80 each and Milk bread at 50: 530 rupees in all."
    assert [(o.name, o.status) for o in box.outcomes] == [("quote", "ok")]
    # romanised Hindi asks the same
    said = await brain.reply("2 chocolate brownie aur ek milk bread kitne ka hoga?")
    assert said.text == "2 Chocolate brownies at 80 each and Milk bread at 50: 210 rupees in all."
    assert len(box.outcomes) == 2
    # one price is read from the files, no tool needed
    single = await brain.reply("How much is a milk bread?")
    assert single.reason != "quote" and "50 rupees" in single.text
    assert len(box.outcomes) == 2


async def test_the_total_of_the_order_given(tmp_path: Path, sqlite_db: Database) -> None:
    brain, box = _brain(tmp_path, sqlite_db)
    await brain.reply(
        "I'd like to order 6 chocolate brownies and 2 milk breads for pickup tomorrow"
    )
    assert box.outcomes == []
    said = await brain.reply("What's the total?")
    assert said.reason == "quote"
    assert said.text == (
        "6 Chocolate brownies at 80 each and 2 Milk breads at 50 each: 580 rupees in all."
    )
    assert [o.name for o in box.outcomes] == ["quote"]
    # the order goes on: the brain still asks for what it needs
    on = await brain.reply("My name is Asha.")
    assert on.reason != "quote" and brain.state.details.get("name") == "Asha"


async def test_the_brain_says_the_quote_tools_figures(tmp_path: Path, sqlite_db: Database) -> None:
    """The acknowledgement, the read-back and "what's the total?" all say what `quote` answers
    for the same lines, the eggless surcharge the menu states included, with the tool enabled
    or not (one computation: knowledge.quote)."""
    order = "I'd like two kilo eggless chocolate truffle cake and 2 veg puffs for pickup tomorrow"
    brain, box = _brain(tmp_path, sqlite_db)
    q = await box.run(
        "quote",
        {"items": [{"item": "chocolate truffle", "kg": 2, "options": ["eggless"]},
                   {"item": "veg puff", "count": 2}]},
    )  # fmt: skip
    assert q["total_rupees"] == "1960"  # 2 x 900 + 2 x 50 eggless + 2 x 30
    ack = await brain.reply(order)
    assert "2 kg Chocolate Truffle cake eggless, 1900 rupees" in ack.text
    assert "That comes to 1960 rupees." in ack.text
    said = await brain.reply("What's the total?")
    assert said.reason == "quote" and said.text.endswith("1960 rupees in all.")
    assert box.outcomes[-1].name == "quote" and box.outcomes[-1].status == "ok"
    without, _ = _brain(tmp_path / "none", sqlite_db, extra=NO_TOOLS)
    await without.reply(order)
    read_back = await without.reply("My name is Asha, I'll use this number.")
    assert "total 1960 rupees" in read_back.text, read_back.text


async def test_unknown_items_and_a_weight_not_said(tmp_path: Path, sqlite_db: Database) -> None:
    brain, _ = _brain(tmp_path, sqlite_db)
    said = await brain.reply(
        "How much for 2 kg chocolate truffle cake, two milk breads and a pizza?"
    )
    assert said.text == (
        "Sorry, we don't have pizza on our price list. "
        "2 kg Chocolate Truffle cake at 1800 and 2 Milk breads at 50 each: 1900 rupees in all."
    )
    said = await brain.reply("How much for two chocolate truffle cakes and a milk bread?")
    assert said.text == (
        "Chocolate Truffle cake is sold by weight, 900 rupees per kg: how many kg?"
        " Milk bread at 50: 50 rupees."
    )
    said = await brain.reply("How much for black forest cake, pineapple cake and a milk bread?")
    assert said.text == (
        "Black Forest cake and Pineapple cake are sold by weight (Black Forest cake, 750 rupees"
        " per kg; Pineapple cake, 650 rupees per kg): how many kg of each?"
        " Milk bread at 50: 50 rupees."
    )
    # only cakes by weight, no weight said: nothing to add up, the brain reads the prices
    said = await brain.reply("How much for black forest and pineapple cakes?")
    assert said.reason != "quote" and "750 rupees per kg" in said.text


async def test_an_ambiguous_item_is_asked_about(tmp_path: Path, sqlite_db: Database) -> None:
    brain, box = _brain(tmp_path, sqlite_db, "saloon")
    said = await brain.reply("How much for two haircuts and a head massage?")
    assert said.text.startswith("Which haircut do you mean: Haircut (Hair -- gents) or Haircut")
    assert box.outcomes == []


async def test_a_failing_or_slow_quote_is_no_total(tmp_path: Path, sqlite_db: Database) -> None:
    async def down(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
        raise ConnectionError("price list went away")

    never = asyncio.Event()

    async def stuck(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
        await never.wait()  # never set: only the ToolBox's bound ends it
        return {}

    sorry = (
        "Sorry, I can't work out the total right now. The owner will confirm the price with you."
    )
    for i, (fn, status) in enumerate([(down, "failed"), (stuck, "timeout")]):
        brain, box = _brain(tmp_path / str(i), sqlite_db, functions={"quote": fn}, timeout_s=0.05)
        said = await brain.reply("How much for six chocolate brownies and a milk bread?")
        assert said.text == sorry and said.reason == "quote"
        assert box.outcomes[-1].status == status
        # no total of its own either
        assert "rupees" not in said.text


async def test_without_the_tools_the_brain_answers_as_before(
    tmp_path: Path, sqlite_db: Database
) -> None:
    plain = GroundedBrain(tool_tenant(tmp_path / "plain", "bakery", NO_TOOLS), CALLER, now=NOW)
    brain, box = _brain(tmp_path / "tools", sqlite_db, "bakery", NO_TOOLS)
    assert brain.quotes is None and brain.orders is None
    for line in (
        "How much for six chocolate brownies and a milk bread?",
        "I ordered a cake yesterday, is it ready?",
        "What's the total?",
    ):
        assert (await brain.reply(line)).text == plain.respond(line).text
    assert box.outcomes == []


# --- order_status ---------------------------------------------------------------------------


async def _order(db: Database, name: str | None, phone: str | None) -> store.Booking:
    booking = await store.hold_order(
        db,
        tenant="bakery",
        details={"lines": [{"line": "1 kg Black Forest cake", "rupees": "750"}],
                 "total_rupees": "750"},
        hold_for=timedelta(minutes=10),
        call_sid="CAyesterday",
        customer_name=name,
        customer_phone=phone,
        now=YESTERDAY,
    )  # fmt: skip
    await store.confirm_call(db, "CAyesterday", now=YESTERDAY)
    return booking


async def test_an_order_found_by_the_callers_number(tmp_path: Path, db: Database) -> None:
    await _order(db, None, CALLER)  # as `book` stores it: the caller's number
    brain, box = _brain(tmp_path, db)
    said = await brain.reply("I ordered a cake yesterday, is it ready?")
    assert said.reason == "order_status"
    assert said.text == (
        "I see your order of 1 kg Black Forest cake, placed yesterday at 9 am; it is confirmed."
    )
    assert [(o.name, o.status) for o in box.outcomes] == [("order_status", "ok")]


async def test_an_order_found_by_name(tmp_path: Path, sqlite_db: Database) -> None:
    await _order(sqlite_db, "Meera", CALLER)
    brain, _ = _brain(tmp_path, sqlite_db)
    said = await brain.reply("My name is Meera. What about my order?")
    assert said.text.startswith("I see your order of 1 kg Black Forest cake")


async def test_another_customers_order_is_never_read_out(
    tmp_path: Path, sqlite_db: Database
) -> None:
    """The same name from another phone is another customer: a name alone finds nothing."""
    await _order(sqlite_db, "Meera", "+919800000001")
    brain, _ = _brain(tmp_path, sqlite_db)
    said = await brain.reply("My name is Meera. What about my order?")
    assert "Black Forest" not in said.text and "call you back" in said.text, said.text
    # romanised Hindi, a booking at the saloon under a name given earlier in the call
    start = NOW + timedelta(days=1, hours=7)  # Tuesday 4 pm in Chennai
    await store.hold_slot(
        sqlite_db,
        store.SlotHold("saloon", "Priya", start, start + timedelta(hours=1),
                       timedelta(minutes=10), call_sid="CAearlier", customer_name="Asha",
                       customer_phone=CALLER, details={"service": "haircut"}),
        now=YESTERDAY,
    )  # fmt: skip
    await store.confirm_call(sqlite_db, "CAearlier", now=YESTERDAY)
    brain, _ = _brain(tmp_path / "saloon", sqlite_db, "saloon")
    brain.state.details["name"] = "Asha"
    said = await brain.reply("meri booking ka kya hua?")
    assert said.text == "I see your haircut with Priya for tomorrow at 4 pm; it is confirmed."


async def test_no_order_found_offers_a_call_back(tmp_path: Path, sqlite_db: Database) -> None:
    await _order(sqlite_db, "Meera", "+919800000001")  # someone else's
    brain, _ = _brain(tmp_path, sqlite_db)
    said = await brain.reply("What about my booking?")
    assert said.text == (
        "I can't find an order or booking for the number you're calling from. "
        "Shall I ask the owner to call you back about it?"
    )
    yes = await brain.reply("Yes please.")
    assert yes.end_call and brain.state.callback_requested


async def test_a_failing_lookup_offers_a_call_back(tmp_path: Path, sqlite_db: Database) -> None:
    async def down(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
        raise ConnectionError("database went away")

    brain, box = _brain(tmp_path, sqlite_db, functions={"order_status": down})
    said = await brain.reply("Is my order ready?")
    assert said.text == (
        "Sorry, I can't look orders up right now. Shall I ask the owner to call you back about it?"
    )
    assert box.outcomes[-1].status == "failed" and brain.state.last_prompt == "callback"
