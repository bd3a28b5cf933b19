"""Hand-off to a person and AI callbacks, as a tenant configures them (`[handoff]` and
`[callbacks]` in tenant.toml; checked by handoff_checks.py).

Plain values only: the numbers Exotel's Connect applet rings, the hours a person takes calls
(in the tenant's time zone), and the words the agent says while putting the caller through.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from .messages import language_prefix

__all__ = [
    "DAYS",
    "DEFAULT_SAY",
    "DEFAULT_UNAVAILABLE",
    "NOTICE_VARIABLES",
    "CallbackRules",
    "Handoff",
    "Hours",
    "parse_hours_line",
]

# what the owner's notice about a hand-off that could not happen says, in placeholder order
NOTICE_VARIABLES: tuple[str, ...] = ("caller", "time", "why")
DAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_LINE = re.compile(
    r"(?P<days>daily|[a-z]{3}(?:-[a-z]{3})?(?:,[a-z]{3}(?:-[a-z]{3})?)*)\s+"
    r"(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})"
)

# What the agent says while putting the caller through, by language prefix (English otherwise).
DEFAULT_SAY: dict[str, str] = {
    "en": "Please hold on, I'm putting you through to someone from our team now.",
    "hi": "कृपया लाइन पर बने रहिए, मैं आपको अभी हमारी टीम के किसी व्यक्ति से जोड़ रही हूँ।",
}
# ... and when nobody can take the call now (outside the hours): a message instead.
DEFAULT_UNAVAILABLE: dict[str, str] = {
    "en": "Nobody from our team can come to the phone right now, but I can take a message "
    "and they will call you back. What would you like me to tell them?",
    "hi": "अभी हमारी टीम से कोई फ़ोन पर नहीं आ सकता, लेकिन मैं आपका संदेश ले सकती हूँ और वे "
    "आपको वापस फ़ोन करेंगे। मैं उन्हें क्या बताऊँ?",
}


def _clock(text: str) -> time | None:
    hour, _, minute = text.partition(":")
    h, m = int(hour), int(minute)
    if h == 24 and m == 0:
        return time.max
    if not (0 <= h <= 23 and 0 <= m <= 59):
        return None
    return time(h, m)


def parse_hours_line(line: str) -> tuple[frozenset[int], time, time] | str:
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

    spans: tuple[tuple[frozenset[int], time, time], ...]
    timezone: str = "Asia/Kolkata"

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
        best: datetime | None = None
        for ahead in range(8):  # a weekly schedule opens within a week, if ever
            day = local.date() + timedelta(days=ahead)
            for days, start, _end in self.spans:
                if day.weekday() not in days:
                    continue
                opening = datetime.combine(day, start, zone)
                if opening > local and (best is None or opening < best):
                    best = opening
            if best is not None:
                return best
        return None


@dataclass(frozen=True, slots=True)
class Handoff:
    """`[handoff]`: who takes a call the agent passes on, when, and how it rings."""

    numbers: tuple[str, ...]  # E.164, rung in this order
    hours: Hours
    ring_seconds: int = 30
    record: bool = False
    whisper: str = ""  # played to the person picking up before the caller is joined
    say: str = ""  # overrides DEFAULT_SAY
    unavailable: str = ""  # overrides DEFAULT_UNAVAILABLE
    caller_id: str = ""  # the ExoPhone shown to the person rung ("" = the number called)
    max_minutes: int = 60
    # the owner's WhatsApp template when a caller wanted a person and none could be rung
    # (placeholders: NOTICE_VARIABLES); "" = no message
    notify_template: str = ""

    def phrase(self, language: str) -> str:
        return self.say or DEFAULT_SAY.get(language_prefix(language), DEFAULT_SAY["en"])

    def unavailable_phrase(self, language: str) -> str:
        return self.unavailable or DEFAULT_UNAVAILABLE.get(
            language_prefix(language), DEFAULT_UNAVAILABLE["en"]
        )


@dataclass(frozen=True, slots=True)
class CallbackRules:
    """`[callbacks]`: when the AI may call a caller back, and from which ExoPhone."""

    caller_id: str  # the ExoPhone the caller sees
    hours: Hours
    per_number_per_day: int = 2
    ring_seconds: int = 30
