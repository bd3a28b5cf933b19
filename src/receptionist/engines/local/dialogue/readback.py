"""The read-back: every detail collected, said back in one sentence for the caller to confirm."""

from __future__ import annotations

import re
from typing import Any

from receptionist.engines.local.dialogue.core import CALLER_NUMBER_TEXT
from receptionist.engines.local.dialogue.orders import OrderTaking
from receptionist.engines.local.dialogue.speaking import (
    article,
    fmt_number,
    join_and,
    say_date,
    say_time,
    spell_number,
)
from receptionist.engines.local.intents import FieldPlan
from receptionist.engines.local.knowledge import (
    Fact,
)


class ReadBack(OrderTaking):
    """The read-back: every detail collected, said in one sentence for the caller to confirm."""

    def _summary(self) -> tuple[str, list[Fact]]:
        """The read-back of everything collected, with the total, and the menu lines used."""
        st = self.state
        ct = self._call_type()
        assert ct is not None
        parts: list[str] = []
        names: list[str] = []
        for plan in self._plans[ct.name]:
            value = st.details.get(plan.name)
            if value is None or plan.role == "question":
                continue
            if plan.role == "name":  # names last: "..., under the name Priya"
                names.append(f"for patient {value}" if plan.patient else f"under the name {value}")
                continue
            said = self._say_detail(plan, value, ct.name)
            if said:
                parts.append(said)
        parts += names
        total = self._total_text()
        if total and self._price_belongs(ct.name):
            parts.append(total)
        facts: list[Fact] = []
        for line in st.order:
            if line.item.fact is not None and line.item.fact not in facts:
                facts.append(line.item.fact)
        what = article(ct.name.replace("_", " "))
        if parts and not re.match(r"(?:for|on|at|with|under|to)\b", parts[0]):
            parts[0] = "with " + parts[0]
        return f"So that's {what} {', '.join(parts)}. Is that right?", facts

    def _say_detail(self, plan: FieldPlan, value: Any, call_type: str) -> str:
        """One detail as it is read back ("" for one said with another, or not at all)."""
        label = plan.name.replace("_", " ")
        role = plan.role
        if role == "phone":
            if value in (CALLER_NUMBER_TEXT, self.caller_number):
                return ""
            return f"phone {spell_number(str(value))}"
        if role == "items":
            lines = [line.describe() for line in self.state.order if line.field == plan.name]
            return "for " + join_and(list(dict.fromkeys(lines)))
        if role == "entity":
            prep = "with" if re.search(r"doctor|stylist|staff", plan.name) else "for"
            named = plan.name in ("service", "doctor", "stylist")
            return f"{prep} {value}" if named else f"{label} {value}"
        if role == "date":
            day = say_date(str(value))
            return f"on {day}" if plan.name == "date" else f"{label} {day}"
        if role == "time":
            return f"at {say_time(str(value))}"
        if role == "datetime":
            d, _, t = str(value).partition("T")
            return f"on {say_date(d)} at {say_time(t)}"
        if role == "yesno":
            return label if value else f"not {label}"
        if role == "kg":
            return f"{fmt_number(value)} kg"
        if role == "choice":
            return f"for {value}" + self._delivery_to(plan, str(value), call_type)
        if "address" in plan.name:
            return ""  # said with the pickup/delivery choice
        if isinstance(value, list):
            return f"{label} {join_and([str(v) for v in value])}"
        words = str(value).split()
        return f"{label}: " + " ".join(words[:14]) + (" ..." if len(words) > 14 else "")

    def _delivery_to(self, plan: FieldPlan, value: str, call_type: str) -> str:
        """ " to <address>" after a delivery choice when an address was given, else ""."""
        details = self.state.details
        address = next(
            (
                details[p.name]
                for p in self._plans[call_type]
                if "address" in p.name and p.name in details
            ),
            None,
        )
        deliver = value.lower() in plan.spec.description.lower() and "deliver" in value.lower()
        return f" to {address}" if address and deliver else ""
