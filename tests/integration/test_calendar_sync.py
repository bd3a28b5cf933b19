"""Two-way Google Calendar sync, on both databases, through Google's own client against the
calendar double (receptionist.sim.google_calendar): confirmed bookings become one event each
(a retry included), cancelled ones are removed, failures back off and stay visible; the owner's
own events make their slots taken, and a calendar that is down or slow leaves the answer to the
database, with a note."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from receptionist.gcal import busy
from receptionist.gcal.client import event_id_for
from receptionist.gcal.sync import CalendarSync
from receptionist.sim.google_calendar import FakeGoogleCalendar
from receptionist.store import bookings as store
from receptionist.store.calendar_sync import sync_problems
from receptionist.store.db import Database
from receptionist.store.schema import (
    BOOKING_CANCELLED,
    BOOKING_CONFIRMED,
    bookings,
    calendar_sync,
)
from receptionist.tenants.repository import TenantRepository
from receptionist.tools.functions import CALENDAR_NOTE
from receptionist.tools.runner import ToolBox, ToolContext, ToolOutcome
from tests.tool_tenants import tool_tenant

# Monday 2026-12-07 09:00 in Chennai (03:30 UTC); the saloon opens at 10:00, 60-minute slots.
NOW = datetime(2026, 12, 7, 3, 30, tzinfo=UTC)
PRIYA, ARUN = "priya@example.com", "arun@example.com"
CONFIG = f"""
[tools]
enabled = ["check_slot", "book"]

[booking]
slot_minutes = 60
resources = ["Priya", "Arun"]
opens = "10:00"
closes = "20:00"

[booking.google_calendar]
credentials_env = "SALOON_GOOGLE_CREDENTIALS"

