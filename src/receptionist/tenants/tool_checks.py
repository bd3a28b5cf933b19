"""Checks of tenant.toml's `[tools]` (which tools the agent may use during a call) and
`[booking]` (what a slot is: opening hours, slot length, staff or chairs, how long a hold lasts).

The tools themselves live in `receptionist.tools`; this module only knows their names, so the
tenants package stays below the store and the engines."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time
from typing import Any

from .calendar_checks import GoogleCalendarSettings, check_google_calendar
from .report import Report, suggest

__all__ = [
    "DAYS",
    "TOOL_NAMES",
    "BookingSettings",
    "GoogleCalendarSettings",
    "ToolSettings",
    "check_tools",
]

#: Every tool a tenant may enable (receptionist.tools implements each).
TOOL_NAMES: tuple[str, ...] = ("check_slot", "book", "quote", "order_status", "handoff")
#: Tools that need `[booking]`.
BOOKING_TOOLS = frozenset({"check_slot", "book"})
DAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_RESOURCES = 50
MAX_RESOURCE_CHARS = 60
BOOKING_KEYS = (
    "slot_minutes",
    "hold_minutes",
    "resources",
    "opens",
    "closes",
    "days",
    "max_days_ahead",
    "google_calendar",
)
_CLOCK = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


@dataclass(frozen=True, slots=True)
class BookingSettings:
    """`[booking]`: one booking takes one slot of one resource (a stylist, a chair, a doctor)."""

    slot_minutes: int = 30
    hold_minutes: int = 10  # a pending hold frees its slot after this long unless confirmed
    resources: tuple[str, ...] = ("any",)
    opens: time = time(10, 0)
    closes: time = time(20, 0)
    days: tuple[str, ...] = DAYS  # the days open, of DAYS
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


def _int(r: Report, table: dict[str, Any], key: str, default: int, lo: int, hi: int) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        r.add_config(("booking", key), f"booking {key} must be a whole number {lo}-{hi}")
        return default
    return value


def _booking(r: Report, table: Any) -> BookingSettings | None:
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
    slot = _int(r, table, "slot_minutes", 30, 5, 480)
    hold = _int(r, table, "hold_minutes", 10, 1, 120)
    ahead = _int(r, table, "max_days_ahead", 60, 1, 366)
    opens = _clock(r, table, "opens", time(10, 0))
    closes = _clock(r, table, "closes", time(20, 0))
    if closes <= opens:
        r.add_config(("booking", "closes"), "booking closes must be later than opens")
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
    days = table.get("days", list(DAYS))
    if not isinstance(days, list) or not days or any(d not in DAYS for d in days):
        r.add_config(("booking", "days"), f"booking days must be a list of {', '.join(DAYS)}")
        days = list(DAYS)
    kept = tuple(x.strip() for x in resources)
    calendar = None
    if "google_calendar" in table:
        calendar = check_google_calendar(r, table["google_calendar"], kept)
    return BookingSettings(
        slot_minutes=slot,
        hold_minutes=hold,
        resources=kept,
        opens=opens,
        closes=closes,
        days=tuple(d for d in DAYS if d in days),
        max_days_ahead=ahead,
        google_calendar=calendar,
    )


def check_tools(r: Report, config: dict[str, Any]) -> ToolSettings:
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
        booking = _booking(r, booking_table)
    elif BOOKING_TOOLS & set(names):
        booking = BookingSettings()  # the defaults: one resource, 10:00-20:00, 30-minute slots
    return ToolSettings(enabled=tuple(names), booking=booking)
