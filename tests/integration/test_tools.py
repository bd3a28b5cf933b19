"""The call's tools on both databases: slots, holds that cannot collide, quotes from the price
list, earlier orders, hand-off; and every bad input answered politely and recorded."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from receptionist.store import bookings as store
from receptionist.store.db import Database
from receptionist.tools.runner import (
    HandoffAnswer,
    HandoffRequest,
    ToolBox,
    ToolContext,
    ToolOutcome,
)
from tests.tool_tenants import tool_tenant

# Monday 2026-12-07 09:00 in Chennai (03:30 UTC): the saloon opens at 10:00, 60-minute slots.
NOW = datetime(2026, 12, 7, 3, 30, tzinfo=UTC)


def _box(
    tmp_path: Path,
    db: Database,
    *,
    call_sid: str = "CA1",
    name: str = "saloon",
    now: datetime = NOW,
    **kw: Any,
) -> tuple[ToolBox, list[ToolOutcome], list[HandoffRequest]]:
    outcomes: list[ToolOutcome] = []
    handoffs: list[HandoffRequest] = []

    async def put_through(request: HandoffRequest) -> HandoffAnswer:
        handoffs.append(request)
        return HandoffAnswer("putting_through", "Putting you through.")

    ctx = ToolContext(
        tenant=tool_tenant(tmp_path, name),
        db=db,
        call_sid=call_sid,
        caller_number="+919812345678",
        clock=lambda: now,
        on_handoff=put_through,
    )
    return ToolBox(ctx, on_outcome=outcomes.append, **kw), outcomes, handoffs


async def test_check_then_book_then_taken_offers_next(tmp_path: Path, db: Database) -> None:
    box, outcomes, _ = _box(tmp_path, db)
    free = await box.run("check_slot", {"date": "tomorrow", "time": "16:00"})
    assert free == {"date": "2026-12-08", "time": "16:00", "free": True, "resource": "Priya"}
    booked = await box.run("book", {"date": "2026-12-08", "time": "4 pm", "name": "Asha"})
    assert booked["booked"] is True and len(booked["reference"]) == 6
    other, _, _ = _box(tmp_path, db, call_sid="CA2")
    taken = await other.run("check_slot", {"date": "2026-12-08", "time": "16:00"})
    assert taken["free"] is False
    assert taken["next_free"][0] == {"date": "2026-12-08", "time": "17:00", "resource": "Priya"}
    again = await other.run("book", {"date": "2026-12-08", "time": "16:00", "name": "Ravi"})
    assert again["booked"] is False and again["next_free"][0]["time"] == "17:00"
    assert [o.status for o in outcomes] == ["ok", "ok"]


async def test_holds_expire_and_confirm_at_call_end(tmp_path: Path, db: Database) -> None:
    box, _, _ = _box(tmp_path, db, call_sid="CA1")
    first = await box.run("book", {"date": "2026-12-08", "time": "11:00", "name": "Asha"})
    assert first["booked"]
    # ten minutes later the hold has run out: another caller gets the slot
    later, _, _ = _box(tmp_path, db, call_sid="CA2", now=NOW + timedelta(minutes=11))
    second = await later.run("book", {"date": "2026-12-08", "time": "11:00", "name": "Ravi"})
    assert second["booked"]
    asha = await later.run("order_status", {"name": "asha"})
    assert [o["status"] for o in asha["orders"]] == ["expired"]
    assert await store.confirm_call(db, "CA1") == 0  # expired: not confirmed over Ravi's
    assert await store.confirm_call(db, "CA2") == 1
    rows = {b.reference: b.status for b in await store.list_bookings(db, "saloon")}
    assert rows == {first["reference"]: "expired", second["reference"]: "confirmed"}


async def test_fifty_concurrent_attempts_on_one_slot(tmp_path: Path, db: Database) -> None:
    boxes = [_box(tmp_path, db, call_sid=f"CA{i}")[0] for i in range(50)]
    args = {"date": "2026-12-08", "time": "12:00", "name": "Caller"}
    results = await asyncio.gather(*(b.run("book", dict(args)) for b in boxes))
    won = [r for r in results if r.get("booked")]
    assert len(won) == 1, results[:3]
    lost = [r for r in results if r.get("booked") is False]
    assert len(lost) == 49
    assert all(r["next_free"][0]["time"] == "13:00" for r in lost)
    active = [b for b in await store.list_bookings(db, "saloon") if b.status == "pending"]
    assert len(active) == 1


async def test_quote_from_the_price_list(tmp_path: Path, db: Database) -> None:
    box, _, _ = _box(tmp_path, db, name="bakery")
    q = await box.run(
        "quote",
        {"items": [{"item": "Black Forest", "kg": 1}, {"item": "pineapple pastry", "count": 2}]},
    )
    assert q["total_rupees"] == "910", q  # 750 a kg + 2 x 80
    order = await box.run("book", {"name": "Asha", "items": [{"item": "Black Forest", "kg": 1}]})
    assert order["booked"] and order["total_rupees"] == "750"
    found = await box.run("order_status", {})  # by this caller's number
    assert found["found"] == 1 and found["orders"][0]["reference"] == order["reference"]
    by_ref = await box.run("order_status", {"reference": order["reference"].lower()})
    assert by_ref["found"] == 1


async def test_order_status_reads_out_only_the_callers_own(tmp_path: Path, db: Database) -> None:
    """Another number or a bare name never reads out someone else's orders; with a withheld
    number, the reference and the name on it together do."""
    box, _, _ = _box(tmp_path, db, name="bakery")
    order = await box.run("book", {"name": "Asha", "items": [{"item": "Black Forest", "kg": 1}]})
    ref = order["reference"]
    other = await box.run("order_status", {"phone": "+91 98000 00001"})
    assert other["reason"] == "invalid_args" and "calling from" in other["error"], other
    withheld = ToolBox(
        ToolContext(tenant=box.ctx.tenant, db=db, call_sid="CAw", caller_number=None)
    )
    bare_name = await withheld.run("order_status", {"name": "Asha"})
    assert bare_name["reason"] == "invalid_args", bare_name
    wrong_name = await withheld.run("order_status", {"reference": ref, "name": "Ravi"})
    assert wrong_name["found"] == 0
    both = await withheld.run("order_status", {"reference": ref, "name": "asha"})
    assert both["found"] == 1 and both["orders"][0]["reference"] == ref


async def test_quote_lines_by_pack_section_and_each(tmp_path: Path, sqlite_db: Database) -> None:
    box, _, _ = _box(tmp_path, sqlite_db, name="bakery")
    q = await box.run(
        "quote",
        {"items": [{"item": "pav", "packs": 2}, {"item": "chocolate brownie", "count": 3},
                   {"item": "vanilla cupcake", "count": 6}]},
    )  # fmt: skip
    # 2 packs x 40; 3 x 80 (each said); 6 cupcakes at the box price, so no "each"
    assert [line.get("each") for line in q["lines"]] == [None, "80", None]
    assert [line["rupees"] for line in q["lines"]] == ["80", "240", "390"]
    assert q["total_rupees"] == "710"
    box, _, _ = _box(tmp_path / "s", sqlite_db)
    ladies = {"item": "Haircut", "section": "hair -- ladies"}
    gents = {"item": "Haircut", "section": "Hair -- gents"}
    assert (await box.run("quote", {"items": [ladies]}))["total_rupees"] != (
        await box.run("quote", {"items": [gents]})
    )["total_rupees"]


async def test_quote_adds_the_extras_the_price_list_states(
    tmp_path: Path, sqlite_db: Database
) -> None:
    """menu.md: "Eggless cakes cost ₹50 extra per kg"; services: "(Rica wax ₹200 extra)". An
    option with no stated charge, or one for something else, adds nothing."""
    box, _, _ = _box(tmp_path, sqlite_db, name="bakery")
    cake = {"item": "Chocolate Truffle", "kg": 2, "options": ["eggless"]}
    q = await box.run(
        "quote", {"items": [cake, {"item": "pineapple pastry", "options": ["Eggless"]}]}
    )
    assert q["lines"][0] == {
        "line": "2 kg Chocolate Truffle cake eggless",
        "rupees": "1900",
        "extras": [{"option": "eggless", "rupees": "100"}],
    }
    assert q["lines"][1] == {"line": "Pineapple pastry", "rupees": "80"}  # the charge is per kg
    assert q["total_rupees"] == "1980"
    plain = await box.run("quote", {"items": [{**cake, "options": ["extra candles"]}]})
    assert plain["total_rupees"] == "1800" and "extras" not in plain["lines"][0]
    saloon, _, _ = _box(tmp_path / "s", sqlite_db)
    wax = await saloon.run(
        "quote", {"items": [{"item": "waxing full legs", "options": ["rica wax"]}]}
    )
    assert wax["total_rupees"] == "800"


async def test_handoff_is_handed_to_the_session(tmp_path: Path, db: Database) -> None:
    box, outcomes, handoffs = _box(tmp_path, db)
    out = await box.run("handoff", {"reason": "wants the owner", "who": "owner"})
    assert out == {"handoff": "putting_through", "say": "Say to the caller: Putting you through."}
    assert handoffs == [HandoffRequest("wants the owner", "owner")]
    assert outcomes[-1].status == "ok"


BAD = [
    ("check_slot", {}, "'date' is missing"),
    ("check_slot", {"date": "2026-12-08"}, "'time' is missing"),
    ("check_slot", {"date": "08/12/2026", "time": "16:00"}, "not a date"),
    ("check_slot", {"date": "2026-02-30", "time": "16:00"}, "no such day"),
    ("check_slot", {"date": "2026-12-08", "time": "25:00"}, "not a time"),
    ("check_slot", {"date": "2026-12-08", "time": "07:00"}, "from 10:00"),
    ("check_slot", {"date": "2026-12-08", "time": "16:30"}, "every 60 minutes"),
    ("check_slot", {"date": "2026-12-06", "time": "16:00"}, "has passed"),
    ("check_slot", {"date": "2027-12-08", "time": "16:00"}, "days ahead"),
    ("check_slot", {"date": 20261208, "time": "16:00"}, "must be text"),
    ("check_slot", {"date": "2026-12-08", "time": "16:00", "resource": "Zed"}, "nobody called"),
    ("book", {"date": "2026-12-08", "time": "16:00"}, "'name' is missing"),
    ("book", {"date": "2026-12-08", "time": "16:00", "name": "x" * 500}, "too long"),
    ("book", {"date": "2026-12-08", "time": "16:00", "name": "A", "phone": "12"}, "phone"),
    ("quote", {}, "'items' must list"),
    ("quote", {"items": "cake"}, "'items' must list"),
    ("quote", {"items": [{"item": "unicorn steak"}]}, "not on the price list"),
    ("quote", {"items": [{"item": "Haircut", "count": -2}]}, "from 1 to 1000"),
    ("quote", {"items": [{"item": "Haircut", "count": 1.5}]}, "whole number"),
    ("quote", {"items": [{"item": "Haircut"}] * 21}, "at most 20"),
    ("quote", {"items": [{"item": "Haircut"}]}, "could be"),
    ("quote", {"items": [{"item": "Haircut", "section": "Hair -- kids"}]}, "could be"),
    ("quote", {"items": [{"item": "Haircut", "section": 3}]}, "must be text"),
    ("quote", {"items": [{"item": "Pav", "packs": 0}]}, "from 1 to 1000"),
    ("quote", {"items": [{"item": "Manicure", "options": "eggless"}]}, "'options' must list"),
    ("quote", {"items": [{"item": "Manicure", "options": ["x"] * 6}]}, "at most 5 options"),
    ("quote", {"items": [{"item": "Manicure", "options": [7]}]}, "'option' must be text"),
    ("quote", {"items": [{"item": "Manicure", "options": ["y" * 500]}]}, "too long"),
    ("order_status", {"reference": "AB-12"}, "letters and digits"),
    ("handoff", {}, "'reason' is missing"),
]


@pytest.mark.parametrize(("name", "args", "says"), BAD)
async def test_bad_arguments_are_answered_politely(
    tmp_path: Path, sqlite_db: Database, name: str, args: dict[str, Any], says: str
) -> None:
    box, outcomes, _ = _box(tmp_path, sqlite_db)
    out = await box.run(name, args)
    assert out["reason"] == "invalid_args" and says in out["error"], out
    assert outcomes[-1].status == "invalid_args" and outcomes[-1].name == name


async def test_args_that_are_not_an_object(tmp_path: Path, sqlite_db: Database) -> None:
    box, outcomes, _ = _box(tmp_path, sqlite_db)
    assert (await box.run("quote", ["items"]))["reason"] == "invalid_args"
    assert (await box.run("quote", {"items": [{"item": "a" * 5000}]}))["reason"] == "invalid_args"
    assert [o.status for o in outcomes] == ["invalid_args", "invalid_args"]


async def test_tool_not_enabled_and_unknown_tool(tmp_path: Path, sqlite_db: Database) -> None:
    box, outcomes, _ = _box(tmp_path, sqlite_db, name="bakery")  # no check_slot, no handoff
    out = await box.run("handoff", {"reason": "x"})
    assert out["reason"] == "not_enabled"
    assert (await box.run("drop_tables", {}))["reason"] == "unknown_tool"
    assert [o.status for o in outcomes] == ["not_enabled", "unknown_tool"]
    assert [s.name for s in box.specs] == ["quote", "book", "order_status"]


async def test_a_slow_tool_is_answered_at_the_bound(tmp_path: Path, sqlite_db: Database) -> None:
    started, never = asyncio.Event(), asyncio.Event()

    async def held(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
        started.set()
        await never.wait()  # the test never releases it
        return {}

    box, outcomes, _ = _box(tmp_path, sqlite_db, functions={"quote": held}, timeout_s=0.05)
    out = await box.run("quote", {"items": []})
    assert started.is_set() and out["reason"] == "timeout"
    assert outcomes[-1].status == "timeout"


async def test_a_failing_tool_is_answered_politely(tmp_path: Path, sqlite_db: Database) -> None:
    async def broken(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("database went away")

    box, outcomes, _ = _box(tmp_path, sqlite_db, functions={"quote": broken})
    out = await box.run("quote", {})
    assert out["reason"] == "failed" and "database" not in out["error"]
    assert outcomes[-1].status == "failed" and "database went away" in outcomes[-1].detail


async def test_the_database_alone_admits_one_hold(db: Database) -> None:
    """Below the tools' in-process queue: fifty holds of one slot straight at the store (as
    from fifty processes) — the unique index lets exactly one through."""
    start = datetime(2026, 12, 8, 10, 30, tzinfo=UTC)

    async def hold(i: int) -> store.Booking | None:
        return await store.hold_slot(
            db,
            store.SlotHold(
                "saloon", "Priya", start, start + timedelta(hours=1), timedelta(minutes=10),
                call_sid=f"CA{i}",
            ),
            now=NOW,
        )  # fmt: skip

    held = await asyncio.gather(*(hold(i) for i in range(50)))
    assert len([h for h in held if h is not None]) == 1


async def test_only_the_holds_told_of_are_confirmed(tmp_path: Path, db: Database) -> None:
    box, _, _ = _box(tmp_path, db, call_sid="CA7")
    told = await box.run("book", {"date": "2026-12-08", "time": "14:00", "name": "Asha"})
    # a hold whose `book` was cut short by the time bound: written, never told of
    start = datetime(2026, 12, 8, 9, 30, tzinfo=UTC)
    untold = await store.hold_slot(
        db, store.SlotHold("saloon", "Priya", start, start, timedelta(minutes=10), "CA7"), now=NOW
    )
    assert untold is not None
    assert await store.confirm_call(db, "CA7", references=box.ctx.held) == 1
    rows = {b.reference: b.status for b in await store.list_bookings(db, "saloon")}
    assert rows == {told["reference"]: "confirmed", untold.reference: "pending"}
