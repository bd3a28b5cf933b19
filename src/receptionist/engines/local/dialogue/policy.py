"""What the brain does with a turn before it asks anything: a complaint is not an order."""

from __future__ import annotations

from ..intents import IntentScore
from .corrections import replaces


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


def repeat_reason(heard_something: bool) -> str:
    """Why the same question comes again: what the caller said was noted but does not answer
    it, or nothing in it could be used."""
    if heard_something:
        return "Thank you, noted."
    return "Sorry, I still need this."
