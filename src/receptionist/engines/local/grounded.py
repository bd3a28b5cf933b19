"""The grounded brain: a deterministic receptionist that knows only the tenant's own files.

No language model: each caller turn is read with the rules of :mod:`.intents`, facts and prices
come from :mod:`.knowledge`, and replies are short fixed sentences filled with those facts. It
cannot invent a price, an opening time or a promise, which is the point -- when the files do not
say, it says so and offers a call back from the owner.

One :class:`GroundedBrain` per call. What it does on each turn, in order:

1. the call is over -> say goodbye again; noise / nothing -> "sorry, could you say that again?"
   (the second time in a row: offer a call back and end the call);
2. "can I talk to the owner?" -> offer a call back; a "which one?" question pending -> resolve it;
   details read back -> "yes" closes the call, "no" / a correction updates and reads back again;
   "thank you, bye" -> goodbye;
3. otherwise: recognise the call type (:func:`.intents.score_call_types`), take every detail the
   utterance gives for that call type's fields, answer a question from the files, and then ask
   for what is still missing (one or two details at a time) or read everything back.

The details collected use the tenant's field names and the value shapes of the post-call analyzer
(ISO dates, "HH:MM" times, item lists such as "1 kg Black Forest cake").
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from receptionist.engines.base import ToolRunner
from receptionist.language.cues import (
    is_goodbye,
    is_greeting,
    is_no,
    is_noise,
    is_question,
    is_thanks,
    is_wrong_number,
    is_yes,
    question_strength,
    wants_human,
    wants_person,
)
from receptionist.language.dates import parse_date
from receptionist.language.names import parse_name
from receptionist.language.phones import parse_phone
from receptionist.language.quantities import parse_kg, parse_number
from receptionist.language.text import clean, normalise, wordset
from receptionist.language.times import parse_time
from receptionist.tenants.messages import fallback_greeting, language_prefix
from receptionist.tenants.model import CallType, Tenant

from .brain import BrainReply, Choice, DialogueState
from .dialogue.corrections import names_self, replaces
from .dialogue.digits import join_spoken_digits, partial_phone
from .dialogue.echo import strip_echo
from .dialogue.orders import OrderTalk
from .dialogue.policy import (
    CANNOT_CANCEL,
    asks_price,
    cancel_first,
    cancels,
    clear_winner,
    complaint_first,
    ends_with_thanks,
    implied_choices,
    only_yes_no,
    ordinal_pick,
    repeat_reason,
    side_questions,
)
from .dialogue.quotes import QuoteTalk
from .dialogue.slots import SlotTalk
from .dialogue.spelling import join_spelled_letters
from .intents import (
    MESSAGE_FIELD,
    Entity,
    FieldPlan,
    handles_concept,
    has_action_cue,
    is_enquiry_type,
    join_or,
    name_entities,
    plan_fields,
    score_call_types,
)
from .knowledge import (
    Extra,
    Fact,
    MenuItem,
    OrderLine,
    format_rupees,
    knowledge_for,
    tokens,
)

__all__ = ["CALLER_NUMBER_TEXT", "GroundedBrain", "say_date", "say_time"]

# What the phone field holds when the engine did not pass the caller's number.
CALLER_NUMBER_TEXT = "the number you are calling from"
ANSWER_COVERAGE = 0.55  # share of a question's words a fact must contain to be an answer
INTENT_THRESHOLD = 2.0  # score a call type needs to be taken as the caller's aim
QUESTION_INTENT_THRESHOLD = 3.0  # ... when the caller only asked a question


# --------------------------------------------------------------------------- speaking helpers


def say_date(iso: str) -> str:
    try:
        d = date.fromisoformat(iso)
    except ValueError:
        return iso
    return f"{d:%A} {d.day} {d:%B}"


def say_time(hhmm: str) -> str:
    try:
        h, m = (int(x) for x in hhmm.split(":"))
    except ValueError:
        return hhmm
    if h == 12 and m == 0:
        return "12 noon"
    if h == 0 and m == 0:
        return "midnight"
    suffix = "am" if h < 12 else "pm"
    h12 = h % 12 or 12
    return f"{h12} {suffix}" if m == 0 else f"{h12}:{m:02d} {suffix}"


def _article(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


_CHOICE_SYNONYMS: dict[str, tuple[str, ...]] = {
    "pickup": ("pick up", "pick it up", "pickup", "pick-up", "collect", "come and get",
               "come and take", "take away", "takeaway", "self pickup", "i'll come"),
    "delivery": ("deliver", "delivery", "home delivery", "send it", "send them", "drop it"),
}  # fmt: skip
_ORDINALS = {
    "first": 0,
    "1st": 0,
    "one": 0,
    "second": 1,
    "2nd": 1,
    "two": 1,
    "third": 2,
    "3rd": 2,
    "three": 2,
}
_NEGATED = re.compile(r"\b(?:not|no|instead of|remove|cancel|without)\s+(?:the\s+|a\s+)?$")
_IDENTITY_Q = re.compile(
    r"^(?:(?:hi|hello|hey|sorry)[\s,.!?]*)*(?:is (?:this|that)|am i (?:speaking|talking) to)\b"
    r"[^?]{0,40}\??$",
    re.I,
)
_SAME_NUMBER = re.compile(
    r"\b(?:same|this) number\b|\bnumber (?:i'?m|i am) calling from\b|\bcalling number\b", re.I
)
_ADD_CUE = re.compile(r"\b(?:add|also|plus|another|and also|as well|one more)\b", re.I)
_CHANGE_CUE = re.compile(
    r"\b(?:actually|change|instead|make it|not|no|sorry|rather|correct)\b", re.I
)
# "can you repeat that?", not "I need a repeat of my tablets" (a refill)
_REPEAT = re.compile(
    r"\b(?:repeat(?: that| it| again| please| yourself)?\s*[?.!]*$|(?:you|please) repeat\b|"
    r"say (?:that|it) again|come again|pardon|didn't (?:hear|get)|"
    r"did not (?:hear|get)|what did you say)\b",
    re.I,
)
_ADDRESS_SAID = re.compile(
    r"\b(?:my |the |delivery )?address(?: is|:| will be)\s+(.{4,160}?)\s*(?:[.;]\s|[.;]?$)", re.I
)
_TOTAL_Q = re.compile(
    r"\btotal\b|how much (?:will|would|does|is) (?:it|that|this|the order|"
    r"everything)|what (?:will|would) (?:it|that) (?:cost|be|come to)",
    re.I,
)
_COMPLAINT_WORDS = ("complaint", "unhappy", "problem", "wrong")
# text fields that are no description of the call (an address, a quantity, words for a cake)
_NOT_DESCRIPTIVE = re.compile(r"address|quantit|message|write|number|reference", re.I)
# "Amlodipine 5 mg", "Telma 40": a medicine said with its strength
_MEDICINE = re.compile(r"\b([A-Z][a-z]+(?:[ -][A-Z][a-z]*)?)\s+(\d{1,4}(?:\.\d+)?)(\s*mg)?\b")
_NOT_MEDICINE = wordset("dr doctor flat room number phone sir madam")
# words in quotes, but not the apostrophe of "wife's birthday"
_QUOTED_WORDS = re.compile(
    r"[\"“]([^\"”]{2,40})[\"”]|(?<![A-Za-z])['‘]([^'’]{2,40})['’](?![A-Za-z])"
)


# --------------------------------------------------------------------------- the brain


class GroundedBrain:
    """One call's deterministic receptionist (see the module docstring)."""

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
        self.slots: SlotTalk | None = None  # appointment slots through the call's tools
        self.quotes: QuoteTalk | None = None  # totals through the `quote` tool
        self.orders: OrderTalk | None = None  # earlier orders through `order_status`
        self.caller_language: str | None = None  # as the engine heard it; None: not known

    def use_tools(self, tools: ToolRunner) -> None:
        """The call's tools (the same functions Gemini Live calls), each when the tenant
        enabled it: slots and bookings go through check_slot and book, totals through quote,
        earlier orders through order_status. (A caller asking for a person is put through by
        the tenant's `[handoff]`: see `_handoff`.)"""
        talk = SlotTalk(tools, self.today)
        self.slots = talk if talk.handles() else None
        quotes, orders = QuoteTalk(tools, self.kb), OrderTalk(tools, self.today)
        self.quotes = quotes if quotes.handles() else None  # totals: the tool's, never ours
        self.orders = orders if orders.handles() else None

    def heard_in(self, language: str) -> None:
        """The language the engine's speech-to-text heard the caller's last turn in: the
        hand-off is said in it rather than in the tenant's main language."""
        self.caller_language = language or None

    # ----------------------------------------------------------------- public

    def opening(self) -> BrainReply:
        """The tenant's greeting if it is English, else a polite English one naming the business."""
        greeting = self.tenant.greeting
        if language_prefix(self.tenant.primary_language) != "en" or re.search(
            r"[^\x00-\x7f₹’‘“”–—]", greeting
        ):
            greeting = fallback_greeting(self.tenant.name, "en")
        return self._out(greeting, reason="greeting")

    async def reply(self, caller_text: str) -> BrainReply:
        st = self.state
        if st.ended:
            return self.respond(caller_text)
        text = join_spoken_digits(clean(caller_text))
        name = st.details.get("name")
        reason, said, offer_callback = "", None, False
        if self.slots is not None:
            reason, said = "slot", await self.slots.turn(text, name)
        # a read-back or a "which one?" waiting: the caller's answer is the brain's to read
        settled = not st.awaiting_confirmation and st.choice is None
        if said is None and settled and self.orders is not None:
            answer = await self.orders.turn(text, name)
            if answer is not None:
                reason, said, offer_callback = "order_status", answer.text, answer.offer_callback
        if said is None and settled and self.quotes is not None:
            reason, said = "quote", await self.quotes.turn(text, st.order)
        if said is None:
            return self.respond(caller_text)
        st.turns += 1
        st.history.append(("caller", text))
        if offer_callback:
            st.callback_offered = True
            st.last_prompt = "callback"
        return self._out(said, reason=reason)

    def respond(self, caller_text: str) -> BrainReply:
        """Synchronous :meth:`reply` (the grounded brain never waits on anything)."""
        st = self.state
        text = join_spelled_letters(join_spoken_digits(clean(caller_text)))
        text = strip_echo(text, self._last_text)  # never a detail from our own words
        self._phone_doubt = None if parse_phone(text) else partial_phone(text)
        st.turns += 1
        st.history.append(("caller", text))
        if st.ended:
            return self._out(
                f"Thank you for calling {self.tenant.name}. Goodbye!", end=True, reason="ended"
            )
        if is_noise(text):
            return self._not_understood()
        if _REPEAT.search(text) and self._last_text:
            return self._out(self._last_text, reason="repeat")
        if wants_person(text) and self.tenant.handoff is not None:
            return self._handoff()
        if wants_human(text):
            if st.awaiting_confirmation and not is_no(text):
                # "just ask the owner to call me" after the read-back: it stands, with a call back
                st.callback_requested = True
                return self._close_confirmed()
            return self._offer_callback()
        if st.last_prompt == "callback":
            if is_yes(text):
                return self._close_with_callback()
            if is_no(text):
                st.last_prompt = ""
                return self._continue("Alright.", reason="callback_declined")
        if st.choice is not None:
            got = self._resolve_choice(text)
            if got is not None:
                return got
        if st.awaiting_confirmation:
            return self._on_confirmation(text)
        if is_goodbye(text) or (
            st.last_prompt == "anything_else" and (is_no(text) or is_thanks(text))
        ):
            return self._goodbye()
        return self._understand(text)

    # ----------------------------------------------------------------- main step

    def _small_talk(self, text: str) -> BrainReply | None:
        """Greetings, a wrong number, "is this ...?", a cancellation nobody takes here."""
        st = self.state
        if is_greeting(text):
            st.misunderstandings = 0
            return self._continue("Hello!", reason="greeting", default="How can I help you today?")
        if is_wrong_number(text):
            return self._out("No problem. Goodbye!", end=True, reason="wrong_number")
        if _IDENTITY_Q.search(text):
            st.misunderstandings = 0
            return self._continue(
                f"This is {self.tenant.name}.", reason="identity", default="How can I help you?"
            )
        if (
            (st.intent is None or self._is_enquiry())
            and cancels(text)
            and not any(handles_concept(ct, "cancel") for ct in self.tenant.call_types)
        ):
            # never booked instead: the owner calls back
            st.callback_requested = True
            st.misunderstandings = 0
            st.last_prompt = "anything_else"
            return self._out(CANNOT_CANCEL, reason="cannot_cancel")
        return None

    def _understand(self, text: str) -> BrainReply:
        """A turn outside the special moments: small talk, call type, details, questions."""
        st = self.state
        small = self._small_talk(text)
        if small is not None:
            return small
        question = is_question(text)
        action = has_action_cue(text)
        before = (st.intent, dict(st.details), list(st.order))
        intent_changed = self._update_intent(text, question, action)
        said: list[str] = []
        facts: list[Fact] = []
        if intent_changed and self._is_complaint():
            said.append("I'm sorry to hear that.")
        changed: list[str] = []
        answered = False
        if question and st.pending_fields and question_strength(text) < 2:
            # "Saturday?" after "for which date?" is an answer said with a rising voice
            changed = self._extract(text, fresh_intent=intent_changed)
            question = not changed
        if question and not action:
            answer = self._answer(text)
            if answer is not None:
                said.append(answer[0])
                facts += answer[1]
                answered = True
                if self._is_enquiry():
                    if "question" not in st.details:
                        self._set_question(text)
                    changed = self._extract(text)  # the service asked about, for the owner
                elif intent_changed:  # "is my thyroid report ready?" also says what it is about
                    changed = self._extract(text, fresh_intent=True)
            else:
                changed = self._extract(text, fresh_intent=intent_changed)
                if not changed:
                    # a question the files do not answer and that fills nothing is still a
                    # question: answer it (we can't), never push towards an order instead
                    if intent_changed:
                        st.intent, st.details, st.order = before
                        self._enquiry_fallback()
                    return self._no_information(text)
        else:
            changed = self._extract(text, fresh_intent=intent_changed)
            if action:  # "book me a haircut tomorrow. What time do you close?": answer it too
                for answer in self._side_answers(text):
                    said.append(answer[0])
                    facts += answer[1]
        if not (answered or intent_changed or changed):
            return self._unplaced(text, question, action)
        st.misunderstandings = 0
        self._turn_changed = bool(changed)
        acks, ack_facts = self._acknowledge(changed, already=facts)
        return self._next_step(said + acks, facts + ack_facts)

    def _unplaced(self, text: str, question: bool, action: bool) -> BrainReply:
        """A turn that gave nothing: thanks, a bare yes, a question we can't answer, or noise."""
        st = self.state
        self._turn_changed = False
        if is_thanks(text) and not self._collected():
            return self._goodbye()  # "okay, thank you" with nothing begun: a polite end
        if is_yes(text) and st.last_prompt == "anything_else" and not st.awaiting_confirmation:
            # "yes" to "anything else?" asks nothing yet: invite it, don't ask the same again
            st.misunderstandings = 0
            return self._out("Sure, go ahead. What would you like to know?", reason="ack")
        if is_thanks(text) or is_yes(text):
            st.misunderstandings = 0
            return self._continue("You're welcome." if is_thanks(text) else "Okay.", reason="ack")
        if question or "?" in text:
            return self._no_information(text)
        asked_for = self._pending_catalog_field()
        if asked_for is not None:
            return self._not_on_the_list(asked_for)
        if action:  # wants something this business takes no calls for here
            return self._no_information(text)
        return self._not_understood()

    def _next_step(self, said: list[str], facts: list[Fact], reason: str = "") -> BrainReply:
        """After understanding a turn: ask what is missing, read back, or offer more help."""
        st = self.state
        ct = self._call_type()
        if st.choice is not None:
            said.append(self._choice_question(st.choice))
            st.last_prompt = "choice"
            return self._out(" ".join(said), facts=facts, reason=reason or "ask:choice")
        if ct is None or self._is_enquiry():
            st.pending_fields = []
            said.append("Is there anything else I can help you with?")
            st.last_prompt = "anything_else"
            return self._out(" ".join(said), facts=facts, reason=reason or "answer")
        doubt = self._phone_doubt
        if doubt is not None:
            phone = next((p for p in self._plans[ct.name] if p.role == "phone"), None)
            if phone is not None:  # say what we heard and why it can't be right; ask again
                self._phone_doubt = None
                st.pending_fields = [phone.name]
                st.last_prompt = "field"
                said.append(
                    f"I heard the number as {doubt}, and that isn't a full mobile number. "
                    "Could you say your phone number again, digit by digit?"
                )
                return self._out(" ".join(said), facts=facts, reason=f"ask:{phone.name}")
        missing = self._missing()
        if missing:
            ask = [missing[0]]
            if missing[0].short and len(missing) > 1 and missing[1].short:
                ask.append(missing[1])
            st.pending_fields = [p.name for p in ask]
            question = " ".join(self._field_question(p) for p in ask)
            if question == self._last_ask and (not said or said == ["Okay."]):
                # the same question twice in a row: say why (we heard something else, or nothing)
                # a name the caller gave that we could not take: offer it spelled
                names = any(p.role == "name" for p in ask) and names_self(st.history[-1][1])
                said[:] = [repeat_reason(self._turn_changed, asks_name=names)]
            self._last_ask = question
            said.append(question)
            st.last_prompt = "field"
            return self._out(
                " ".join(said), facts=facts, reason=reason or "ask:" + ",".join(p.name for p in ask)
            )
        st.pending_fields = []
        st.awaiting_confirmation = True
        st.last_prompt = "confirm"
        summary, more = self._summary()
        said.append(summary)
        return self._out(" ".join(said), facts=[*facts, *more], reason=reason or "confirm")

    def _continue(self, lead: str, reason: str, default: str = "") -> BrainReply:
        """A short reply followed by whatever we were waiting for (the same question again)."""
        st = self.state
        if st.awaiting_confirmation:
            summary, facts = self._summary()
            return self._out(f"{lead} {summary}", facts=facts, reason=reason)
        if st.choice is not None or (st.intent and not self._is_enquiry()):
            return self._next_step([lead], [], reason=reason)
        st.last_prompt = "anything_else" if st.turns > 1 and not default else ""
        follow = default or "Is there anything else I can help you with?"
        return self._out(f"{lead} {follow}", reason=reason)

    # ----------------------------------------------------------------- intent

    def _call_type(self) -> CallType | None:
        return self.tenant.call_type(self.state.intent) if self.state.intent else None

    def _is_enquiry(self) -> bool:
        ct = self._call_type()
        return ct is not None and is_enquiry_type(ct)

    def _is_complaint(self) -> bool:
        ct = self._call_type()
        return ct is not None and any(
            w in f"{ct.name} {ct.description}".lower() for w in _COMPLAINT_WORDS
        )

    def _enquiry_type(self) -> CallType | None:
        for ct in self.tenant.call_types:
            if is_enquiry_type(ct):
                return ct
        return None

    def _item_bonus(self, text: str) -> dict[str, float]:
        """Call types whose fields the utterance fills: a menu item points to the order type, a
        service with a date and a time to the appointment type (the caller books, not asks)."""
        out: dict[str, float] = {}
        wants = re.search(
            r"\b(?:want|wanted|need|like|get|have|book|order|send|keep|deliver)\b", text, re.I
        )
        has_date = parse_date(text, self.today) is not None
        has_time = parse_time(text) is not None
        for name, plans in self._plans.items():
            ct = self.tenant.call_type(name)
            if ct is None or is_enquiry_type(ct):
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

    # ----------------------------------------------------------------- details

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
                if (replaces(text) or _ADDRESS_SAID.search(text)) and not names_self(text):
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
            explicit = bool(_CHANGE_CUE.search(low))
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
            phrases = (
                *_CHOICE_SYNONYMS.get(option.lower(), ()),
                option.lower(),
                option.lower()[:5],
            )
            for p in phrases:
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
            found = [
                f"{m.group(1)} {m.group(2)}{' mg' if m.group(3) else ''}"
                for m in _MEDICINE.finditer(text)
                if m.group(1).split()[0].lower() not in _NOT_MEDICINE
            ]
            if found:
                return found
        if not lenient or self._only_a_name(text) or self._said_other or only_yes_no(text):
            return None
        parts = [p.strip(" .") for p in re.split(r",|\band\b", _strip_fillers(text))]
        return [p for p in parts if p] or None

    def _parse_text(
        self, plan: FieldPlan, text: str, lenient: bool, fresh_intent: bool
    ) -> str | None:
        spec = plan.spec
        if MESSAGE_FIELD.search(f"{spec.name} {spec.description}"):
            m = _QUOTED_WORDS.search(text) or re.search(
                r"\b(?:write|written|saying|says|message)\b\s*[:,]?\s*(?:is\s+)?(.{2,40}?)\s*"
                r"(?:on (?:it|the cake)|$|[.,])",
                text,
                re.I,
            )
            if m:
                return next(g for g in m.groups() if g).strip()
            if lenient and not is_no(text):
                return _strip_fillers(text) or None
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
            return _strip_fillers(text)[:200] or None
        if "address" in spec.name and (said := _ADDRESS_SAID.search(text)):
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
                    and not _NOT_DESCRIPTIVE.search(f"{p.name} {p.spec.description}")
                ),
                None,
            )
            if first_text is not None and first_text.name == spec.name:
                return text[:200]
        return None

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

    def _extract_items(self, plan: FieldPlan, text: str, *, correcting: bool) -> bool:
        """Update the order lines of an items field from ``text``; True if anything changed.

        New items are added (the same item again updates its quantity); a bare "2 kg" fills the
        line that still needs a weight; after the read-back, "not white forest, black forest"
        swaps the item and keeps the quantity.
        """
        st = self.state
        lines = [line for line in st.order if line.field == plan.name]
        mentions = self.kb.find_mentions(text, plan.pool)
        changed = False
        if not mentions:
            if not lines:
                return False
            kg = parse_kg(text, lenient=any(line.needs_weight() for line in lines))
            needing = [line for line in lines if line.needs_weight()]
            by_weight = [line for line in lines if line.item.per_kg]
            if kg is not None and (needing or (correcting and len(lines) == 1)):
                target = needing[0] if needing else lines[0]
                if target.item.unit_kg is not None:
                    target.kg, target.count = kg, None
                    changed = True
            elif kg is not None and correcting and len(by_weight) == 1:
                by_weight[0].kg = kg  # "make it 1 kg": the one thing sold by weight
                changed = True
            elif correcting and len(lines) == 1:
                n = parse_number(text)
                if n is not None and n == int(n) and not lines[0].item.per_kg:
                    lines[0].count = int(n)
                    changed = True
        else:
            new: list[OrderLine] = []
            norm = normalise(text)
            dropped: list[OrderLine] = []
            for m in mentions:
                if not m.ambiguous and _NEGATED.search(norm[max(0, m.start - 16) : m.start]):
                    # "not white forest, black forest": the item named after "not" goes
                    dropped += [x for x in lines if x.item is m.items[0]]
                    continue
                if m.ambiguous:
                    if st.choice is None:
                        st.choice = self._make_choice(
                            plan.name, list(m.items), m.count, m.kg, m.packs
                        )
                    continue
                new.append(
                    OrderLine(m.items[0], count=m.count, kg=m.kg, packs=m.packs, field=plan.name)
                )
            if dropped:
                st.order = [x for x in st.order if not any(x is d for d in dropped)]
                lines = [x for x in lines if not any(x is d for d in dropped)]
                for line in new:
                    if line.count is None and line.kg is None and line.packs is None:
                        line.kg, line.count, line.packs = (
                            dropped[0].kg,
                            dropped[0].count,
                            dropped[0].packs,
                        )
                changed = True
            known = {id(x.item) for x in lines}
            fresh = [line for line in new if id(line.item) not in known]
            if (
                ((correcting and st.awaiting_confirmation) or replaces(text))
                and len(lines) == 1
                and len(fresh) == 1
                and len(new) == 1
                and not _ADD_CUE.search(text)
            ):
                # "no, not black forest, white forest": swap the item, keep the quantity
                old = lines[0]
                bare = fresh[0].count is None and fresh[0].kg is None and fresh[0].packs is None
                if bare and (fresh[0].item.unit_kg is not None or old.kg is None):
                    fresh[0].kg, fresh[0].count, fresh[0].packs = old.kg, old.count, old.packs
                st.order = [line for line in st.order if line is not old] + fresh
                changed = True
            else:
                for line in new:
                    same = next(
                        (x for x in st.order if x.item is line.item and x.field == plan.name), None
                    )
                    if same is None:
                        st.order.append(line)
                        changed = True
                    elif line.count is not None or line.kg is not None or line.packs is not None:
                        same.count, same.kg, same.packs = line.count, line.kg, line.packs
                        changed = True
        if changed:
            self._sync_items(plan.name)
        return changed

    def _sync_items(self, field: str) -> None:
        lines = [line for line in self.state.order if line.field == field]
        if lines:
            self.state.details[field] = [line.describe() for line in lines]
        else:
            self.state.details.pop(field, None)

    def _price_lines(self) -> None:
        """Apply weights, extras and totals to the priced lines (custom cake flavour x kg ...)."""
        st = self.state
        plans = self._plans.get(st.intent or "", [])
        kg_value = next(
            (st.details[p.name] for p in plans if p.role == "kg" and p.name in st.details), None
        )
        wanted = set(st.extras_said)
        for p in plans:
            if p.role == "yesno" and st.details.get(p.name) is True:
                wanted.add(p.keyword)
            elif p.role == "yesno" and st.details.get(p.name) is False:
                wanted.discard(p.keyword)
        for line in st.order:
            plan = next((p for p in plans if p.name == line.field), None)
            if plan is not None and plan.role == "entity" and line.item.per_kg and kg_value:
                line.kg = Decimal(str(kg_value))
            line.extras = self._extras_for(line, wanted)
        # "a unicorn theme cake, vanilla" is one cake, priced by the theme cake's starting price
        for p in plans:
            lines = [x for x in st.order if x.field == p.name]
            lead = [x for x in lines if x.item.per_kg and x.item.onwards]
            if p.role == "entity" and lead and len(lines) > 1:
                st.order = [x for x in st.order if x.field != p.name or x is lead[0]]
        for p in plans:
            if p.role == "items":
                self._sync_items(p.name)
        st.total = self.kb.total(st.order) if st.order else None

    def _extras_for(self, line: OrderLine, wanted: set[str]) -> list[Extra]:
        out: list[Extra] = []
        seen: set[str] = set()
        for e in self.kb.extras:
            if e.keyword not in wanted or e.keyword in seen:
                continue
            same_line = line.item.fact is not None and e.line == line.item.fact.english
            same_kind = e.per_kg == line.item.per_kg and (
                e.source == line.item.source
                or e.keyword in normalise(line.item.section)
                or not any(
                    it.fact is not None and e.line == it.fact.english for it in self.kb.items
                )
            )
            if same_line or same_kind:
                out.append(e)
                seen.add(e.keyword)
        return out

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
            elif plan.name not in st.details:
                out.append(plan)
        # what and when first; the caller's name last, as a person at the counter would
        return sorted(out, key=lambda p: p.role == "name")

    def _field_question(self, plan: FieldPlan) -> str:
        if plan.role == "items":
            lines = [line for line in self.state.order if line.field == plan.name]
            needing = [line for line in lines if line.needs_weight()]
            if needing:
                item = needing[0].item
                price = item.describe_price()
                return f"How many kilos of {item.display} would you like? It is {price}."
        return plan.question

    def _acknowledge(self, changed: list[str], already: list[Fact]) -> tuple[list[str], list[Fact]]:
        """Say back what was just understood when it carries a number worth checking (prices
        from the menu, the delivery charge of the area), with the facts it comes from."""
        st = self.state
        out: list[str] = []
        facts: list[Fact] = []
        plans = {p.name: p for p in self._plans.get(st.intent or "", [])}
        for name in changed:
            plan = plans.get(name)
            if plan is not None and "address" in name and isinstance(st.details.get(name), str):
                area = self._area_facts(st.details[name])
                out += [f.spoken for f in area]
                facts += area
            if plan is None or plan.role not in ("items", "entity"):
                continue
            lines = [line for line in st.order if line.field == name]
            if not lines or all(
                line.item.fact in already and line.kg is None and line.count is None
                for line in lines
            ):
                continue
            facts += [line.item.fact for line in lines if line.item.fact is not None]
            priced = [(line, self.kb.amount(line)) for line in lines]
            bits = []
            # a service booked is said back without its price unless the caller asked it: the
            # price comes once, in the read-back (an order's lines carry theirs: they add up)
            quiet = plan.role == "entity" and not asks_price(self.state.history[-1][1])
            for line, amount in priced:
                if quiet:
                    bits.append(line.describe())
                elif amount is not None:
                    word = "from " if line.item.onwards else ""
                    bits.append(f"{line.describe()}, {word}{format_rupees(amount)}")
                elif not line.needs_weight():
                    bits.append(line.describe())
            if bits:
                sentence = "; ".join(bits) + "."
                out.append(sentence[:1].upper() + sentence[1:])
            if st.total is not None and len(st.order) > 1 and len(priced) == len(st.order):
                out.append(f"That comes to {format_rupees(st.total)}.")
        return out, facts

    def _area_facts(self, address: str) -> list[Fact]:
        """What the files say about delivering to the area of ``address`` (charge, no delivery)."""
        facts = [
            it.fact
            for m in self.kb.find_mentions(address)
            for it in m.items
            if it.kind == "charge" and it.fact is not None
        ]
        if not facts:
            said = {t for t in tokens(address) if not t.isdigit() and len(t) >= 5}
            for hit in self.kb.search("delivery " + address, k=1):
                words = set(tokens(hit.fact.english))
                if "deliver" in words and said & words:
                    facts.append(hit.fact)
        for f in facts:
            if f.spoken not in self.state.facts_used:
                self.state.facts_used.append(f.spoken)
        return facts[:1]

    # ----------------------------------------------------------------- choices

    def _make_choice(
        self,
        field: str,
        items: list[MenuItem],
        count: int | None,
        kg: Decimal | None,
        packs: int | None,
    ) -> Choice:
        displays = [it.display for it in items]
        labels = []
        for it in items:
            label = it.display
            if displays.count(it.display) > 1:
                others = set().union(*(o.context for o in items if o is not it))
                extra = [w for w in tokens(it.section) if w not in others and w != "price"]
                label = (
                    f"{it.display} for {' '.join(extra)}"
                    if extra
                    else f"{it.display} ({it.section})"
                )
            labels.append(label)
        return Choice(field, items, labels, count, kg, packs)

    def _choice_question(self, choice: Choice) -> str:
        opts = [
            f"the {label} at {it.describe_price()}"
            for label, it in zip(choice.labels, choice.options, strict=True)
        ]
        return f"Do you mean {join_or(opts)}?"

    def _resolve_choice(self, text: str) -> BrainReply | None:
        """Answer to "which one?"; None to handle the turn normally (a question, a goodbye)."""
        st = self.state
        choice = st.choice
        assert choice is not None
        said = set(tokens(text))
        low = text.lower()
        pick: int | None = None
        for word, idx in _ORDINALS.items():
            if not ordinal_pick(word, text):
                continue
            if re.search(rf"\b{word}\b", low) and idx < len(choice.options) and "kg" not in low:
                pick = idx
        if re.search(r"\b(?:last|latter|other one)\b", low):
            pick = len(choice.options) - 1
        if pick is None:
            common = set.intersection(*[set(tokens(lbl)) for lbl in choice.labels])
            scores = [len((set(tokens(lbl)) - common) & said) for lbl in choice.labels]
            best = max(scores)
            if best > 0 and scores.count(best) == 1:
                pick = scores.index(best)
        if pick is None:
            if is_question(text) or is_goodbye(text) or wants_human(text):
                st.choice = None
                return None
            if self._extract(text):  # "day after tomorrow, afternoon": noted; still which one?
                st.misunderstandings = 0
                return self._next_step(["Noted."], [])
            st.misunderstandings += 1
            if st.misunderstandings >= 2:
                return self._close_with_callback(not_understood=True)
            return self._out(
                "Sorry, which one? " + self._choice_question(choice), reason="ask:choice"
            )
        item = choice.options[pick]
        st.choice = None
        st.misunderstandings = 0
        line = OrderLine(
            item, count=choice.count, kg=choice.kg, packs=choice.packs, field=choice.field
        )
        plan = next(
            (p for p in self._plans.get(st.intent or "", []) if p.name == choice.field), None
        )
        st.order = [x for x in st.order if not (x.field == choice.field and x.item is item)] + [
            line
        ]
        if plan is not None and plan.role == "entity":
            names = [x.item.display for x in st.order if x.field == choice.field]
            st.details[choice.field] = " and ".join(dict.fromkeys(names))
        else:
            self._sync_items(choice.field)
        changed = [choice.field] + [c for c in self._extract(text) if c != choice.field]
        self._price_lines()
        if st.awaiting_confirmation:
            summary, facts = self._summary()
            return self._out(summary, facts=facts, reason="confirm")
        acks, ack_facts = self._acknowledge(changed, already=[])
        return self._next_step(acks, ack_facts)

    # ----------------------------------------------------------------- confirmation

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
                    parts.append(f"phone {_spell_number(str(value))}")
            elif plan.role == "items":
                parts.append(
                    "for "
                    + _join_and(
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
                parts.append(f"{_fmt_number(value)} kg")
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
                parts.append(f"{label} {_join_and([str(v) for v in value])}")
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
        what = _article(ct.name.replace("_", " "))
        if parts and not re.match(r"(?:for|on|at|with|under|to)\b", parts[0]):
            parts[0] = "with " + parts[0]
        return f"So that's {what} {', '.join(parts)}. Is that right?", facts

    def _price_belongs(self, call_type: str) -> bool:
        """The read-back carries a price for an order (its lines add up), or when the caller
        asked what it costs; a booking's read-back is the booking."""
        has_items = any(p.role == "items" for p in self._plans.get(call_type, []))
        return has_items or any(asks_price(t) for who, t in self.state.history if who == "caller")

    def _total_text(self) -> str:
        st = self.state
        if st.total is None or not st.order:
            return ""
        onwards = any(line.item.onwards for line in st.order)
        if onwards:
            return f"starting from {format_rupees(st.total)}, the final price will be confirmed"
        return f"{'total' if len(st.order) > 1 else 'price'} {format_rupees(st.total)}"

    def _on_confirmation(self, text: str) -> BrainReply:
        """The caller's answer to the read-back: a correction, yes, no, or a question."""
        st = self.state
        if _SAME_NUMBER.search(text) and not parse_phone(text):
            summary, facts = self._summary()
            text = f"Yes, we'll use the number you're calling from. {summary}"
            return self._out(text, facts=facts, reason="confirm")
        changed = self._extract(text, correcting=True)
        if changed:
            st.misunderstandings = 0
            st.awaiting_confirmation = False
            return self._next_step(["Thanks, I've changed that."], [], reason="corrected")
        if is_yes(text) and st.last_prompt == "correct":
            # "yes" to "what should I change?" confirms nothing yet: read it out again
            st.last_prompt = "confirm"
            summary, facts = self._summary()
            return self._out(summary, facts=facts, reason="confirm")
        if is_yes(text) or (ends_with_thanks(text) and not is_no(text)):
            return self._close_confirmed()  # "... that's why, thank you": nothing to change
        if is_no(text):
            st.misunderstandings = 0
            st.last_prompt = "correct"
            return self._out(
                "Sorry about that. What should I change? If it is the name, you can also spell it.",
                reason="ask:correction",
            )
        if is_goodbye(text):
            return self._goodbye()
        if is_question(text):
            answer = self._answer(text)
            summary, facts = self._summary()
            if answer is None:
                return self._out(
                    "I'm sorry, I don't have that information. " + summary,
                    facts=facts,
                    reason="no_information",
                )
            return self._out(f"{answer[0]} {summary}", facts=[*answer[1], *facts], reason="answer")
        return self._not_understood()

    def _close_confirmed(self) -> BrainReply:
        st = self.state
        st.confirmed = True
        st.ended = True
        st.pending_fields = []
        name = next(
            (
                st.details[p.name]
                for p in self._plans.get(st.intent or "", [])
                if p.role == "name" and not p.patient and p.name in st.details
            ),
            None,
        )
        thanks = f"Thank you, {name}!" if name else "Thank you!"
        if self._is_complaint():
            middle = "I've noted everything, and the owner will call you back about it soon."
        else:
            middle = "The owner will confirm it with you on WhatsApp shortly."
        return self._out(f"{thanks} {middle} Goodbye!", end=True, reason="closed")

    # ----------------------------------------------------------------- answers

    def _search_text(self, text: str) -> str:
        """The question as searched: the business's own name dropped, today/tomorrow as weekdays."""
        q = re.sub(r"\btoday\b|\btonight\b", f" {self.today:%A} ", text, flags=re.I)
        tomorrow = date.fromordinal(self.today.toordinal() + 1)
        q = re.sub(r"\btomorrow\b", f" {tomorrow:%A} ", q, flags=re.I)
        # "your saloon": the business's own name says nothing, unless the files use the word
        words = [
            w
            for w in q.split()
            if not (
                set(tokens(w)) and set(tokens(w)) <= self._name_words and not self.kb.knows_word(w)
            )
        ]
        return " ".join(words)

    def _answer(self, text: str) -> tuple[str, list[Fact]] | None:
        """A reply built only from the files, or None when they do not answer ``text``."""
        st = self.state
        if _TOTAL_Q.search(text) and st.order:
            total = self._total_text()
            if total:
                lines = _join_and([line.describe() for line in st.order])
                return f"For {lines}, that's {re.sub(r'^(?:total|price) ', '', total)}.", []
        q = self._search_text(text)
        mentions = self.kb.find_mentions(q)
        rest = set(tokens(q)) - {t for m in mentions for t in tokens(m.said)} - {"price"}
        for m in mentions:
            rest -= {t for it in m.items for t in tokens(it.display)}
        if mentions and (not rest or any(m.kg or (m.count or 0) > 1 for m in mentions)):
            return self._catalog_answer(mentions)
        found = self.kb.search(q, k=3)
        hits = [h for h in found if h.coverage >= ANSWER_COVERAGE]
        if not hits and clear_winner([(h.score, h.coverage) for h in found]):
            hits = found[:1]  # "till what time are you open on Sunday?": one fact stands out
        if hits:
            top = hits[0]
            chosen = [top] + [
                h for h in hits[1:2] if h.score >= 0.8 * top.score and h.coverage >= top.coverage
            ]
            facts = [h.fact for h in chosen]
            return " ".join(f.spoken for f in facts), facts
        if mentions:
            return self._catalog_answer(mentions)
        return None

    def _side_answers(self, text: str) -> list[tuple[str, list[Fact]]]:
        """Answers to the questions asked beside a request, one per question sentence that
        asks for nothing itself; before anything is asked back."""
        out = []
        for sentence in side_questions(text):
            answer = self._answer(sentence)
            if answer is not None and answer[0]:
                out.append(answer)
        return out

    def _catalog_answer(self, mentions: list[Any]) -> tuple[str, list[Fact]]:
        said: list[str] = []
        facts: list[Fact] = []
        for m in mentions:
            if len(m.items) == 1 and (m.kg or (m.count or 0) > 1 or m.packs):
                line = OrderLine(m.items[0], count=m.count, kg=m.kg, packs=m.packs)
                amount = self.kb.amount(line)
                if amount is not None:
                    word = "from " if line.item.onwards else ""
                    said.append(f"{line.describe()} comes to {word}{format_rupees(amount)}.")
                    if line.item.fact is not None:
                        facts.append(line.item.fact)
                    continue
            shared = len(m.items) > 1 and len({id(it.fact) for it in m.items}) == 1
            for it in m.items[:3]:
                if it.fact is None:
                    continue
                crowded = sum(1 for x in self.kb.items if x.fact is it.fact) > 1
                if crowded and not shared:  # "Hair spa: ...; keratin treatment: ...": just this one
                    said.append(f"{it.display[:1].upper()}{it.display[1:]}: {it.describe_price()}.")
                elif it.fact not in facts:
                    said.append(it.fact.spoken)
                if it.fact not in facts:
                    facts.append(it.fact)
        return " ".join(dict.fromkeys(said)), facts

    # ----------------------------------------------------------------- endings

    def _no_information(self, text: str) -> BrainReply:
        st = self.state
        st.misunderstandings = 0
        st.callback_requested = True
        if self._is_enquiry() and "question" not in st.details:
            self._set_question(text)
        lead = (
            "I'm sorry, I don't have that information. "
            "I'll ask the owner to call you back about it."
        )
        if st.intent and not self._is_enquiry():
            return self._next_step([lead], [], reason="no_information")
        st.last_prompt = "anything_else"
        return self._out(
            f"{lead} Is there anything else I can help you with?", reason="no_information"
        )

    def _not_understood(self) -> BrainReply:
        st = self.state
        st.misunderstandings += 1
        if st.misunderstandings >= 2:
            return self._close_with_callback(not_understood=True)
        again = ""
        if st.awaiting_confirmation:
            again = " Are the details I read out correct?"
        elif st.pending_fields:
            plans = {p.name: p for p in self._plans.get(st.intent or "", [])}
            again = " " + " ".join(
                self._field_question(plans[n]) for n in st.pending_fields if n in plans
            )
        return self._out(
            "Sorry, I didn't catch that. Could you say it another way?" + again,
            reason="not_understood",
        )

    def _pending_catalog_field(self) -> FieldPlan | None:
        """The menu / service field we just asked for, if any."""
        for plan in self._plans.get(self.state.intent or "", []):
            if plan.name in self.state.pending_fields and plan.role in ("items", "entity"):
                return plan if plan.pool else None
        return None

    def _not_on_the_list(self, plan: FieldPlan) -> BrainReply:
        """The caller named something the files do not list: say so, never take it blindly."""
        st = self.state
        st.misunderstandings += 1
        if st.misunderstandings >= 2:
            return self._close_with_callback(not_understood=True)
        sections: dict[str, MenuItem] = {}
        for it in plan.pool:
            sections.setdefault(it.section, it)
        # one example per section, each name once ("Haircut" is in gents' and ladies' lists)
        names = list(dict.fromkeys(it.display for it in sections.values()))
        examples = join_or(names[:4])
        return self._out(
            f"Sorry, I couldn't find that in our list. We have, for example, {examples}. "
            + self._field_question(plan),
            reason="not_found",
        )

    def _handoff(self) -> BrainReply:
        """Put the caller through (the bridge ends the stream once this is heard, and Exotel's
        Connect applet rings the owner), or, outside the `[handoff]` hours, offer to take a
        message: the owner is told either way (bridge/handoff.py)."""
        st = self.state
        handoff = self.tenant.handoff
        assert handoff is not None
        language = self.caller_language or self.tenant.primary_language
        now = self.now if self.now.tzinfo is not None else self.now.astimezone()
        if handoff.hours.is_open(now):
            st.ended = True
            return self._out(handoff.phrase(language), end=True, reason="handoff")
        st.callback_offered = True
        st.last_prompt = "callback"
        return self._out(handoff.unavailable_phrase(language), reason="handoff_unavailable")

    def _offer_callback(self) -> BrainReply:
        st = self.state
        st.callback_offered = True
        st.last_prompt = "callback"
        return self._out(
            "The owner isn't available on this line, but I can ask them to call you back on the "
            "number you're calling from. Shall I do that?",
            reason="offer_callback",
        )

    def _close_with_callback(self, *, not_understood: bool = False) -> BrainReply:
        st = self.state
        st.callback_requested = True
        st.ended = True
        lead = "I'm sorry, I'm having trouble understanding. " if not_understood else "Sure. "
        return self._out(
            f"{lead}I'll ask the owner to call you back on the number you're calling from. "
            f"Thank you for calling {self.tenant.name}. Goodbye!",
            end=True,
            reason="callback_close" if not_understood else "callback",
        )

    def _goodbye(self) -> BrainReply:
        st = self.state
        st.ended = True
        noted = ""
        if st.intent and not self._is_enquiry() and not st.confirmed and self._collected():
            noted = " I've noted what you told me, and the owner will get back to you."
        return self._out(
            f"Thank you for calling {self.tenant.name}.{noted} Goodbye!", end=True, reason="goodbye"
        )

    # ----------------------------------------------------------------- output

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


def _strip_fillers(text: str) -> str:
    s = re.sub(
        r"^(?:(?:um+|uh+|so|well|okay|ok|yes|yeah|sure|it's|it is|the)\b[\s,.]*)+",
        "",
        text.strip(),
        flags=re.I,
    )
    return s.strip(" .")


def _join_and(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _fmt_number(value: Any) -> str:
    d = Decimal(str(value))
    return str(int(d)) if d == d.to_integral_value() else f"{d.normalize():f}"


def _spell_number(number: str) -> str:
    digits = re.sub(r"\D", "", number)
    if digits.startswith("91") and len(digits) == 12:
        digits = digits[2:]
    if len(digits) == 10:
        return f"{digits[:5]} {digits[5:]}"
    return number
