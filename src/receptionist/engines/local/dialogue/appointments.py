"""Appointments in the grounded brain, through the call's tools (the same `check_slot` and
`book` Gemini Live calls): "is 4 pm free tomorrow?" -> "4 pm tomorrow is taken; 5 pm is free,
shall I book it?" -> "yes" -> (the name, if not known yet) -> booked, with its reference.

Kept deliberately small: it takes a turn only when it names a day or a time together with a
booking word, or answers a question it asked; everything else goes on to the grounded brain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from receptionist.engines.base import ToolRunner
from receptionist.language.cues import is_no, is_yes
from receptionist.language.dates import parse_date
from receptionist.language.names import parse_name
from receptionist.language.times import parse_time

_SLOT_CUE = re.compile(
    r"\b(free|available|availability|slot|appointment|book|booking|reserve|come in|vacant)\b",
    re.I,
)


def _say_time(hhmm: str) -> str:
    hour, minute = (int(x) for x in hhmm.split(":"))
    half = "am" if hour < 12 else "pm"
    h12 = hour % 12 or 12
    return f"{h12} {half}" if minute == 0 else f"{h12}:{minute:02d} {half}"


def _say_day(iso: str, today: date) -> str:
    day = date.fromisoformat(iso)
    if day == today:
        return "today"
    if (day - today).days == 1:
        return "tomorrow"
    return day.strftime("%A %d %B").replace(" 0", " ")


@dataclass
class SlotTalk:
    """One call's slot conversation (owned by its GroundedBrain)."""

    tools: ToolRunner
    today: date
    offered: dict[str, str] | None = None  # the free slot last offered: date, time, resource
    want_name: bool = False  # asked for the name to book `offered` under
    name: str | None = None

    def handles(self) -> bool:
        names = {s.name for s in self.tools.specs}
        return "check_slot" in names and "book" in names

    async def turn(self, text: str, known_name: str | None) -> str | None:
        """The reply, or None: not about a slot (the grounded brain answers)."""
        if self.want_name:
            name = parse_name(text, lenient=True)
            if name:
                self.want_name = False
                return await self._book(name)
            return "Sorry, what name shall I book it under?"
        if self.offered is not None and (is_yes(text) or re.search(r"\bbook it\b", text, re.I)):
            name = known_name or self.name
            if not name:
                self.want_name = True
                return "Sure. What name shall I book it under?"
            return await self._book(name)
        day = parse_date(text, self.today)
        at = parse_time(text)
        if (day is None and at is None) or not _SLOT_CUE.search(text):
            if self.offered is not None and is_no(text):
                self.offered = None
                return "Alright. Is there another time that suits you?"
            return None
        if at is None:
            return "What time would you like?"
        iso = day or (date.fromisoformat(self.offered["date"]) if self.offered else self.today)
        return await self._check(iso.isoformat(), at)

    async def _check(self, iso: str, hhmm: str) -> str:
        said = f"{_say_time(hhmm)} {_say_day(iso, self.today)}"
        got = await self.tools.run("check_slot", {"date": iso, "time": hhmm})
        if "error" in got:
            self.offered = None
            return _trouble(got, f"Sorry, I cannot book {said}")
        if got.get("free"):
            self.offered = {"date": iso, "time": hhmm, "resource": str(got.get("resource") or "")}
            return f"{_cap(said)} is free. Shall I book it?"
        return self._offer_next(f"{_cap(said)} is taken", got.get("next_free") or [])

    def _offer_next(self, lead: str, nxt: list[dict[str, Any]]) -> str:
        if not nxt:
            self.offered = None
            return f"{lead}, and I see nothing free soon after. Another day, perhaps?"
        first = nxt[0]
        self.offered = {k: str(first.get(k) or "") for k in ("date", "time", "resource")}
        when = f"{_say_time(first['time'])} {_say_day(first['date'], self.today)}"
        return f"{lead}; {when} is free. Shall I book it?"

    async def _book(self, name: str) -> str:
        assert self.offered is not None
        slot = self.offered
        self.name = name
        args = {"date": slot["date"], "time": slot["time"], "name": name}
        if slot.get("resource") and slot["resource"] != "any":
            args["resource"] = slot["resource"]
        got = await self.tools.run("book", args)
        if got.get("booked"):
            self.offered = None
            ref = " ".join(str(got.get("reference", "")))
            when = f"{_say_time(slot['time'])} {_say_day(slot['date'], self.today)}"
            return f"Done, {name}: {when} is booked. Your reference is {ref}."
        if "error" in got:
            self.offered = None
            return _trouble(got, "Sorry, I could not book it")
        return self._offer_next("Sorry, that one was just taken", got.get("next_free") or [])


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _trouble(got: dict[str, Any], lead: str) -> str:
    """A tool's error as the caller hears it: its reason when the request was wrong, else a
    fixed line (a slow or failing tool's message is meant for a model, not for the caller)."""
    if got.get("reason") == "invalid_args":
        return f"{lead}: {str(got['error']).removeprefix('I could not use that: ').rstrip('.')}."
    return "Sorry, I cannot reach the diary right now. The owner will call you back to book."
