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
from receptionist.language.phones import parse_phone
from receptionist.language.text import clean, sentences
from receptionist.tenants.messages import fallback_greeting, language_prefix

from .brain import BrainReply
from .dialogue.answers import Answering
from .dialogue.appointments import SlotTalk
from .dialogue.core import CALLER_NUMBER_TEXT, MAX_NAME_MISSES
from .dialogue.corrections import names_self
from .dialogue.digits import join_spoken_digits, partial_phone
from .dialogue.echo import strip_echo
from .dialogue.order_status import OrderTalk
from .dialogue.patterns import IDENTITY_Q, ORDINALS, REPEAT, SAME_NUMBER
from .dialogue.policy import (
    CANNOT_CANCEL,
    asks_for_another,
    cancels,
    ends_with_thanks,
    ordinal_pick,
    repeat_reason,
)
from .dialogue.quotes import QuoteTalk
from .dialogue.speaking import say_date, say_time
from .dialogue.spelling import join_spelled_letters
from .intents import (
    FieldPlan,
    handles_concept,
    has_action_cue,
    join_or,
)
from .knowledge import (
    Fact,
    MenuItem,
    OrderLine,
    tokens,
)

__all__ = ["CALLER_NUMBER_TEXT", "GroundedBrain", "say_date", "say_time"]


class GroundedBrain(Answering):
    """One call's deterministic receptionist (see the module docstring)."""

    # the call's tools (use_tools), each None when the tenant did not enable it
    slots: SlotTalk | None = None  # appointment slots through check_slot and book
    quotes: QuoteTalk | None = None  # totals through the `quote` tool
    orders: OrderTalk | None = None  # earlier orders through `order_status`
    caller_language: str | None = None  # as the engine heard it; None: not known

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
        if REPEAT.search(text) and self._last_text:
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

    def _small_talk(self, text: str) -> BrainReply | None:
        """Greetings, a wrong number, "is this ...?", a cancellation nobody takes here."""
        st = self.state
        if is_greeting(text):
            st.misunderstandings = 0
            return self._continue("Hello!", reason="greeting", default="How can I help you today?")
        if is_wrong_number(text):
            return self._out("No problem. Goodbye!", end=True, reason="wrong_number")
        # "is this the gas agency? I want a cylinder" was meant for someone else: say who we are
        first = (sentences(text) or [""])[0]
        if IDENTITY_Q.search(text) or asks_for_another(first, self._name_words, self.kb.knows_word):
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
        parts = sentences(text)  # "is this the cake shop? I want ...": nothing to take from it
        if len(parts) > 1 and IDENTITY_Q.search(parts[0]):
            text = " ".join(parts[1:])
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
            for plan in self._plans.get(st.intent or "", []):
                if plan.name not in st.pending_fields or not is_yes(text):
                    continue
                if plan.role == "name":
                    # "yes" to "your name?": the caller thinks they gave it; asking again loops
                    self._name_misses[plan.name] = MAX_NAME_MISSES
                elif plan.role in ("text", "list") and self._asks.get(plan.name, 0) >= 2:
                    # the same: "yes" to "which medicines?" asked twice; the owner will ask
                    self._given_up.add(plan.name)
            return self._continue("You're welcome." if is_thanks(text) else "Okay.", reason="ack")
        if question or "?" in text:
            return self._no_information(text)
        if names_self(text) and any(
            p.role == "name" and p.name in st.pending_fields
            for p in self._plans.get(st.intent or "", [])
        ):
            # "My name is current": a name we cannot take; offer spelling, then go on without
            st.misunderstandings = 0
            return self._next_step([], [])
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
        self._count_name_misses(self._missing())
        missing = self._missing()
        if missing:
            ask = [missing[0]]
            if missing[0].short and len(missing) > 1 and missing[1].short:
                ask.append(missing[1])
            st.pending_fields = [p.name for p in ask]
            for p in ask:
                self._asks[p.name] = self._asks.get(p.name, 0) + 1
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

    def _count_name_misses(self, missing: list[FieldPlan]) -> None:
        """The caller answered "your name?" with a name we could not take ("Name is current")."""
        st = self.state
        if self._misses_counted == st.turns:
            return  # once per caller turn
        self._misses_counted = st.turns
        said = st.history[-1][1] if st.history else ""
        for plan in missing:
            if plan.role == "name" and plan.name in self.state.pending_fields and names_self(said):
                self._name_misses[plan.name] = self._name_misses.get(plan.name, 0) + 1

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

    def _resolve_choice(self, text: str) -> BrainReply | None:
        """Answer to "which one?"; None to handle the turn normally (a question, a goodbye)."""
        st = self.state
        choice = st.choice
        assert choice is not None
        said = set(tokens(text))
        low = text.lower()
        pick: int | None = None
        for word, idx in ORDINALS.items():
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

    def _on_confirmation(self, text: str) -> BrainReply:
        """The caller's answer to the read-back: a correction, yes, no, or a question."""
        st = self.state
        if SAME_NUMBER.search(text) and not parse_phone(text):
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
