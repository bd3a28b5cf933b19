"""Opening hours and the slot grid, pure: what a slot is, whether the business is open then,
and the slots after a given one. Times are the tenant's local time; the store keeps UTC."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from receptionist.tenants.hours import clock_minutes
from receptionist.tenants.tool_checks import BookingSettings

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


def _hhmm(m: int) -> str:
    return f"{m // 60:02d}:{m % 60:02d}"


def _spans(settings: BookingSettings, day: date) -> list[tuple[int, int]]:
    """The day's opening spans in minutes (tenants.hours: the one definition of hours)."""
    return [(clock_minutes(a), clock_minutes(b)) for a, b in settings.hours.on(day.weekday())]


def check_slot(settings: BookingSettings, zone: ZoneInfo, day: date, at: time) -> Slot:
    """The slot starting at `at` on `day`, or BadSlot saying why it cannot be one. Slots start
    every `slot_minutes` from each opening of the day and end by its closing."""
    spans = _spans(settings, day)
    if not spans:
        raise BadSlot(f"we are closed on {day.strftime('%A')}s")
    step, start_m = settings.slot_minutes, at.hour * 60 + at.minute
    inside = next(((o, c) for o, c in spans if o <= start_m and start_m + step <= c), None)
    if inside is None:
        said = "; ".join(
            f"from {_hhmm(o)}, the last one starting by {_hhmm(_last_start(o, c, step))}"
            for o, c in spans
            if c - o >= step
        )
        raise BadSlot(f"we take appointments {said or 'at no time that day'}")
    if (start_m - inside[0]) % step:
        raise BadSlot(f"appointments start every {step} minutes from {_hhmm(inside[0])}")
    start = datetime.combine(day, at, zone)
    return Slot(start, start + timedelta(minutes=step))


def _last_start(open_m: int, close_m: int, step: int) -> int:
    return open_m + (close_m - step - open_m) // step * step


def slots_from(
    settings: BookingSettings, zone: ZoneInfo, start: datetime, *, days: int = 7
) -> Iterator[Slot]:
    """Every slot starting at or after `start` (local), for `days` days."""
    step = settings.slot_minutes
    day = start.date()
    for _ in range(days):
        for open_m, close_m in _spans(settings, day):
            m = open_m
            while m + step <= close_m:
                s = datetime.combine(day, time(m // 60, m % 60), zone)
                if s >= start:
                    yield Slot(s, s + timedelta(minutes=step))
                m += step
        day += timedelta(days=1)
