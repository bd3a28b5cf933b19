"""Which call type the caller is making: scored per turn, with the items they name as evidence."""

from __future__ import annotations

import re

from receptionist.engines.local.dialogue.core import (
    CALLER_NUMBER_TEXT,
    INTENT_THRESHOLD,
    QUESTION_INTENT_THRESHOLD,
)
from receptionist.engines.local.dialogue.policy import (
    cancel_first,
    complaint_first,
)
from receptionist.engines.local.dialogue.slots import SlotFilling
from receptionist.engines.local.intents import (
    handles_concept,
    is_enquiry_type,
    score_call_types,
)
from receptionist.engines.local.knowledge import (
    tokens,
)
from receptionist.language.dates import parse_date
from receptionist.language.times import parse_time

_UNDOES_BOOKING = re.compile(
    r"\b(?:cancel|reschedule|postpone)\b.*\b(?:book|booked|booking|appointment)\b|"
    r"\b(?:book|booked|booking|appointment)\b.*\b(?:cancel|reschedule|postpone)\b",
    re.I,
)


class IntentReading(SlotFilling):
    """Which call type the caller is making, scored per turn (named items count too)."""

    def _item_bonus(self, text: str) -> dict[str, float]:
        """Call types whose fields the utterance fills: a menu item points to the order type, a
        service with a date and a time to the appointment type (the caller books, not asks)."""
        out: dict[str, float] = {}
        wants = re.search(
            r"\b(?:want|wanted|need|like|get|have|book|order|send|keep|deliver)\b", text, re.I
        )
        has_date = parse_date(text, self.today) is not None
        has_time = parse_time(text) is not None
        # "I have a manicure booked on Friday, I want to cancel it": the service is the
        # booking's, no sign of a new one
        undoes = bool(_UNDOES_BOOKING.search(text)) and any(
            handles_concept(ct, "cancel") for ct in self.tenant.call_types
        )
        for name, plans in self._plans.items():
            ct = self.tenant.call_type(name)
            if ct is None or is_enquiry_type(ct):
                continue
            if undoes and not handles_concept(ct, "cancel"):
                continue
            bonus = 0.0
            for plan in plans:
                if plan.role not in ("items", "entity"):
                    continue
                hits = len(self.kb.find_mentions(text, plan.pool)) if plan.pool else 0
                hits += len(self._match_entities(plan, text))
                if hits:
                    # more of the caller's items fit this call type: more likely it is theirs
                    more = 0.25 * min(hits - 1, 2) + (0.25 if plan.role == "items" else 0.0)
                    bonus += (1.0 if not bonus else 0.5) + more
            if bonus:
                bonus += 1.0 if wants else 0.0
                for plan in plans:
                    if plan.spec.required and (
                        (plan.role == "date" and has_date) or (plan.role == "time" and has_time)
                    ):
                        bonus += 0.75
                out[name] = bonus
        return out

    def _update_intent(self, text: str, question: bool, action: bool) -> bool:
        """Take the call type the utterance points to; True when it was set (or changed) now.

        A first aim is taken at INTENT_THRESHOLD (higher for a bare question, and never for a
        price question). An aim already taken only changes for a clearly different request
        ("... actually I want to cancel"), and an enquiry is the fallback for questions.
        """
        st = self.state
        actionable = [ct for ct in self.tenant.call_types if not is_enquiry_type(ct)]
        scores = score_call_types(actionable, text, self._item_bonus(text)) if actionable else []
        best = scores[0] if scores else None
        if question and not action and "price" in tokens(text):
            best = None  # "how much is the thyroid test?" asks a price, it books nothing
        need = QUESTION_INTENT_THRESHOLD if (question and not action) else INTENT_THRESHOLD
        current = self._call_type()
        best = complaint_first(scores, best, need, text)
        best = cancel_first(scores, best, need, text)
        strong = best is not None and best.score >= need
        if strong and best is not None and (current is None or is_enquiry_type(current)):
            self._set_intent(best.name)
            return True
        if (
            strong
            and best is not None
            and current is not None
            and best.name != current.name
            and best.score >= need + 1.5
            and not st.awaiting_confirmation
            and {"cancel", "complaint", "refill", "report", "custom"} & set(best.cues)
            and not (
                set(best.cues) & set(next((s.cues for s in scores if s.name == current.name), ()))
            )
        ):
            self._set_intent(best.name)
            return True
        if current is None and question:
            enquiry = self._enquiry_type()
            if enquiry is not None:
                self._set_intent(enquiry.name)
        return False

    def _set_intent(self, name: str) -> None:
        st = self.state
        old = st.details
        ct = self.tenant.call_type(name)
        assert ct is not None
        keep = {f.name for f in ct.fields}
        previous = self._call_type()
        if previous is not None and is_enquiry_type(previous):
            # who they are carries over, and the service they asked about ("how much is a
            # pedicure?" ... "okay, book one"): this turn's own words replace it if it names one
            names = {
                p.name for p in self._plans[previous.name] if p.role in ("name", "phone", "entity")
            }
            keep &= names
        st.details = {k: v for k, v in old.items() if k in keep}
        st.order = [line for line in st.order if line.field in keep]
        st.intent = name
        st.pending_fields = []
        for plan in self._plans[name]:
            if plan.role == "phone" and plan.name not in st.details:
                st.details[plan.name] = self.caller_number or CALLER_NUMBER_TEXT

    def _enquiry_fallback(self) -> None:
        """No aim yet: the caller is asking (the enquiry type, when the tenant has one)."""
        enquiry = self._enquiry_type()
        if self.state.intent is None and enquiry is not None:
            self._set_intent(enquiry.name)
