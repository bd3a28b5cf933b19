"""What every part of the grounded brain stands on: one call's tenant, files, state and
plans, the call type understood, and how a reply is put out.
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from receptionist.engines.local.brain import BrainReply, DialogueState
from receptionist.engines.local.dialogue.patterns import (
    COMPLAINT_WORDS,
)
from receptionist.engines.local.dialogue.policy import (
    asks_price,
)
from receptionist.engines.local.intents import (
    Entity,
    FieldPlan,
    is_enquiry_type,
    name_entities,
    plan_fields,
)
from receptionist.engines.local.knowledge import (
    Fact,
    knowledge_for,
    tokens,
)
from receptionist.language.text import normalise
from receptionist.tenants.model import CallType, Tenant

# What the phone field holds when the engine did not pass the caller's number.
CALLER_NUMBER_TEXT = "the number you are calling from"
ANSWER_COVERAGE = 0.55  # share of a question's words a fact must contain to be an answer
FOLLOW_UP_COVERAGE = 0.45  # ... when the fact is about what the caller asked about just before
INTENT_THRESHOLD = 2.0  # score a call type needs to be taken as the caller's aim
QUESTION_INTENT_THRESHOLD = 3.0  # ... when the caller only asked a question
MAX_NAME_MISSES = 2  # answers to "your name?" without one before the read-back goes without it


class BrainCore:
    """One call's tenant, files, state and field plans; the call type; replies put out."""

    def __init__(
        self, tenant: Tenant, caller_number: str | None = None, now: datetime | None = None
    ) -> None:
        self.tenant = tenant
        self.kb = knowledge_for(tenant.input_files)
        self.caller_number = caller_number
        try:
            tz: ZoneInfo | None = ZoneInfo(tenant.timezone)
        except (KeyError, ValueError):
            tz = None
        self.now = now or datetime.now(tz)
        self.today = self.now.astimezone(tz).date() if (tz and self.now.tzinfo) else self.now.date()
        self.state = DialogueState()
        entities = name_entities(self.kb)
        self._plans = {ct.name: plan_fields(ct, self.kb, entities) for ct in tenant.call_types}
        self._name_words = set(tokens(tenant.name)) - {"price", "hours"}
        self._last_text = ""
        self._said_other = False  # this utterance already gave a typed detail (date, choice ...)
        self._last_ask = ""  # the last field question asked, to never repeat it without a word
        self._turn_changed = False  # this turn filled or changed a detail
        self._phone_doubt: str | None = None  # digits given as a number that make no number
        # name field -> answers to "your name?" that gave none we could take ("yes" counts all)
        self._name_misses: dict[str, int] = {}
        self._asks: dict[str, int] = {}  # field -> times asked for
        self._given_up: set[str] = set()  # fields no longer asked for (the caller said "yes")
        self._topic: set[str] = set()  # words of the items the caller last asked about
        self._misses_counted = 0  # the caller turn they were last counted for

    def _out(
        self, text: str, *, end: bool = False, facts: list[Fact] | None = None, reason: str = ""
    ) -> BrainReply:
        st = self.state
        text = re.sub(r"\s+", " ", text).strip().replace(" + ", " and ")
        spoken = tuple(dict.fromkeys(f.spoken for f in facts or []))
        for f in spoken:
            if f not in st.facts_used:
                st.facts_used.append(f)
        if end:
            st.ended = True
            st.pending_fields = []
        st.history.append(("agent", text))
        self._last_text = text
        if reason and not reason.startswith("ask:"):
            self._last_ask = ""
        return BrainReply(text=text, end_call=end, intent=st.intent, facts=spoken, reason=reason)

    def _call_type(self) -> CallType | None:
        return self.tenant.call_type(self.state.intent) if self.state.intent else None

    def _is_enquiry(self) -> bool:
        ct = self._call_type()
        return ct is not None and is_enquiry_type(ct)

    def _is_complaint(self) -> bool:
        ct = self._call_type()
        return ct is not None and any(
            w in f"{ct.name} {ct.description}".lower() for w in COMPLAINT_WORDS
        )

    def _enquiry_type(self) -> CallType | None:
        for ct in self.tenant.call_types:
            if is_enquiry_type(ct):
                return ct
        return None

    def _collected(self) -> list[str]:
        """Details the caller gave (the caller's own number is not one they said)."""
        return [
            k
            for k, v in self.state.details.items()
            if v not in (None, CALLER_NUMBER_TEXT) and v != self.caller_number
        ]

    def _set_question(self, text: str) -> None:
        for plan in self._plans.get(self.state.intent or "", []):
            if plan.role == "question":
                self.state.details[plan.name] = text

    def _match_entities(self, plan: FieldPlan, text: str) -> list[Entity]:
        norm = " " + normalise(text).replace(".", "") + " "
        norm = re.sub(r"\bdoctor\b", "dr", norm)
        out = []
        for e in plan.entities:
            if any(
                re.search(rf"(?<![a-z0-9]){re.escape(a.replace('.', ''))}(?![a-z0-9])", norm)
                for a in e.aliases
            ):
                out.append(e)
        return out

    def _field_question(self, plan: FieldPlan) -> str:
        if plan.role == "items":
            lines = [line for line in self.state.order if line.field == plan.name]
            needing = [line for line in lines if line.needs_weight()]
            if needing:
                item = needing[0].item
                price = item.describe_price()
                return f"How many kilos of {item.display} would you like? It is {price}."
        return plan.question

    def _pending_catalog_field(self) -> FieldPlan | None:
        """The menu / service field we just asked for, if any."""
        for plan in self._plans.get(self.state.intent or "", []):
            if plan.name in self.state.pending_fields and plan.role in ("items", "entity"):
                return plan if plan.pool else None
        return None

    def _price_belongs(self, call_type: str) -> bool:
        """The read-back carries a price for an order (its lines add up), or when the caller
        asked what it costs; a booking's read-back is the booking."""
        has_items = any(p.role == "items" for p in self._plans.get(call_type, []))
        return has_items or any(asks_price(t) for who, t in self.state.history if who == "caller")

    def _missing(self) -> list[FieldPlan]:
        st = self.state
        out: list[FieldPlan] = []
        chosen = {v.lower() for v in st.details.values() if isinstance(v, str)}
        for plan in self._plans.get(st.intent or "", []):
            if plan.role in ("phone", "question"):
                continue
            desc = plan.spec.description.lower()
            # "Full address ..., for delivery orders" is needed once the caller chose delivery
            needed = plan.spec.required or any(
                len(v) > 3
                and re.search(
                    rf"\b(?:for|if|only for) {re.escape(v)}\b|"
                    rf"\b{re.escape(v)} orders?\b",
                    desc,
                )
                for v in chosen
            )
            if not needed:
                continue
            if plan.role == "items":
                lines = [line for line in st.order if line.field == plan.name]
                if not lines or any(line.needs_weight() for line in lines):
                    out.append(plan)
            elif (
                plan.name not in st.details
                and plan.name not in self._given_up
                and not (
                    plan.role == "name" and self._name_misses.get(plan.name, 0) >= MAX_NAME_MISSES
                )
            ):
                # a name we could not take twice is left out of the read-back (the owner has
                # the caller's number) rather than asked for again and again
                out.append(plan)
        # what and when first; the caller's name last, as a person at the counter would
        return sorted(out, key=lambda p: p.role == "name")