[booking.google_calendar.calendars]
Priya = "{PRIYA}"
Arun = "{ARUN}"
"""


def _local(day: int, hour: int) -> datetime:
    """2026-12-<day> <hour>:00 in Chennai, as UTC."""
    return datetime(2026, 12, day, hour, tzinfo=UTC) - timedelta(hours=5, minutes=30)


@pytest.fixture
async def fake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[FakeGoogleCalendar]:
    busy.clear_cache()
    async with FakeGoogleCalendar() as double:
        key = tmp_path / "key.json"  # the variable may hold the key's path (or the key itself)
        key.write_text(json.dumps(double.service_account_key()), encoding="utf-8")
        monkeypatch.setenv("SALOON_GOOGLE_CREDENTIALS", str(key))
        monkeypatch.setenv("GOOGLE_CALENDAR_API_URL", double.api_url)
        yield double
    busy.clear_cache()


def _box(tmp_path: Path, db: Database, call_sid: str = "CA1") -> tuple[ToolBox, list[ToolOutcome]]:
    outcomes: list[ToolOutcome] = []
    ctx = ToolContext(
        tenant=tool_tenant(tmp_path, "saloon", CONFIG),
        db=db,
        call_sid=call_sid,
        caller_number="+919812345678",
        clock=lambda: NOW,
    )
    return ToolBox(ctx, on_outcome=outcomes.append), outcomes


def _sync(tmp_path: Path, db: Database, clock: list[datetime]) -> CalendarSync:
    tool_tenant(tmp_path, "saloon", CONFIG)
    return CalendarSync(
        db, TenantRepository(tmp_path / "tenants"), backoff_base_s=30, clock=lambda: clock[0]
    )


async def _booked(tmp_path: Path, db: Database, time: str, resource: str, sid: str) -> str:
    box, _ = _box(tmp_path, db, sid)
    out = await box.run(
        "book",
        {"date": "2026-12-08", "time": time, "name": "Asha", "resource": resource,
         "service": "haircut"},
    )  # fmt: skip
    assert out["booked"] is True, out
    assert await store.confirm_call(db, sid) == 1
    return str(out["reference"])


async def test_confirmed_booking_is_one_event_even_after_a_retry(
    tmp_path: Path, db: Database, fake: FakeGoogleCalendar
) -> None:
    reference = await _booked(tmp_path, db, "16:00", "Priya", "CA1")
    box, _ = _box(tmp_path, db, "CA2")
    await box.run(
        "book", {"date": "2026-12-08", "time": "17:00", "name": "Ravi"}
    )  # never confirmed
    clock = [NOW]
    sync = _sync(tmp_path, db, clock)
    assert await sync.run_once() == 1
    events = fake.live(PRIYA)
    assert [e.id for e in events] == [event_id_for("saloon", reference)]
    body = events[0].body
    assert body["extendedProperties"]["private"]["receptionist_booking"] == reference
    assert body["start"]["dateTime"] == _local(8, 16).isoformat()
    assert body["summary"] == "Asha: haircut" and fake.live(ARUN) == []
    assert await sync.run_once() == 0  # in step: nothing to do
    # the push went through but its record was lost (a crash between the two): tried again
    async with db.begin() as conn:
        await conn.execute(sa.update(calendar_sync).values(pushed=None))
    assert await sync.run_once() == 1
    assert [e.id for e in fake.live()] == [event_id_for("saloon", reference)]
    assert fake.token_requests == 1  # one access token, kept for the next pushes


async def test_a_cancelled_booking_is_removed(
    tmp_path: Path, db: Database, fake: FakeGoogleCalendar
) -> None:
    reference = await _booked(tmp_path, db, "11:00", "Arun", "CA1")
    clock = [NOW]
    sync = _sync(tmp_path, db, clock)
    await sync.run_once()
    assert len(fake.live(ARUN)) == 1
    async with db.begin() as conn:
        await conn.execute(
            sa.update(bookings)
            .where(bookings.c.reference == reference)
            .values(status=BOOKING_CANCELLED)
        )
    assert await sync.run_once() == 1
    assert fake.live() == []
    assert fake.events[(ARUN, event_id_for("saloon", reference))].deleted
    deletes = [c for c in fake.calls if c[0] == "DELETE"]
    assert await sync.run_once() == 0 and len(deletes) == 1
    # confirmed again (an owner's undo): the deleted event, whose id Google keeps, comes back
    async with db.begin() as conn:
        await conn.execute(
            sa.update(bookings)
            .where(bookings.c.reference == reference)
            .values(status=BOOKING_CONFIRMED)
        )
    assert await sync.run_once() == 1
    assert [e.id for e in fake.live(ARUN)] == [event_id_for("saloon", reference)]


async def test_failures_back_off_and_are_visible(
    tmp_path: Path, db: Database, fake: FakeGoogleCalendar
) -> None:
    reference = await _booked(tmp_path, db, "12:00", "Priya", "CA1")
    clock = [NOW]
    sync = _sync(tmp_path, db, clock)
    fake.down = True
    assert await sync.run_once() == 1
    problems = await sync_problems(db, "saloon", max_attempts=sync.max_attempts)
    assert [(p.reference, p.attempts, p.last_error) for p in problems] == [
        (reference, 1, "insert event: HTTP 503")
    ]
    assert await sync.run_once() == 0  # backing off: not before 30 s
    clock[0] = NOW + timedelta(seconds=31)
    assert await sync.run_once() == 1  # still down: the next wait doubles
    assert (await sync_problems(db, "saloon", max_attempts=8))[0].attempts == 2
    fake.down = False
    clock[0] = NOW + timedelta(seconds=31 + 61)
    assert await sync.run_once() == 1
    assert len(fake.live(PRIYA)) == 1
    assert await sync_problems(db, "saloon", max_attempts=8) == []


async def test_owner_busy_time_blocks_the_slot(
    tmp_path: Path, db: Database, fake: FakeGoogleCalendar
) -> None:
    fake.add_owner_event(PRIYA, _local(8, 16), _local(8, 17))
    fake.add_owner_event(ARUN, _local(8, 15), _local(8, 17), transparency="transparent")  # "free"
    box, outcomes = _box(tmp_path, db)
    priya = await box.run(
        "check_slot", {"date": "2026-12-08", "time": "16:00", "resource": "Priya"}
    )
    assert priya["free"] is False
    assert priya["next_free"][0] == {"date": "2026-12-08", "time": "17:00", "resource": "Priya"}
    anyone = await box.run("check_slot", {"date": "2026-12-08", "time": "16:00"})
    assert anyone == {"date": "2026-12-08", "time": "16:00", "free": True, "resource": "Arun"}
    held = await box.run(
        "book", {"date": "2026-12-08", "time": "16:00", "name": "Asha", "resource": "Priya"}
    )
    assert held["booked"] is False and held["next_free"][0]["time"] == "17:00"
    # one fetch of the calendars served the three questions (cached per tenant)
    assert len([c for c in fake.calls if c[0] == "GET"]) == 2  # one list per calendar
    assert [o.status for o in outcomes] == ["ok", "ok", "ok"]


async def test_calendar_down_or_slow_answers_from_the_database(
    tmp_path: Path, db: Database, fake: FakeGoogleCalendar
) -> None:
    await _booked(tmp_path, db, "16:00", "Priya", "CA1")
    busy.clear_cache()  # the booking's own look-up is cached: ask the calendar again
    fake.down = True
    box, outcomes = _box(tmp_path, db, "CA2")
    out = await box.run("check_slot", {"date": "2026-12-08", "time": "16:00"})
    assert out["free"] is True and out["resource"] == "Arun"  # Priya's booking: from our DB
    assert out["note"] == CALENDAR_NOTE
    assert outcomes[-1].status == "ok" and "HTTP 503" in outcomes[-1].detail
    busy.clear_cache()
    fake.down = False
    fake.hold()  # the calendar answers nothing until released: the tool does not wait for it
    try:
        slow = await box.run("check_slot", {"date": "2026-12-08", "time": "17:00"})
        assert slow["free"] is True and slow["note"] == CALENDAR_NOTE
        assert "no answer" in outcomes[-1].detail
    finally:
        fake.release()


async def test_without_the_key_the_sync_fails_visibly(
    tmp_path: Path, db: Database, fake: FakeGoogleCalendar, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _booked(tmp_path, db, "13:00", "Priya", "CA1")
    tokens = fake.token_requests  # the booking's own look-up of busy times fetched one
    monkeypatch.setenv("SALOON_GOOGLE_CREDENTIALS", '{"type": "authorized_user"}')
    sync = _sync(tmp_path, db, [NOW])
    assert await sync.run_once() == 1
    [problem] = await sync_problems(db, "saloon", max_attempts=8)
    assert "SALOON_GOOGLE_CREDENTIALS is not a service account" in problem.last_error
    assert "authorized_user" not in problem.last_error
    assert fake.live() == [] and fake.token_requests == tokens


async def test_the_served_worker_pushes_bookings(
    tmp_path: Path, db: Database, fake: FakeGoogleCalendar
) -> None:
    from receptionist.config import Settings
    from receptionist.postcall.wiring import worker_from_settings

    reference = await _booked(tmp_path, db, "15:00", "Arun", "CA1")
    settings = Settings(
        database_url=db.url,
        notify_ai="off",
        notify_provider="log",
        recordings_spool_dir=tmp_path / "spool",
        recordings_dir=tmp_path / "recordings",
    )
    worker = worker_from_settings(settings, db, TenantRepository(tmp_path / "tenants"))
    assert worker.calendar is not None
    worker.calendar.clock = lambda: NOW
    try:
        await worker.drain()
    finally:
        await worker.aclose()
    assert [e.id for e in fake.live(ARUN)] == [event_id_for("saloon", reference)]


async def test_one_shared_calendar_our_events_do_not_block(
    tmp_path: Path, db: Database, fake: FakeGoogleCalendar
) -> None:
    shared = CONFIG.split("[booking.google_calendar.calendars]")[0] + 'calendar_id = "shop@x.com"\n'
    tenant = tool_tenant(tmp_path / "shared", "saloon", shared)

    async def ask(time: str, **extra: str) -> dict:
        ctx = ToolContext(tenant=tenant, db=db, call_sid="CA7", clock=lambda: NOW)
        return await ToolBox(ctx).run("check_slot", {"date": "2026-12-08", "time": time, **extra})

    box = ToolBox(ToolContext(tenant=tenant, db=db, call_sid="CA1", clock=lambda: NOW))
    held = await box.run("book", {"date": "2026-12-08", "time": "18:00", "name": "Asha"})
    assert held["resource"] == "Priya"
    await store.confirm_call(db, "CA1")
    sync = CalendarSync(db, TenantRepository(tmp_path / "shared" / "tenants"), clock=lambda: NOW)
    assert await sync.run_once() == 1 and len(fake.live("shop@x.com")) == 1
    fake.add_owner_event("shop@x.com", _local(8, 12), _local(8, 13))
    busy.clear_cache()
    # our own event is Priya's booking (taken in the database), not a busy time for Arun
    assert (await ask("18:00"))["resource"] == "Arun"
    # the owner's own event in the shared calendar blocks everyone
    noon = await ask("12:00")
    assert noon["free"] is False and noon["next_free"][0]["time"] == "13:00"
