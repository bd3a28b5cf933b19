"""The read-back: every detail collected, said back in one sentence for the caller to confirm."""

from __future__ import annotations

import re

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
        facts: list[Fact] = []
        for plan in self._plans[ct.name]:
            value = st.details.get(plan.name)
            if value is None or plan.role == "question":
                continue
            label = plan.name.replace("_", " ")
            if plan.role == "phone":
                if value not in (CALLER_NUMBER_TEXT, self.caller_number):
                    parts.append(f"phone {spell_number(str(value))}")
            elif plan.role == "items":
                parts.append(
                    "for "
                    + join_and(
                        list(
                            dict.fromkeys(
                                line.describe() for line in st.order if line.field == plan.name
                            )
                        )
                    )
                )
            elif plan.role == "entity":
                prep = "with" if re.search(r"doctor|stylist|staff", plan.name) else "for"
                parts.append(
                    f"{prep} {value}"
                    if plan.name in ("service", "doctor", "stylist")
                    else f"{label} {value}"
                )
            elif plan.role == "date":
                parts.append(
                    f"on {say_date(str(value))}"
                    if plan.name == "date"
                    else f"{label} {say_date(str(value))}"
                )
            elif plan.role == "time":
                parts.append(f"at {say_time(str(value))}")
            elif plan.role == "datetime":
                d, _, t = str(value).partition("T")
                parts.append(f"on {say_date(d)} at {say_time(t)}")
            elif plan.role == "name":
                names.append(f"for patient {value}" if plan.patient else f"under the name {value}")
            elif plan.role == "yesno":
                parts.append(label if value else f"not {label}")
            elif plan.role == "kg":
                parts.append(f"{fmt_number(value)} kg")
            elif plan.role == "choice":
                address = next(
                    (
                        st.details[p.name]
                        for p in self._plans[ct.name]
                        if "address" in p.name and p.name in st.details
                    ),
                    None,
                )
                parts.append(
                    f"for {value}"
                    + (
                        f" to {address}"
                        if address
                        and value.lower() in plan.spec.description.lower()
                        and "deliver" in str(value).lower()
                        else ""
                    )
                )
            elif "address" in plan.name:
                continue  # said with the pickup/delivery choice
            elif isinstance(value, list):
                parts.append(f"{label} {join_and([str(v) for v in value])}")
            else:
                words = str(value).split()
                short = " ".join(words[:14]) + (" ..." if len(words) > 14 else "")
                parts.append(f"{label}: {short}")
        parts += names
        total = self._total_text()
        if total and self._price_belongs(ct.name):
            parts.append(total)
        for line in st.order:
            if line.item.fact is not None and line.item.fact not in facts:
                facts.append(line.item.fact)
        what = article(ct.name.replace("_", " "))
        if parts and not re.match(r"(?:for|on|at|with|under|to)\b", parts[0]):
            parts[0] = "with " + parts[0]
        return f"So that's {what} {', '.join(parts)}. Is that right?", facts
