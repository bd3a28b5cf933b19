"""What the brain does with a turn before it asks anything: a complaint is not an order."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from receptionist.language.cues import is_question

from ..intents import FieldPlan, IntentScore, has_action_cue
from ..knowledge import tokens
from .corrections import replaces
from .patterns import IDENTITY_Q


def cancel_first(
    scores: list[IntentScore], best: IntentScore | None, need: float, text: str
) -> IntentScore | None:
    """ "Cancel my hair spa appointment for tomorrow" names a service and a date, which score for
    booking too; the cancellation wins when the caller says cancel. "Cancel the syrup, send the
    spray instead" changes an order: no cancellation."""
    if best is None or "cancel" in best.cues or replaces(text):
        return best
    cancel = next((s for s in scores if "cancel" in s.cues), None)
    if cancel is not None and cancel.score >= need:
        return cancel
    return best


def complaint_first(
    scores: list[IntentScore], best: IntentScore | None, need: float, text: str
) -> IntentScore | None:
    """A caller reporting a problem with something they bought names that item, which scores
    for the order type too ("the black forest cake I picked up was stale"); the complaint wins
    when its own words are clear enough. "Make it X instead of Y" is a change, not a complaint.
    """
    if best is None or "complaint" in best.cues or replaces(text):
        return best
    complaint = next((s for s in scores if "complaint" in s.cues), None)
    if complaint is not None and complaint.score >= need:
        return complaint
    return best


def repeat_reason(heard_something: bool, asks_name: bool = False) -> str:
    """Why the same question comes again: what the caller said was noted but does not answer
    it, or nothing in it could be used. A name not caught twice is offered spelled."""
    if asks_name:
        lead = "Thank you, noted. " if heard_something else ""
        return f"{lead}Sorry, I didn't catch your name. You can also spell it, letter by letter."
    if heard_something:
        return "Thank you, noted."
    return "Sorry, I still need this."


_PRICE_WORDS = re.compile(
    r"\b(?:how much|price|prices|cost|costs|charge|charges|rate|rates|fee|fees|kitna|kitne)\b", re.I
)


def asks_price(text: str) -> bool:
    """The caller asked what something costs ("how much is it", "what's the fee")."""
    return bool(_PRICE_WORDS.search(text))


_NUMBER_ORDINALS = ("one", "two", "three")


def ordinal_pick(word: str, text: str) -> bool:
    """May ``word`` in ``text`` pick an option of a "which one?" question? "first" always may;
    a bare "one" / "two" only in a short answer ("the second one", "two"), never inside a phone
    number read out in words ("nine eight four one ...")."""
    if word not in _NUMBER_ORDINALS:
        return True
    return len(text.split()) <= 5 and not re.search(r"\d{5,}", text)


_YES_NO_WORDS = re.compile(
    r"^(?:\s|[,.!?]|yes|yeah|yep|yup|no|nope|ok|okay|sure|please|correct|right|that's|"
    r"that is|it's|it is|fine|alright|all|haan|ji|nahi|theek|hai|sahi|thank you|thanks)*$",
    re.I,
)


def only_yes_no(text: str) -> bool:
    """Nothing but a yes / no and polite words ("Yes, please.", "No, that's fine"): no detail."""
    return bool(_YES_NO_WORDS.match(text.strip()))


#: a fact that covers this share of the question's words, and scores at least WINNER_RATIO times
#: the next one, answers it even below the usual coverage (filler words "till", "do I" dilute it)
WINNER_COVERAGE = 0.5
WINNER_RATIO = 2.0


def clear_winner(hits: list[tuple[float, float]]) -> bool:
    """(score, coverage) of the search hits, best first: does the first stand out enough? A
    lone hit is no winner: nothing shows it stands out ("ice cream" -> a cream cheese cake)."""
    if len(hits) < 2 or hits[0][1] < WINNER_COVERAGE:
        return False
    return hits[0][0] >= WINNER_RATIO * hits[1][0]


def implied_option(description: str, options: tuple[str, ...]) -> str | None:
    """The one option a field's description ties it to ("Full address ..., for delivery orders"
    -> "delivery"), or None."""
    low = description.lower()
    named = [
        o for o in options if re.search(rf"\b(?:for|if|only for) {re.escape(o.lower())}\b", low)
    ]
    return named[0] if len(named) == 1 else None


_THANKS_AT_END = re.compile(r"\b(?:thank you|thanks|thank you so much|dhanyavaad)[\s.!,]*$", re.I)


def ends_with_thanks(text: str) -> bool:
    """The turn closes with thanks ("I'm travelling, that's why, thank you")."""
    return bool(_THANKS_AT_END.search(text))


_SENTENCE_END = re.compile(r"(?<=[.?!])\s+")


def side_questions(text: str) -> list[str]:
    """The sentences of a turn that ask something and request nothing ("What time do you
    close?" after "Book me a haircut tomorrow."); none when the turn is one sentence."""
    sentences = [x.strip() for x in _SENTENCE_END.split(text) if x.strip()]
    if len(sentences) < 2:
        return []
    return [x for x in sentences if is_question(x) and not has_action_cue(x)]


_CANCELS = re.compile(
    r"\b(?:cancel|reschedule|postpone|prepone|call off|can'?t come|cannot come|won'?t be able|"
    r"not coming|move my|shift my)\b",
    re.I,
)


def cancels(text: str) -> bool:
    """The caller cancels or moves a booking ("cancel the syrup, send the spray instead" is a
    change of an order, not a cancellation)."""
    return bool(_CANCELS.search(text)) and not replaces(text)


def implied_choices(
    details: dict[str, Any], plans: list[FieldPlan], changed: list[str]
) -> list[str]:
    """A detail the schema ties to one option of a choice answers that choice too: an address
    "for delivery orders" given means delivery (the tenant's own description). Fills
    ``details``; returns the choice fields filled."""
    out = []
    for choice in plans:
        if choice.role != "choice" or choice.name in details:
            continue
        for plan in plans:
            if plan.name not in changed or plan.role != "text":
                continue
            option = implied_option(plan.spec.description, choice.options)
            if option is not None:
                details[choice.name] = option
                out.append(choice.name)
                break
    return out


CANNOT_CANCEL = (
    "I'm sorry, I can't cancel or change that on this line. I'll ask the owner to call you back "
    "about it on the number you're calling from. Is there anything else I can help you with?"
)


def asks_for_another(
    sentence: str, name_words: set[str], knows_word: Callable[[str], bool]
) -> bool:
    """ "Is this the gas agency?" naming nothing of this business (a word of its name, or one
    its files use): the call was meant for someone else."""
    if not IDENTITY_Q.search(sentence):
        return False
    asked = re.sub(r"^.*?\b(?:is (?:this|that)|speaking|talking) (?:to )?", "", sentence)
    said = set(tokens(asked))
    return bool(said) and not (said & name_words) and not any(knows_word(w) for w in said)
