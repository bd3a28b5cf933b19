"""Details from a caller turn: each field of the call type read by the parser for its role."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
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
from receptionist.language.times import parse_time


@dataclass(slots=True)
class _Reading:
    """One caller turn as the field readers see it."""

    text: str
    low: str
    fresh_intent: bool  # the call type changed with this turn: its details are new
    phone_fields: set[str]
    changed: list[str] = field(default_factory=list)  # fields filled so far, in order
    picked: list[MenuItem] = field(default_factory=list)  # catalog items an entity value names


class SlotFilling(ReadBack):
    """Details from a caller turn: each field of the call type read by the parser for its role."""

    def _extract(
        self, text: str, *, fresh_intent: bool = False, correcting: bool = False
    ) -> list[str]:
        """Fill the current call type's fields from ``text``; the names of fields changed."""
        st = self.state
        plans = self._plans.get(st.intent or "", [])
        pending = set(st.pending_fields)
        self._note_extras(text)
        turn = _Reading(
            text, text.lower(), fresh_intent, {p.name for p in plans if p.role == "phone"}
        )
        used_roles: set[str] = set()
        self._said_other = False
        # free text and names last: a bare "Ravi" answers "your name?" only if it is not the
        # stylist Ravi, and "Sunday 5 pm" after "your address?" is a date and time, no address
        for plan in sorted(plans, key=lambda p: (p.role in ("text", "list"), p.role == "name")):
            lenient = plan.name in pending
            if plan.role == "items":
                if self._extract_items(plan, text, correcting=correcting or lenient):
                    turn.changed.append(plan.name)
                continue
            if plan.role in ("date", "time", "kg") and plan.role in used_roles and not lenient:
                continue
            reader = READERS.get(plan.role)
            turn.picked = []
            value = reader(self, plan, turn, lenient) if reader is not None else None
            if value is None or value == [] or value == "":
                continue
            if self._store(plan, value, turn, taken=correcting or lenient):
                used_roles.add(plan.role)
        turn.changed += implied_choices(st.details, plans, turn.changed)
        self._price_lines()
        return turn.changed

    def _note_extras(self, text: str) -> None:
        """Extras the caller asks for ("eggless"), not the ones refused ("no eggless")."""
        for keyword in self.kb.options_said(text):
            if keyword not in self.state.extras_said:
                self.state.extras_said.append(keyword)

    def _store(self, plan: FieldPlan, value: Any, turn: _Reading, *, taken: bool) -> bool:
        """Keep ``value`` for ``plan``'s field unless the field is already filled and nothing
        says this is a change (``taken``: a correction, or the answer to our question)."""
        st, name = self.state, plan.name
        have = name in st.details and st.details[name] != CALLER_NUMBER_TEXT
        explicit = bool(CHANGE_CUE.search(turn.low))
        if (
            have
            and not (taken or explicit or turn.fresh_intent)
            and plan.role not in ("phone", "choice")
        ):
            return False
        if plan.role == "entity" and (turn.picked or value != st.details.get(name)):
            st.order = [line for line in st.order if line.field != name]
            st.order += [OrderLine(it, field=name) for it in turn.picked]
        if st.details.get(name) != value:
            st.details[name] = value
            if plan.role != "question":  # noting the question is no answer to anything
                turn.changed.append(name)
        self._said_other = self._said_other or plan.role not in ("text", "list", "phone")
        return True

    # --- one reader per field role (READERS below): the value ``turn`` gives, or None

    def _read_phone(self, plan: FieldPlan, turn: _Reading, lenient: bool) -> Any:
        return parse_phone(turn.text)

    def _read_date(self, plan: FieldPlan, turn: _Reading, lenient: bool) -> Any:
        d = parse_date(turn.text, self.today, lenient=lenient)
        return d.isoformat() if d else None

    def _read_time(self, plan: FieldPlan, turn: _Reading, lenient: bool) -> Any:
        return parse_time(turn.text, lenient=lenient)

    def _read_datetime(self, plan: FieldPlan, turn: _Reading, lenient: bool) -> Any:
        d = parse_date(turn.text, self.today, lenient=lenient)
        t = parse_time(turn.text, lenient=lenient)
        return f"{d.isoformat()}T{t}" if d and t else None

    def _read_name(self, plan: FieldPlan, turn: _Reading, lenient: bool) -> Any:
        text = turn.text
        others = [c for c in turn.changed if c not in turn.phone_fields]
        bare_ok = lenient or (not others and self._only_a_name(text))
        if (replaces(text) or ADDRESS_SAID.search(text)) and not names_self(text):
            # "Wait, make it 6 pm instead", "The address is ... Karishma Society": no name
            bare_ok = False
        value = parse_name(text, lenient=bare_ok, patient=plan.patient)
        if value and parse_name(text, patient=plan.patient) is None and self._names_other(value):
            return None  # "Ravi if possible" names the stylist Ravi, not the caller
        return value

    def _read_yesno(self, plan: FieldPlan, turn: _Reading, lenient: bool) -> Any:
        return self._parse_yesno(plan, turn.text, lenient)

    def _read_kg(self, plan: FieldPlan, turn: _Reading, lenient: bool) -> Any:
        kg = parse_kg(turn.text, lenient=lenient)
        return float(kg) if kg is not None else None

    def _read_number(self, plan: FieldPlan, turn: _Reading, lenient: bool) -> Any:
        n = parse_number(turn.text) if lenient else None
        if n is None:
            return None
        return int(n) if plan.spec.type == "integer" else float(n)

    def _read_choice(self, plan: FieldPlan, turn: _Reading, lenient: bool) -> Any:
        return self._parse_choice(plan, turn.low)

    def _read_entity(self, plan: FieldPlan, turn: _Reading, lenient: bool) -> Any:
        value, turn.picked = self._extract_entity(plan, turn.text, lenient)
        return value

    def _read_list(self, plan: FieldPlan, turn: _Reading, lenient: bool) -> Any:
        return self._parse_list(plan, turn.text, lenient)

    def _read_text(self, plan: FieldPlan, turn: _Reading, lenient: bool) -> Any:
        return self._parse_text(plan, turn.text, lenient, turn.fresh_intent)

    def _read_question(self, plan: FieldPlan, turn: _Reading, lenient: bool) -> Any:
        if plan.name not in self.state.details and is_question(turn.text):
            return turn.text
        return None

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
        root = re.fullmatch(r"([a-z]+?)[\s-]*(?:less|free)", key)
        if root and re.search(rf"\bwith {re.escape(root.group(1))}\b", low):
            return False  # "with egg is fine" for eggless, "with sugar" for sugar-free
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
        if names_self(text) or parse_phone(text):
            return None  # "My name is prakish tuahre, number 98...": the caller, not a list
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
        if "address" in spec.name and (said := ADDRESS_SAID.search(text)):
            return said.group(1).strip(" ,")  # "Address is Lane 5, Karve Nagar"
        if (
            lenient
            and not self._only_a_name(text)
            and not self._said_other
            and not only_yes_no(text)
            and not replaces(text)  # "actually, send X instead" changes the order, no address
        ):
            return strip_fillers(text)[:200] or None
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


_Reader = Callable[[SlotFilling, FieldPlan, _Reading, bool], Any]
#: field role -> how a turn gives its value ("items" is read apart: it fills order lines)
READERS: dict[str, _Reader] = {
    "phone": SlotFilling._read_phone,
    "date": SlotFilling._read_date,
    "time": SlotFilling._read_time,
    "datetime": SlotFilling._read_datetime,
    "name": SlotFilling._read_name,
    "yesno": SlotFilling._read_yesno,
    "kg": SlotFilling._read_kg,
    "number": SlotFilling._read_number,
    "choice": SlotFilling._read_choice,
    "entity": SlotFilling._read_entity,
    "list": SlotFilling._read_list,
    "text": SlotFilling._read_text,
    "question": SlotFilling._read_question,
}
