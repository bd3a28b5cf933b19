"""Cues the grounded brain looks for in a caller turn (shapes of English phrases)."""

from __future__ import annotations

import re

ORDINALS = {
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

NEGATED = re.compile(r"\b(?:not|no|instead of|remove|cancel|without)\s+(?:the\s+|a\s+)?$")

IDENTITY_Q = re.compile(
    r"^(?:(?:hi|hello|hey|sorry)[\s,.!?]*)*(?:is (?:this|that)|am i (?:speaking|talking) to)\b"
    r"[^?]{0,40}\??$",
    re.I,
)

SAME_NUMBER = re.compile(
    r"\b(?:same|this) number\b|\bnumber (?:i'?m|i am) calling from\b|\bcalling number\b", re.I
)

ADD_CUE = re.compile(r"\b(?:add|also|plus|another|and also|as well|one more)\b", re.I)

CHANGE_CUE = re.compile(
    r"\b(?:actually|change|instead|make it|not|no|sorry|rather|correct)\b", re.I
)

# "can you repeat that?", not "I need a repeat of my tablets" (a refill)
REPEAT = re.compile(
    r"\b(?:repeat(?: that| it| again| please| yourself)?\s*[?.!]*$|(?:you|please) repeat\b|"
    r"say (?:that|it) again|come again|pardon|didn't (?:hear|get)|"
    r"did not (?:hear|get)|what did you say)\b",
    re.I,
)

# "Addresses Lane 5": speech-to-text's "address is" said quickly
ADDRESS_SAID = re.compile(
    r"\b(?:my |the |delivery )?address(?: is|:| will be|es)\s+(.{4,160}?)\s*(?:[.;]\s|[.;]?$)", re.I
)

TOTAL_Q = re.compile(
    r"\btotal\b|how much (?:will|would|does|is) (?:it|that|this|the order|"
    r"everything)|what (?:will|would) (?:it|that) (?:cost|be|come to)",
    re.I,
)

COMPLAINT_WORDS = ("complaint", "unhappy", "problem", "wrong")

# text fields that are no description of the call (an address, a quantity, words for a cake)
NOT_DESCRIPTIVE = re.compile(r"address|quantit|message|write|number|reference", re.I)

# words in quotes, but not the apostrophe of "wife's birthday"
QUOTED_WORDS = re.compile(
    r"[\"“]([^\"”]{2,40})[\"”]|(?<![A-Za-z])['‘]([^'’]{2,40})['’](?![A-Za-z])"
)
