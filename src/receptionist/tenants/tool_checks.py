"""Checks of tenant.toml's `[tools]` (which tools the agent may use during a call) and
`[booking]` (what a slot is: opening hours, slot length, staff or chairs, how long a hold lasts).

The tools themselves live in `receptionist.tools`; this module only knows their names, so the
tenants package stays below the store and the engines."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import time
from typing import Any

from .calendar_checks import GoogleCalendarSettings, check_google_calendar
from .hours import DAYS, Hours, hours_value
from .report import Report, suggest

__all__ = [
    "DAYS",
    "TOOL_NAMES",
    "BookingSettings",
    "GoogleCalendarSettings",
    "Hours",
    "ToolSettings",
    "check_tools",
]

#: Every tool a tenant may enable (receptionist.tools implements each).
TOOL_NAMES: tuple[str, ...] = ("check_slot", "book", "quote", "order_status", "handoff")
#: Tools that need `[booking]`.
BOOKING_TOOLS = frozenset({"check_slot", "book"})
MAX_RESOURCES = 50
MAX_RESOURCE_CHARS = 60
BOOKING_KEYS = (
    "slot_minutes",
    "hold_minutes",
    "resources",
    "hours",
    "opens",
    "closes",
    "days",
    "max_days_ahead",
    "google_calendar",
)
DEFAULT_HOURS = Hours.weekly(DAYS, time(10, 0), time(20, 0))
_CLOCK = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


@dataclass(frozen=True, slots=True)
class BookingSettings:
    """`[booking]`: one booking takes one slot of one resource (a stylist, a chair, a doctor)."""

    slot_minutes: int = 30
    hold_minutes: int = 10  # the least a hold lasts: it outlives its call (functions.hold_time)
    resources: tuple[str, ...] = ("any",)
    # when appointments can be had: `hours` lines like [handoff]'s (several spans a day, e.g.
    # around lunch), or the same `opens`-`closes` on each of `days`; the default 10:00-20:00 daily
    hours: Hours = DEFAULT_HOURS
    max_days_ahead: int = 60
    # the owner's Google Calendar, kept in step with the bookings ([booking.google_calendar])
    google_calendar: GoogleCalendarSettings | None = None


@dataclass(frozen=True, slots=True)
class ToolSettings:
    enabled: tuple[str, ...] = ()
    booking: BookingSettings | None = None


def _clock(r: Report, table: dict[str, Any], key: str, default: time) -> time:
    value = table.get(key)
    if value is None:
        return default
    m = _CLOCK.fullmatch(value) if isinstance(value, str) else None
    if m is None:
        r.add_config(("booking", key), f'booking {key} must be a time like "10:00"; got {value!r}')
        return default
    return time(int(m.group(1)), int(m.group(2)))


def _booking_hours(r: Report, table: dict[str, Any], tz: str) -> Hours:
    weekly = [key for key in ("opens", "closes", "days") if key in table]
    if "hours" in table:
        if weekly:
            r.add_config(
                ("booking", "hours"),
                f"booking hours replaces {', '.join(weekly)}: give one or the other",
            )
        return hours_value(r, table, ("booking",), tz) or replace(DEFAULT_HOURS, timezone=tz)
    opens = _clock(r, table, "opens", time(10, 0))
    closes = _clock(r, table, "closes", time(20, 0))
    if closes <= opens:
        r.add_config(("booking", "closes"), "booking closes must be later than opens")
    days = table.get("days", list(DAYS))
    if not isinstance(days, list) or not days or any(d not in DAYS for d in days):
        r.add_config(("booking", "days"), f"booking days must be a list of {', '.join(DAYS)}")
        days = list(DAYS)
    return Hours.weekly(tuple(d for d in DAYS if d in days), opens, closes, tz)


def _booking(r: Report, table: Any, tz: str) -> BookingSettings | None:
    if not isinstance(table, dict):
        r.add_config(("booking",), "booking must be a table: [booking]")
        return None
    allowed = BOOKING_KEYS
    for key in table:
        if key not in allowed:
            r.add_config(
                ("booking", key),
                f"unknown key {key!r} in [booking]{suggest(key, allowed)} "
                f"(allowed here: {', '.join(allowed)})",
            )
    path = ("booking",)
    slot = r.int_value(table, "slot_minutes", path, 5, 480, 30)
    hold = r.int_value(table, "hold_minutes", path, 1, 120, 10)
    ahead = r.int_value(table, "max_days_ahead", path, 1, 366, 60)
    hours = _booking_hours(r, table, tz)
    resources = table.get("resources", ["any"])
    if (
        not isinstance(resources, list)
        or not resources
        or len(resources) > MAX_RESOURCES
        or not all(
            isinstance(x, str) and 0 < len(x.strip()) <= MAX_RESOURCE_CHARS for x in resources
        )
        or len({x.strip().lower() for x in resources}) != len(resources)
    ):
        r.add_config(
            ("booking", "resources"),
            f"booking resources must be a list of 1-{MAX_RESOURCES} different names "
            '(staff or chairs), e.g. ["Priya", "Arun"]',
        )
        resources = ["any"]
    kept = tuple(x.strip() for x in resources)
    calendar = None
    if "google_calendar" in table:
        calendar = check_google_calendar(r, table["google_calendar"], kept)
    return BookingSettings(
        slot_minutes=slot,
        hold_minutes=hold,
        resources=kept,
        hours=hours,
        max_days_ahead=ahead,
        google_calendar=calendar,
    )


def check_tools(r: Report, config: dict[str, Any], tz: str = "Asia/Kolkata") -> ToolSettings:
    tools = config.get("tools")
    booking_table = config.get("booking")
    if tools is None:
        if booking_table is not None:
            r.add_config(("booking",), "[booking] is set but no [tools] enabled uses it")
        return ToolSettings()
    if not isinstance(tools, dict):
        r.add_config(("tools",), "tools must be a table: [tools] with enabled = [...]")
        return ToolSettings()
    for key in tools:
        if key != "enabled":
            r.add_config(("tools", key), f"unknown key {key!r} in [tools] (allowed here: enabled)")
    enabled = tools.get("enabled", [])
    if not isinstance(enabled, list) or not all(isinstance(x, str) for x in enabled):
        r.add_config(("tools", "enabled"), "tools enabled must be a list of names in quotes")
        return ToolSettings()
    names: list[str] = []
    for name in enabled:
        if name not in TOOL_NAMES:
            r.add_config(
                ("tools", "enabled"),
                f"unknown tool {name!r}{suggest(name, TOOL_NAMES)}"
                f" (one of {', '.join(TOOL_NAMES)})",
            )
        elif name not in names:
            names.append(name)
    booking = None
    if booking_table is not None:
        booking = _booking(r, booking_table, tz)
    elif BOOKING_TOOLS & set(names):
        # the defaults: one resource, 10:00-20:00 daily, 30-minute slots
        booking = BookingSettings(hours=replace(DEFAULT_HOURS, timezone=tz))
    return ToolSettings(enabled=tuple(names), booking=booking)
