"""Details from a caller turn: each field of the call type read by the parser for its role."""

from __future__ import annotations

import re
from typing import Any

from receptionist.engines.local.dialogue.core import CALLER_NUMBER_TEXT
from receptionist.engines.local.dialogue.corrections import names_self, replaces
from receptionist.engines.local.dialogue.patterns import (
    ADDRESS_SAID,
    CHANGE_CUE,
    NOT_DESCRIPTIVE,
    QUOTED_WORDS,
)
from receptionist.engines.local.dialogue.policy import (
    implied_choices,
    only_yes_no,
)
from receptionist.engines.local.dialogue.readback import ReadBack
from receptionist.engines.local.dialogue.speaking import (
    strip_fillers,
)
from receptionist.engines.local.intents import (
    MESSAGE_FIELD,
    FieldPlan,
)
from receptionist.engines.local.knowledge import (
    MenuItem,
    OrderLine,
)
from receptionist.language.choices import choice_phrases
from receptionist.language.cues import (
    is_no,
    is_question,
    is_yes,
)
from receptionist.language.dates import parse_date
from receptionist.language.medicines import medicine_mentions
from receptionist.language.names import parse_name
from receptionist.language.phones import parse_phone
from receptionist.language.quantities import parse_kg, parse_number
from receptionist.language.text import normalise
from receptionist.language.times import parse_time


