"""[tools] and [booking] in tenant.toml: what is kept, and every mistake reported with its line."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from receptionist.tenants.loading import load_tenant
from receptionist.tenants.tool_checks import (
    TOOL_NAMES,
    BookingSettings,
    GoogleCalendarSettings,
    Hours,
)
from receptionist.tools.spec import SPECS
from tests.unit.test_tenant_actions import BASE, make_tenant

_GC = (
    '[tools]\nenabled = ["book"]\n[booking]\nresources = ["Priya", "Arun"]\n'
    "[booking.google_calendar]\n"
)
_ENV = "credentials_env = 'GC_KEY'\n"


def _load(tmp_path: Path, extra: str) -> tuple[object, list[str]]:
    make_tenant(tmp_path, BASE + extra)
    tenant, problems = load_tenant(tmp_path, "shop")
    return tenant, [f"{p.line}: {p.message}" for p in problems]


def test_every_tool_name_has_a_spec() -> None:
    assert set(SPECS) == set(TOOL_NAMES)


def test_tools_and_booking_are_kept(tmp_path: Path) -> None:
    tenant, problems = _load(
        tmp_path,
        '\n[tools]\nenabled = ["book", "quote", "book"]\n\n[booking]\nslot_minutes = 45\n'
        'resources = ["Priya", "Arun"]\nopens = "9:30"\ndays = ["sat", "mon"]\n',
    )
    assert problems == []
    tools = tenant.tools  # type: ignore[attr-defined]
    assert tools.enabled == ("book", "quote")
    assert tools.booking == BookingSettings(
        slot_minutes=45,
        resources=("Priya", "Arun"),
        hours=Hours.weekly(("mon", "sat"), time(9, 30), time(20, 0), "Asia/Kolkata"),
    )
    assert tools.booking.hours.on(0) == [(time(9, 30), time(20, 0))]
    assert tools.booking.hours.on(1) == []


def test_booking_hours_lines_like_the_handoffs(tmp_path: Path) -> None:
    """The same hours lines as [handoff]: two spans a day around lunch, Sunday closed."""
    tenant, problems = _load(
        tmp_path,
        '\n[tools]\nenabled = ["book"]\n\n[booking]\n'
        'hours = ["mon-sat 10:00-13:00", "mon-sat 14:00-19:00"]\n',
    )
    assert problems == []
    hours = tenant.tools.booking.hours  # type: ignore[attr-defined]
    assert hours.on(5) == [(time(10, 0), time(13, 0)), (time(14, 0), time(19, 0))]
    assert hours.on(6) == []


def test_no_tools_by_default_and_booking_defaults(tmp_path: Path) -> None:
    tenant, problems = _load(tmp_path, "")
    assert problems == [] and tenant.tools.enabled == ()  # type: ignore[attr-defined]
    tenant, problems = _load(tmp_path / "2", '\n[tools]\nenabled = ["check_slot"]\n')
    assert tenant.tools.booking == BookingSettings()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ('[tools]\nenabled = ["bok"]\n', "unknown tool 'bok'; did you mean 'book'?"),
        ('[tools]\nenabled = "book"\n', "must be a list of names"),
        ("[tools]\nenable = []\n", "unknown key 'enable'"),
        ("[tools]\nenabled = [1]\n", "must be a list of names"),
        ("[booking]\nslot_minutes = 30\n", "no [tools] enabled uses it"),
        ('[tools]\nenabled = ["book"]\n[booking]\nslot_minutes = 0\n', "slot_minutes must be"),
        ('[tools]\nenabled = ["book"]\n[booking]\nhold_minutes = true\n', "hold_minutes must be"),
        ('[tools]\nenabled = ["book"]\n[booking]\nopens = "25:00"\n', 'like "10:00"'),
        ('[tools]\nenabled = ["book"]\n[booking]\nopens = "20:00"\ncloses = "09:00"\n', "later"),
        ('[tools]\nenabled = ["book"]\n[booking]\nresources = []\n', "resources must be"),
        ('[tools]\nenabled = ["book"]\n[booking]\nresources = ["A", "a"]\n', "different"),
        ('[tools]\nenabled = ["book"]\n[booking]\ndays = ["someday"]\n', "days must be"),
        ('[tools]\nenabled = ["book"]\n[booking]\nhours = ["mon 9-5"]\n', "write it like"),
        (
            '[tools]\nenabled = ["book"]\n[booking]\n'
            'hours = ["daily 10:00-19:00"]\nopens = "9:00"\n',
            "booking hours replaces opens",
        ),
        ('[tools]\nenabled = ["book"]\n[booking]\nslot = 30\n', "unknown key 'slot'"),
        (f"{_GC}calendar_id = 'a@b.com'\ncredentials_env = 'ya29xAbCdEfGh1234567890'\n", "NAME an"),
        (f"{_GC}credentials_env = 'GC_KEY'\n", "needs calendar_id"),
        (f"{_GC}{_ENV}calendar_id = 'has space'\n", "must be a Google calendar id"),
        (f"{_GC}{_ENV}calendar_id = 'a@b.com'\npush = 'yes'\n", "push must be true or false"),
        (f"{_GC}{_ENV}calendar_id = 'a@b.com'\ncalendar = 'x'\n", "unknown key 'calendar'"),
        (
            f"{_GC}{_ENV}calendar_id = 'a'\n[booking.google_calendar.calendars]\nPriya = 'p'\n",
            "not both",
        ),
        (
            f"{_GC}{_ENV}[booking.google_calendar.calendars]\nPriya = 'p@x.com'\n",
            "no calendar for Arun",
        ),
        (
            f"{_GC}{_ENV}[booking.google_calendar.calendars]\nPriya = 'p'\nArun = 'a'\nBob = 'b'\n",
            "names 'Bob'",
        ),
        ('[tools]\nenabled = ["book"]\n[booking]\ngoogle_calendar = 3\n', "must be a table"),
    ],
)
def test_mistakes_are_reported(tmp_path: Path, extra: str, says: str) -> None:
    tenant, problems = _load(tmp_path, "\n" + extra)
    assert tenant is None
    assert any(says in p for p in problems), problems
    assert all(not p.startswith("None") for p in problems if "no [tools]" not in p), problems


def test_google_calendar_is_kept(tmp_path: Path) -> None:
    tenant, problems = _load(
        tmp_path,
        f"\n{_GC}{_ENV}block_busy = false\n[booking.google_calendar.calendars]\n"
        "Priya = 'priya@example.com'\nArun = 'team@group.calendar.google.com'\n",
    )
    assert problems == []
    calendar = tenant.tools.booking.google_calendar  # type: ignore[attr-defined]
    assert calendar == GoogleCalendarSettings(
        credentials_env="GC_KEY",
        calendars=(("Priya", "priya@example.com"), ("Arun", "team@group.calendar.google.com")),
        block_busy=False,
    )
    assert calendar.calendar_for("Arun") == "team@group.calendar.google.com"
    assert calendar.push is True


def test_a_pasted_key_is_never_echoed(tmp_path: Path) -> None:
    secret = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"
    _, problems = _load(tmp_path, f"\n{_GC}calendar_id = 'a@b.com'\ncredentials_env = '{secret}'\n")
    assert problems and not any(secret in p for p in problems)
