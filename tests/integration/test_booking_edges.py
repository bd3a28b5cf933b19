"""The edges of "bookings that cannot collide", on both databases: a booking made on an older
slot grid blocks every slot it overlaps (also under concurrency), a hold lasts as long as its
call, and only the holds whose answer reached the caller are confirmed at the call's end."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from receptionist.store import bookings as store
from receptionist.store.db import Database
from receptionist.tools.runner import ToolBox, ToolContext
from tests.tool_tenants import SALOON_TOOLS, tool_tenant

# Monday 2026-12-07 09:00 in Chennai (03:30 UTC); the saloon: 60-minute slots from 10:00.
NOW = datetime(2026, 12, 7, 3, 30, tzinfo=UTC)
TEN_THIRTY_TOMORROW = datetime(2026, 12, 8, 5, 0, tzinfo=UTC)  # 10:30 IST


def _box(tmp_path: Path, db: Database, call_sid: str, **ctx: Any) -> ToolBox:
    ctx.setdefault("clock", lambda: NOW)
    return ToolBox(ToolContext(tenant=tool_tenant(tmp_path), db=db, call_sid=call_sid, **ctx))


async def _hold(
    db: Database, start: datetime, minutes: int, call_sid: str, *, now: datetime = NOW
) -> store.Booking | None:
    return await store.hold_slot(
        db,
        store.SlotHold(
            "saloon", "Priya", start, start + timedelta(minutes=minutes),
            timedelta(minutes=10), call_sid=call_sid,
        ),
        now=now,
    )  # fmt: skip


# --- 1. overlap, not the exact start ----------------------------------------------------------


async def test_a_booking_on_an_older_grid_blocks_the_slots_it_overlaps(
    tmp_path: Path, db: Database
) -> None:
    """Booked 10:30-11:30 when the saloon's slots started on the half hour; now they start on
    the hour: 10:00 and 11:00 both overlap it, 12:00 is the first free one."""
    old = await _hold(db, TEN_THIRTY_TOMORROW, 60, "CAold")
    assert old is not None
    assert await store.confirm_call(db, "CAold") == 1
    box = _box(tmp_path, db, "CAnew")
    for at in ("10:00", "11:00"):
        check = await box.run("check_slot", {"date": "2026-12-08", "time": at})
        assert check["free"] is False, (at, check)
        assert check["next_free"][0]["time"] == "12:00", check
    booked = await box.run("book", {"date": "2026-12-08", "time": "11:00", "name": "Ravi"})
    assert booked["booked"] is False and booked["next_free"][0]["time"] == "12:00", booked
    live = [b for b in await store.list_bookings(db, "saloon") if b.status != "expired"]
    assert [b.reference for b in live] == [old.reference]


async def test_the_store_refuses_an_overlapping_hold(db: Database) -> None:
    first = await _hold(db, TEN_THIRTY_TOMORROW, 30, "CA1")  # 10:30-11:00
    assert first is not None
    later = TEN_THIRTY_TOMORROW + timedelta(minutes=15)
    assert await _hold(db, later, 30, "CA2") is None  # 10:45-11:15 overlaps
    assert await _hold(db, TEN_THIRTY_TOMORROW - timedelta(minutes=30), 30, "CA3") is not None
    assert await _hold(db, TEN_THIRTY_TOMORROW + timedelta(minutes=30), 30, "CA4") is not None
    # holds that ran out block nothing: those overlapping the new one are marked expired
    replaced = await _hold(db, later, 30, "CA5", now=NOW + timedelta(minutes=11))
    assert replaced is not None
    rows = {b.call_sid: b.status for b in await store.list_bookings(db, "saloon")}
    assert rows == {"CA1": "expired", "CA3": "pending", "CA4": "expired", "CA5": "pending"}


async def test_overlapping_holds_at_once_never_both_win(db: Database) -> None:
    """Forty holds at once, each starting 15 minutes after the one before and lasting an hour
    (as from many processes, below the tools' in-process queue): the winners never overlap."""
    starts = [TEN_THIRTY_TOMORROW + timedelta(minutes=15 * i) for i in range(40)]
    held = await asyncio.gather(*(_hold(db, s, 60, f"CA{i}") for i, s in enumerate(starts)))
    won = sorted((h.starts_at, h.ends_at) for h in held if h is not None)
    assert won, held
    for (_, end), (start, _) in itertools.pairwise(won):
        assert start >= end, won
    live = [b for b in await store.list_bookings(db, "saloon") if b.status == "pending"]
    assert len(live) == len(won)


# --- 2. a hold lasts as long as its call ------------------------------------------------------


async def test_a_hold_does_not_run_out_while_its_call_goes_on(tmp_path: Path, db: Database) -> None:
    """hold_minutes is 10; the call may last 40 minutes (its longest plus a grace): at minute
    11 the slot is still the caller's, and the call's end confirms it."""
    box = _box(tmp_path, db, "CAlong", hold_until=NOW + timedelta(minutes=40))
    booked = await box.run("book", {"date": "2026-12-08", "time": "11:00", "name": "Asha"})
    assert booked["booked"] is True
    box.delivered(booked)
    later = NOW + timedelta(minutes=11)
    other = _box(tmp_path, db, "CAother", clock=lambda: later)
    again = await other.run("book", {"date": "2026-12-08", "time": "11:00", "name": "Ravi"})
    assert again["booked"] is False, again
    status = await other.run("order_status", {"reference": booked["reference"], "name": "Asha"})
    assert status["orders"][0]["status"] == "pending"
    assert await store.settle_call(db, "CAlong", told=box.ctx.told, now=later) == (1, 0)


async def test_a_hold_of_a_call_that_never_ended_runs_out_at_its_bound(
    tmp_path: Path, db: Database
) -> None:
    box = _box(tmp_path, db, "CAlost", hold_until=NOW + timedelta(minutes=40))
    booked = await box.run("book", {"date": "2026-12-08", "time": "11:00", "name": "Asha"})
    assert booked["booked"] is True
    after = NOW + timedelta(minutes=41)
    other = _box(tmp_path, db, "CAnext", clock=lambda: after)
    again = await other.run("book", {"date": "2026-12-08", "time": "11:00", "name": "Ravi"})
    assert again["booked"] is True, again


async def test_the_reaper_releases_the_holds_of_lost_calls(db: Database) -> None:
    held = await _hold(db, TEN_THIRTY_TOMORROW, 60, "CAgone")
    assert held is not None
    assert await store.release_calls(db, ["CAgone"]) == 1
    assert await _hold(db, TEN_THIRTY_TOMORROW, 60, "CAnext") is not None


# --- 3. only what the caller heard is confirmed -----------------------------------------------


async def test_only_delivered_holds_are_confirmed_the_rest_released(
    tmp_path: Path, db: Database
) -> None:
    box = _box(tmp_path, db, "CA7")
    told = await box.run("book", {"date": "2026-12-08", "time": "14:00", "name": "Asha"})
    lost = await box.run("book", {"date": "2026-12-08", "time": "15:00", "name": "Asha"})
    assert told["booked"] and lost["booked"]
    box.delivered(told)  # the other answer never reached the model
    box.delivered({"error": "timeout", "reference": lost["reference"]})  # not a hold's answer
    assert box.ctx.told == [told["reference"]]
    assert await store.settle_call(db, "CA7", told=box.ctx.told) == (1, 1)
    rows = {b.reference: b.status for b in await store.list_bookings(db, "saloon")}
    assert rows == {told["reference"]: "confirmed", lost["reference"]: "expired"}
    # the released slot is free again at once
    other = _box(tmp_path, db, "CA8")
    assert (await other.run("book", {"date": "2026-12-08", "time": "15:00", "name": "R"}))["booked"]


async def test_a_retried_book_is_given_its_own_hold_back(tmp_path: Path, db: Database) -> None:
    """The model lost the first answer and asks again: the same hold, not "just taken"."""
    box = _box(tmp_path, db, "CA9")
    args = {"date": "2026-12-08", "time": "14:00", "name": "Asha"}
    first = await box.run("book", dict(args))
    second = await box.run("book", dict(args))
    assert second["booked"] is True and second["reference"] == first["reference"], second
    assert box.ctx.held == [first["reference"]]


# --- 4. one definition of opening hours: [booking] takes [handoff]'s hours lines ---------------

LUNCH = SALOON_TOOLS.replace(
    'opens = "10:00"\ncloses = "20:00"\n',
    'hours = ["mon-sat 10:00-13:00", "mon-sat 14:00-19:00"]\n',
)


async def test_booking_hours_with_a_lunch_break(tmp_path: Path, sqlite_db: Database) -> None:
    tenant = tool_tenant(tmp_path, extra=LUNCH)
    box = ToolBox(ToolContext(tenant=tenant, db=sqlite_db, call_sid="CAl", clock=lambda: NOW))
    lunch = await box.run("check_slot", {"date": "2026-12-08", "time": "13:00"})
    assert lunch["reason"] == "invalid_args", lunch
    assert "from 10:00, the last one starting by 12:00; from 14:00" in lunch["error"], lunch
    booked = await box.run("book", {"date": "2026-12-08", "time": "12:00", "name": "Asha"})
    assert booked["booked"] is True
    taken = await box.run("check_slot", {"date": "2026-12-08", "time": "12:00"})
    assert taken["next_free"][0]["time"] == "14:00", taken
    sunday = await box.run("check_slot", {"date": "2026-12-13", "time": "12:00"})
    assert "closed on Sundays" in sunday["error"], sunday
