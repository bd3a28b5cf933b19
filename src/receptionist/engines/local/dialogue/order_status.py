"""An earlier order or booking, in the grounded brain, through the call's `order_status` tool
(the same one Gemini Live calls): "I ordered a cake yesterday, is it ready?" -> looked up by the
name the caller gives, else by the number they are calling from -> what it is, when, and where
it stands; nothing found -> said so, with an offer to have the owner call back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from receptionist.engines.base import ToolRunner
from receptionist.language.cues import asks_order_status
from receptionist.language.names import parse_name

# what each status means to a caller (store/bookings.py names them)
_STATUS = {
    "pending": "waiting to be confirmed",
    "confirmed": "confirmed",
    "cancelled": "cancelled",
    "expired": "not confirmed, so it lapsed",
}


@dataclass(frozen=True, slots=True)
class OrderAnswer:
    text: str
    offer_callback: bool = False  # nothing found or no answer: the brain offers a call back


def _when(stamp: Any, today: date) -> str:
    try:
        at = datetime.strptime(str(stamp), "%Y-%m-%d %H:%M")
    except ValueError:
        return ""
    day = at.date()
    if day == today:
        said = "today"
    elif (day - today).days == 1:
        said = "tomorrow"
    elif (today - day).days == 1:
        said = "yesterday"
    else:
        said = f"{at:%A} {at.day} {at:%B}"
    if at.hour or at.minute:
        h12 = at.hour % 12 or 12
        clock = f"{h12}" if not at.minute else f"{h12}:{at.minute:02d}"
        said += f" at {clock} {'am' if at.hour < 12 else 'pm'}"
    return said


def _what(order: dict[str, Any]) -> str:
    details = order.get("details") if isinstance(order.get("details"), dict) else {}
    assert isinstance(details, dict)
    lines = [str(x["line"]) for x in details.get("lines") or [] if isinstance(x, dict)]
    if order.get("kind") == "slot":
        what = str(details.get("service") or "appointment")
        with_whom = f" with {order['resource']}" if order.get("resource") else ""
        return f"your {what}{with_whom}"
    if lines:
        return "your order of " + ", ".join(lines)
    return "your order"


def _said(order: dict[str, Any], today: date) -> str:
    what = _what(order)
    when = _when(order.get("when"), today) if order.get("kind") == "slot" else ""
    made = _when(order.get("made"), today)
    status = _STATUS.get(str(order.get("status")), str(order.get("status") or "noted"))
    if when:
        return f"I see {what} for {when}; it is {status}."
    placed = f", placed {made}" if made else ""
    return f"I see {what}{placed}; it is {status}."


@dataclass
class OrderTalk:
    """One call's questions about earlier orders (owned by its GroundedBrain)."""

    tools: ToolRunner
    today: date

    def handles(self) -> bool:
        return any(s.name == "order_status" for s in self.tools.specs)

    async def turn(self, text: str, known_name: str | None) -> OrderAnswer | None:
        """The answer, or None: not about an earlier order (the grounded brain answers)."""
        if not asks_order_status(text):
            return None
        # a sentence at a time: "My name is Meera. What about my order?" is no "Meera What"
        names = (parse_name(part) for part in re.split(r"[.?!]+\s*", text) if part)
        name = next((n for n in names if n), None) or known_name
        # no name: the tool looks the caller's own number up
        got = await self.tools.run("order_status", {"name": name} if name else {})
        under = f"under the name {name}" if name else "for the number you're calling from"
        if "error" in got:
            return OrderAnswer(
                "Sorry, I can't look orders up right now. "
                "Shall I ask the owner to call you back about it?",
                offer_callback=True,
            )
        orders = [o for o in got.get("orders") or [] if isinstance(o, dict)]
        if not orders:
            return OrderAnswer(
                f"I can't find an order or booking {under}. "
                "Shall I ask the owner to call you back about it?",
                offer_callback=True,
            )
        said = [_said(o, self.today) for o in orders[:2]]
        more = " There are more; the owner can tell you about them." if len(orders) > 2 else ""
        return OrderAnswer(" ".join(said) + more)
