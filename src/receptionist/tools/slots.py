"""Opening hours and the slot grid, pure: what a slot is, whether the business is open then,
and the slots after a given one. Times are the tenant's local time; the store keeps UTC."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from receptionist.tenants.tool_checks import DAYS, BookingSettings

_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_CLOCK = re.compile(r"(\d{1,2})(?::(\d{2}))?\s*(am|pm)?", re.I)


class BadSlot(ValueError):
    """The date or time cannot be a slot; the message is polite and safe to say."""


def parse_date(text: str, today: date) -> date:
    word = text.strip().lower()
    if word == "today":
        return today
    if word == "tomorrow":
        return today + timedelta(days=1)
    m = _ISO_DATE.fullmatch(word)
    if m is None:
        raise BadSlot(f"the date {text[:20]!r} is not a date like 2025-03-01")
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        raise BadSlot(f"there is no such day as {text[:20]!r}") from None


def parse_time(text: str) -> time:
    m = _CLOCK.fullmatch(text.strip())
    if m is None:
        raise BadSlot(f"the time {text[:20]!r} is not a time like 16:00")
    hour, minute = int(m.group(1)), int(m.group(2) or 0)
    half = (m.group(3) or "").lower()
    if half and not 1 <= hour <= 12:
        raise BadSlot(f"the time {text[:20]!r} is not a time of day")
    if half == "pm" and hour != 12:
        hour += 12
    elif half == "am" and hour == 12:
        hour = 0
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise BadSlot(f"the time {text[:20]!r} is not a time of day")
    return time(hour, minute)


@dataclass(frozen=True, slots=True)
class Slot:
    start: datetime  # tenant's local time, aware
    end: datetime

    @property
    def utc_start(self) -> datetime:
        return self.start.astimezone(ZoneInfo("UTC"))

    @property
    def utc_end(self) -> datetime:
        return self.end.astimezone(ZoneInfo("UTC"))

    def said(self) -> dict[str, str]:
        return {"date": self.start.date().isoformat(), "time": self.start.strftime("%H:%M")}


def _minutes(t: time) -> int:
    return t.hour * 60 + t.minute


def check_slot(settings: BookingSettings, zone: ZoneInfo, day: date, at: time) -> Slot:
    """The slot starting at `at` on `day`, or BadSlot saying why it cannot be one."""
    if DAYS[day.weekday()] not in settings.days:
        raise BadSlot(f"we are closed on {day.strftime('%A')}s")
    start_m, open_m, close_m = _minutes(at), _minutes(settings.opens), _minutes(settings.closes)
    if start_m < open_m or start_m + settings.slot_minutes > close_m:
        raise BadSlot(
            f"we take appointments from {settings.opens.strftime('%H:%M')}, the last one"
            f" starting by {_last_start(settings)}"
        )
    if (start_m - open_m) % settings.slot_minutes:
        raise BadSlot(
            f"appointments start every {settings.slot_minutes} minutes from"
            f" {settings.opens.strftime('%H:%M')}"
        )
    start = datetime.combine(day, at, zone)
    return Slot(start, start + timedelta(minutes=settings.slot_minutes))


def _last_start(settings: BookingSettings) -> str:
    m = _minutes(settings.closes) - settings.slot_minutes
    m -= (m - _minutes(settings.opens)) % settings.slot_minutes
    return f"{m // 60:02d}:{m % 60:02d}"


def slots_from(
    settings: BookingSettings, zone: ZoneInfo, start: datetime, *, days: int = 7
) -> Iterator[Slot]:
    """Every slot starting at or after `start` (local), for `days` days."""
    step = settings.slot_minutes
    open_m, close_m = _minutes(settings.opens), _minutes(settings.closes)
    day = start.date()
    for _ in range(days):
        if DAYS[day.weekday()] in settings.days:
            m = open_m
            while m + step <= close_m:
                s = datetime.combine(day, time(m // 60, m % 60), zone)
                if s >= start:
                    yield Slot(s, s + timedelta(minutes=step))
                m += step
        day += timedelta(days=1)