class SlotFilling(ReadBack):
    """Details from a caller turn: each field of the call type read by the parser for its role."""

    def _extract(
        self, text: str, *, fresh_intent: bool = False, correcting: bool = False
    ) -> list[str]:
        """Fill the current call type's fields from ``text``; the names of fields changed."""
        st = self.state
        plans = self._plans.get(st.intent or "", [])
        pending = set(st.pending_fields)
        low = text.lower()
        norm = normalise(text)
        for e in self.kb.extras:
            said = re.search(rf"(?<![a-z]){re.escape(e.keyword)}(?![a-z])", norm)
            refused = re.search(
                rf"\b(?:no|not|without|don't want)\s+(?:\w+\s+)?{re.escape(e.keyword)}", norm
            )
            if said and not refused and e.keyword not in st.extras_said:
                st.extras_said.append(e.keyword)
        changed: list[str] = []
        used_roles: set[str] = set()
        self._said_other = False
        phone_fields = {p.name for p in plans if p.role == "phone"}
        # free text and names last: a bare "Ravi" answers "your name?" only if it is not the
        # stylist Ravi, and "Sunday 5 pm" after "your address?" is a date and time, no address
        for plan in sorted(plans, key=lambda p: (p.role in ("text", "list"), p.role == "name")):
            name = plan.name
            lenient = name in pending
            value: Any = None
            picked: list[MenuItem] = []
            if plan.role == "items":
                if self._extract_items(plan, text, correcting=correcting or lenient):
                    changed.append(name)
                continue
            if plan.role in ("date", "time", "kg") and plan.role in used_roles and not lenient:
                continue
            if plan.role == "phone":
                value = parse_phone(text)
            elif plan.role == "date":
                d = parse_date(text, self.today, lenient=lenient)
                value = d.isoformat() if d else None
            elif plan.role == "time":
                value = parse_time(text, lenient=lenient)
            elif plan.role == "datetime":
                d = parse_date(text, self.today, lenient=lenient)
                t = parse_time(text, lenient=lenient)
                value = f"{d.isoformat()}T{t}" if d and t else None
            elif plan.role == "name":
                others = [c for c in changed if c not in phone_fields]
                bare_ok = lenient or (not others and self._only_a_name(text))
                if (replaces(text) or ADDRESS_SAID.search(text)) and not names_self(text):
                    # "Wait, make it 6 pm instead", "The address is ... Karishma Society": no name
                    bare_ok = False
                value = parse_name(text, lenient=bare_ok, patient=plan.patient)
                if (
                    value
                    and parse_name(text, patient=plan.patient) is None
                    and self._names_other(value)
                ):
                    value = None  # "Ravi if possible" names the stylist Ravi, not the caller
            elif plan.role == "yesno":
                value = self._parse_yesno(plan, text, lenient)
            elif plan.role == "kg":
                kg = parse_kg(text, lenient=lenient)
                value = float(kg) if kg is not None else None
            elif plan.role == "number":
                n = parse_number(text) if lenient else None
                if n is not None:
                    value = int(n) if plan.spec.type == "integer" else float(n)
            elif plan.role == "choice":
                value = self._parse_choice(plan, low)
            elif plan.role == "entity":
                value, picked = self._extract_entity(plan, text, lenient)
            elif plan.role == "list":
                value = self._parse_list(plan, text, lenient)
            elif plan.role == "text":
                value = self._parse_text(plan, text, lenient, fresh_intent)
            elif plan.role == "question" and name not in st.details and is_question(text):
                value = text
            if value is None or value == [] or value == "":
                continue
            have = name in st.details and st.details[name] != CALLER_NUMBER_TEXT
            explicit = bool(CHANGE_CUE.search(low))
            if (
                have
                and not (correcting or lenient or explicit or fresh_intent)
                and plan.role not in ("phone", "choice")
            ):
                continue
            used_roles.add(plan.role)
            if plan.role == "entity" and (picked or value != st.details.get(name)):
                st.order = [line for line in st.order if line.field != name]
                st.order += [OrderLine(it, field=name) for it in picked]
            if st.details.get(name) != value:
                st.details[name] = value
                if plan.role != "question":  # noting the question is no answer to anything
                    changed.append(name)
            self._said_other = self._said_other or plan.role not in ("text", "list", "phone")
        changed += implied_choices(st.details, plans, changed)
        self._price_lines()
        return changed

    def _parse_yesno(self, plan: FieldPlan, text: str, lenient: bool) -> bool | None:
        """True for "eggless please", False for "with egg is fine"; yes/no only when asked."""
        low = text.lower()
        key = plan.keyword
        negated = re.search(r"\b(?:no|not|don't|dont|without|nahi|normal|regular)\b", low)
        if key and re.search(rf"\b{re.escape(key)}\b", low):
            return not bool(negated)
        if "new" in key or "first" in plan.spec.description.lower():
            if re.search(
                r"\bfirst (?:time|visit)\b|\bnever (?:been|visited|come)\b|\bnew patient\b", low
            ):
                return True
            if re.search(
                r"\b(?:visited|been|come) (?:here )?before\b|\bold patient\b|"
                r"\bexisting patient\b|\bregular patient\b",
                low,
            ):
                return False
        if re.search(r"\bwith egg\b", low) and "egg" in key:
            return False
        if lenient:
            if is_yes(text):
                return True
            if is_no(text) or re.search(r"\bnot needed\b|\bno need\b", low):
                return False
        return None

    @staticmethod
    def _parse_choice(plan: FieldPlan, low: str) -> str | None:
        best: tuple[int, str] | None = None
        for option in plan.options:
            for p in choice_phrases(option):
                for m in re.finditer(r"(?<![a-z])" + re.escape(p), low):
                    if best is None or m.start() > best[0]:
                        best = (m.start(), option)
        return best[1] if best else None

    def _only_a_name(self, text: str) -> bool:
        """The caller gave their name (and maybe a number) while a name is still missing, not
        the detail we asked for: "Rekha Mishra, 8090 112 233" after "which medicines?"."""
        plans = self._plans.get(self.state.intent or "", [])
        if not any(p.role == "name" and p.name not in self.state.details for p in plans):
            return False
        name = parse_name(text, lenient=True)
        if not name or name not in text:  # said capitalised, as speech-to-text writes names
            return False
        rest = re.sub(re.escape(name), " ", text, flags=re.I)
        rest = re.sub(r"[+\d][\d\s-]{5,}\d|\b(?:my|the|mobile|phone|number|is|name|it's|this)\b",
                      " ", rest, flags=re.I)  # fmt: skip
        return not re.sub(r"[\s,.;:!?]+", "", rest)

    def _names_other(self, name: str) -> bool:
        """A bare "name" that is really a stylist, a doctor or something on the menu."""
        if self.kb.find_mentions(name):
            return True
        return any(
            self._match_entities(p, name)
            for p in self._plans.get(self.state.intent or "", [])
            if p.role == "entity"
        )

    def _parse_list(self, plan: FieldPlan, text: str, lenient: bool) -> list[str] | None:
        if re.search(r"medicine|tablet|drug", f"{plan.name} {plan.spec.description}", re.I):
            found = medicine_mentions(text)
            if found:
                return found
        if not lenient or self._only_a_name(text) or self._said_other or only_yes_no(text):
            return None
        parts = [p.strip(" .") for p in re.split(r",|\band\b", strip_fillers(text))]
        return [p for p in parts if p] or None

    def _parse_text(
        self, plan: FieldPlan, text: str, lenient: bool, fresh_intent: bool
    ) -> str | None:
        spec = plan.spec
        if MESSAGE_FIELD.search(f"{spec.name} {spec.description}"):
            m = QUOTED_WORDS.search(text) or re.search(
                r"\b(?:write|written|saying|says|message)\b\s*[:,]?\s*(?:is\s+)?(.{2,40}?)\s*"
                r"(?:on (?:it|the cake)|$|[.,])",
                text,
                re.I,
            )
            if m:
                return next(g for g in m.groups() if g).strip()
            if lenient and not is_no(text):
                return strip_fillers(text) or None
            if lenient and is_no(text):
                return "none"
            return None
        if (
            lenient
            and not self._only_a_name(text)
            and not self._said_other
            and not only_yes_no(text)
            and not replaces(text)  # "actually, send X instead" changes the order, no address
        ):
            return strip_fillers(text)[:200] or None
        if "address" in spec.name and (said := ADDRESS_SAID.search(text)):
            return said.group(1).strip(" ,")  # "Address is Lane 5, Karve Nagar"
        if "address" in spec.name:  # "... delivery to Jayanagar 9th block, house number 45"
            m = re.search(
                r"\b(?:deliver(?:y|ed)?|send(?: it)?)\s+(?:it\s+)?(?:to|at)\s+(.{4,160}?)"
                r"\s*(?:[.;]\s|[.;]?$)",
                text,
                re.I,
            )
            if m and (re.search(r"\d", m.group(1)) or len(m.group(1).split()) >= 4):
                return m.group(1).strip(" ,")
        if fresh_intent and spec.required and len(text.split()) >= 5:
            # the sentence that says why they call is the issue / reason / question itself
            first_text = next(
                (
                    p
                    for p in self._plans[self.state.intent or ""]
                    if p.role == "text"
                    and not NOT_DESCRIPTIVE.search(f"{p.name} {p.spec.description}")
                ),
                None,
            )
            if first_text is not None and first_text.name == spec.name:
                return text[:200]
        return None

    def _extract_entity(
        self, plan: FieldPlan, text: str, lenient: bool
    ) -> tuple[str | None, list[MenuItem]]:
        """The value for an item/name field and the catalog items behind it (for prices)."""
        st = self.state
        name = parse_name(text)
        if name:  # "I'm Divya Bharathi" names the caller, not the stylist Divya
            text = re.sub(re.escape(name), " ", text, flags=re.I)
        mentions = self.kb.find_mentions(text, plan.pool) if plan.pool else []
        picked: list[MenuItem] = []
        for m in mentions:
            if m.ambiguous:
                if st.choice is None:
                    st.choice = self._make_choice(plan.name, list(m.items), m.count, m.kg, m.packs)
                continue
            picked.append(m.items[0])
        names = [it.display for it in picked] + [e.name for e in self._match_entities(plan, text)]
        if not names:
            if lenient and re.search(
                r"\b(?:any|anyone|anybody|no preference|whoever)\b", text, re.I
            ):
                return "any", []
            return None, []
        return " and ".join(dict.fromkeys(names)), picked
