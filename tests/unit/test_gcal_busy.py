"""What the owner's calendar says is busy: their own events only, whatever shape Google (or
anything pretending to be it) sends; and a booking's event id that Google accepts."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from receptionist.gcal.busy import BusyTimes
from receptionist.gcal.client import BOOKING_PROPERTY, BusyPeriod, busy_of, event_id_for
from receptionist.tenants.calendar_checks import GoogleCalendarSettings

IST = ZoneInfo("Asia/Kolkata")


def _at(text: str) -> dict[str, str]:
    return {"dateTime": text}


def test_only_the_owners_busy_events_count() -> None:
    items = [
        {"start": _at("2026-12-08T16:00:00+05:30"), "end": _at("2026-12-08T17:00:00+05:30")},
        {  # one of our bookings: the database has it
            "start": _at("2026-12-08T11:00:00+05:30"),
            "end": _at("2026-12-08T12:00:00+05:30"),
            "extendedProperties": {"private": {BOOKING_PROPERTY: "ABC234"}},
        },
        {
            "status": "cancelled",
            "start": _at("2026-12-08T12:00:00Z"),
            "end": _at("2026-12-08T13:00:00Z"),
        },
        {
            "transparency": "transparent",
            "start": _at("2026-12-08T13:00:00Z"),
            "end": _at("2026-12-08T14:00:00Z"),
        },
        {"start": {"date": "2026-12-10"}, "end": {"date": "2026-12-11"}},  # all day, our zone
        {"start": _at("2026-12-08T18:00:00"), "end": _at("2026-12-08T19:00:00")},  # no offset
        {"start": _at("not a time"), "end": _at("2026-12-08T19:00:00Z")},
        {"start": _at("2026-12-08T19:00:00Z"), "end": _at("2026-12-08T18:00:00Z")},  # backwards
        {"start": 5, "end": None},
        "junk",
        {"extendedProperties": "junk", "start": {}, "end": {}},
    ]
    assert busy_of(items, IST) == [
        BusyPeriod(datetime(2026, 12, 8, 16, tzinfo=IST), datetime(2026, 12, 8, 17, tzinfo=IST)),
        BusyPeriod(datetime(2026, 12, 10, tzinfo=IST), datetime(2026, 12, 11, tzinfo=IST)),
        BusyPeriod(datetime(2026, 12, 8, 18, tzinfo=IST), datetime(2026, 12, 8, 19, tzinfo=IST)),
    ]
    assert busy_of("not a list", IST) == []


def test_a_shared_calendar_blocks_everyone_and_its_own_blocks_one() -> None:
    period = BusyPeriod(
        datetime(2026, 12, 8, 10, tzinfo=UTC), datetime(2026, 12, 8, 11, tzinfo=UTC)
    )
    shared = GoogleCalendarSettings("K_ENV", calendar_id="c")
    busy = BusyTimes({"c": [period]}, shared)
    ten, half_past, eleven = (
        datetime(2026, 12, 8, h, m, tzinfo=UTC) for h, m in ((10, 0), (10, 30), (11, 0))
    )
    assert busy.blocks("Priya", half_past, eleven) and busy.blocks("Arun", ten, eleven)
    assert not busy.blocks("Priya", eleven, eleven.replace(hour=12))  # touching is not overlapping
    own = GoogleCalendarSettings("K_ENV", calendars=(("Priya", "p"), ("Arun", "a")))
    busy = BusyTimes({"p": [period]}, own)
    assert busy.blocks("Priya", ten, eleven) and not busy.blocks("Arun", ten, eleven)


def test_event_ids_are_what_google_accepts_and_stable() -> None:
    one = event_id_for("saloon", "ABC234")
    assert re.fullmatch(r"[a-v0-9]{5,1024}", one)
    assert one == event_id_for("saloon", "ABC234") != event_id_for("bakery", "ABC234")
