"""Checks of tenant.toml's `[booking.google_calendar]`: the owner's Google Calendar, kept in step
with the bookings (confirmed ones in, cancelled ones out) and read for the owner's own busy times.

The credentials are never in the file: `credentials_env` names an environment variable holding a
service account's JSON key (or the path to it). Nothing here reads that variable; the calendar
client does, when it needs it (receptionist.gcal)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .report import Report, is_env_name, suggest

__all__ = ["GoogleCalendarSettings", "check_google_calendar"]

KEYS = ("credentials_env", "calendar_id", "calendars", "push", "block_busy")
# what Google's calendar ids look like: "primary", an address, "...@group.calendar.google.com"
_CALENDAR_ID = re.compile(r"[A-Za-z0-9._%+#@-]{1,254}")
_PATH = ("booking", "google_calendar")


@dataclass(frozen=True, slots=True)
class GoogleCalendarSettings:
    """`calendar_id`: one calendar for every resource; `calendars`: (resource, calendar id) each."""

    credentials_env: str
    calendar_id: str | None = None
    calendars: tuple[tuple[str, str], ...] = ()
    push: bool = True  # confirmed bookings become events; cancelled or expired ones are removed
    block_busy: bool = True  # the owner's own events make their slots taken

    def calendar_for(self, resource: str) -> str:
        for name, calendar in self.calendars:
            if name == resource:
                return calendar
        assert self.calendar_id is not None  # checked: every resource has a calendar
        return self.calendar_id

    @property
    def calendar_ids(self) -> tuple[str, ...]:
        if self.calendar_id is not None:
            return (self.calendar_id,)
        return tuple(dict.fromkeys(c for _, c in self.calendars))


def _calendar_id(r: Report, value: Any, path: tuple[str, ...], what: str) -> str | None:
    if not isinstance(value, str) or not _CALENDAR_ID.fullmatch(value.strip()):
        r.add_config(
            path,
            f"{what} must be a Google calendar id in quotes, like "
            '"owner@example.com" or "abc123@group.calendar.google.com"',
        )
        return None
    return value.strip()


def check_google_calendar(
    r: Report, table: Any, resources: tuple[str, ...]
) -> GoogleCalendarSettings | None:
    if not isinstance(table, dict):
        r.add_config(_PATH, "booking google_calendar must be a table: [booking.google_calendar]")
        return None
    before = len(r.problems)
    for key in table:
        if key not in KEYS:
            r.add_config(
                (*_PATH, key),
                f"unknown key {key!r} in [booking.google_calendar]{suggest(key, KEYS)} "
                f"(allowed here: {', '.join(KEYS)})",
            )
    env = table.get("credentials_env")
    if not isinstance(env, str) or not is_env_name(env):
        # never echoed: a pasted key here is a secret
        r.add_config(
            (*_PATH, "credentials_env"),
            "booking google_calendar credentials_env must NAME an environment variable holding "
            'the service account\'s JSON key or its path (e.g. "SALOON_GOOGLE_CREDENTIALS"), '
            "never the key itself",
        )
    flags = {}
    for key in ("push", "block_busy"):
        value = table.get(key, True)
        if not isinstance(value, bool):
            r.add_config((*_PATH, key), f"booking google_calendar {key} must be true or false")
        flags[key] = value is not False
    calendar_id: str | None = None
    pairs: list[tuple[str, str]] = []
    if "calendar_id" in table and "calendars" in table:
        r.add_config(
            (*_PATH, "calendars"),
            "booking google_calendar takes calendar_id (one calendar) or calendars "
            "(one per resource), not both",
        )
    elif "calendar_id" in table:
        calendar_id = _calendar_id(
            r, table["calendar_id"], (*_PATH, "calendar_id"), "booking google_calendar calendar_id"
        )
    elif isinstance(table.get("calendars"), dict):
        given: dict[str, Any] = table["calendars"]
        for name, value in given.items():
            if name not in resources:
                r.add_config(
                    (*_PATH, "calendars", name),
                    f"booking google_calendar calendars names {name!r}, not one of the "
                    f"resources ({', '.join(resources)})",
                )
                continue
            cal = _calendar_id(r, value, (*_PATH, "calendars", name), f"the calendar of {name!r}")
            if cal is not None:
                pairs.append((name, cal))
        missing = [x for x in resources if x not in given]
        if missing:
            r.add_config(
                (*_PATH, "calendars"),
                f"booking google_calendar calendars has no calendar for {', '.join(missing)}",
            )
    else:
        r.add_config(
            (*_PATH, "calendars") if "calendars" in table else _PATH,
            'booking google_calendar needs calendar_id = "..." (one calendar) or a table '
            "[booking.google_calendar.calendars] with a calendar id per resource",
        )
    if len(r.problems) != before:
        return None
    assert isinstance(env, str)
    return GoogleCalendarSettings(
        credentials_env=env,
        calendar_id=calendar_id,
        calendars=tuple(pairs),
        push=flags["push"],
        block_busy=flags["block_busy"],
    )
