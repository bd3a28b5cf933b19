"""Weekly hours, the one definition: when a person takes hand-offs and callbacks (`[handoff]`,
`[callbacks]` hours) and when appointments can be booked (`[booking]`: `hours` lines, or
`opens`, `closes` and `days`). Plain values in the tenant's time zone; checked where the tables
are (handoff_checks.py, tool_checks.py) through :func:`hours_value`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .report import Report, type_name

__all__ = ["DAYS", "Hours", "clock_minutes", "hours_value", "parse_hours_line"]

DAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_LINE = re.compile(
    r"(?P<days>daily|[a-z]{3}(?:-[a-z]{3})?(?:,[a-z]{3}(?:-[a-z]{3})?)*)\s+"
    r"(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})"
)
Span = tuple[frozenset[int], time, time]


def _clock(text: str) -> time | None:
    hour, _, minute = text.partition(":")
    h, m = int(hour), int(minute)
    if h == 24 and m == 0:
        return time.max
    if not (0 <= h <= 23 and 0 <= m <= 59):
        return None
    return time(h, m)


def clock_minutes(t: time) -> int:
    """Minutes since midnight; the end of the day ("24:00", kept as time.max) is 1440."""
    return 24 * 60 if t == time.max else t.hour * 60 + t.minute


def parse_hours_line(line: str) -> Span | str:
    """``"mon-sat 10:00-19:00"`` -> (weekdays 0-5, 10:00, 19:00), or what is wrong with it."""
    m = _LINE.fullmatch(line.strip().lower())
    if m is None:
        return 'write it like "mon-sat 10:00-19:00" or "daily 09:00-21:00"'
    days: set[int] = set()
    if m["days"] == "daily":
        days = set(range(7))
    else:
        for part in m["days"].split(","):
            first, _, last = part.partition("-")
            if first not in DAYS or (last and last not in DAYS):
                return f"unknown day in {part!r} (days are {', '.join(DAYS)})"
            a, b = DAYS.index(first), DAYS.index(last or first)
            days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    start, end = _clock(m["start"]), _clock(m["end"])
    if start is None or end is None:
        return "times are HH:MM from 00:00 to 24:00"
    if end <= start:
        return "the closing time must be after the opening time (split a night into two lines)"
    return frozenset(days), start, end


@dataclass(frozen=True, slots=True)
class Hours:
    """Weekly hours in one time zone: (weekdays, from, to) spans, Monday = 0."""

    spans: tuple[Span, ...]
    timezone: str = "Asia/Kolkata"

    @classmethod
    def weekly(
        cls, days: tuple[str, ...], opens: time, closes: time, timezone: str = "Asia/Kolkata"
    ) -> Hours:
        """The same hours on each of `days` (names of DAYS)."""
        return cls(((frozenset(DAYS.index(d) for d in days), opens, closes),), timezone)

    def is_open(self, at: datetime) -> bool:
        """Is ``at`` (timezone-aware) inside the hours, in the tenant's time zone?"""
        local = at.astimezone(ZoneInfo(self.timezone))
        now = local.time()
        return any(
            local.weekday() in days and start <= now < end for days, start, end in self.spans
        )

    def next_open(self, at: datetime) -> datetime | None:
        """``at`` when the hours are open then, else the next opening time (in the tenant's
        time zone); None when the hours never open."""
        if self.is_open(at):
            return at
        zone = ZoneInfo(self.timezone)
        local = at.astimezone(zone)
        for ahead in range(8):  # a weekly schedule opens within a week, if ever
            day = local.date() + timedelta(days=ahead)
            openings = [
                datetime.combine(day, start, zone)
                for start, _end in self.on(day.weekday())
                if datetime.combine(day, start, zone) > local
            ]
            if openings:
                return min(openings)
        return None

    def on(self, weekday: int) -> list[tuple[time, time]]:
        """The (from, to) spans of one weekday (Monday = 0), earliest first."""
        return sorted((start, end) for days, start, end in self.spans if weekday in days)


def hours_value(
    r: Report, table: dict[str, Any], path: tuple[str, ...], tz: str, *, required: bool = True
) -> Hours | None:
    """`hours = ["mon-sat 10:00-19:00", ...]` of the table at `path`, every problem reported;
    None when it is missing (reported if `required`) or wrong."""
    lines = table.get("hours")
    key = (*path, "hours")
    if lines is None:
        if required:
            r.add_config(
                key,
                f'{path[0]}.hours is missing: e.g. hours = ["mon-sat 10:00-19:00"] (local time)',
            )
        return None
    if isinstance(lines, str):
        lines = [lines]
    if not isinstance(lines, list) or not lines or not all(isinstance(x, str) for x in lines):
        r.add_config(
            key, f"{path[0]}.hours must be a list of lines in quotes, not {type_name(lines)}"
        )
        return None
    spans = []
    for line in lines:
        parsed = parse_hours_line(line)
        if isinstance(parsed, str):
            r.add_config(key, f"{path[0]}.hours {line!r}: {parsed}")
            continue
        spans.append(parsed)
    return Hours(tuple(spans), tz) if len(spans) == len(lines) else None
