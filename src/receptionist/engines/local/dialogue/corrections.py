"""A caller changing their mind: "actually, make that X instead", "change it to 6 pm, not 5".

The brain asks these when a turn names a value for a detail it already holds: a replacement
cue means the new value replaces the old one (an item swaps for the other, a time for the
other), where without it a second item is an addition.
"""

from __future__ import annotations

import re

_REPLACE = re.compile(
    r"\b(?:instead|rather|switch (?:it|that|this|to)|swap|change (?:it|that|this|the \w+) to|"
    r"make (?:it|that|this) (?:a|an|one|two|\d|half)|make (?:that|it) instead|"
    r"(?:actually|no wait|wait|sorry),? (?:no,? )?(?:make|change|switch|i want|i'd like|"
    r"give me|let's do|do))\b",
    re.I,
)
_ADD = re.compile(r"\b(?:add|also|plus|another|as well|one more|along with)\b", re.I)
#: a name said with its cue ("my name is", "I'm", "this is"), not a bare word
_NAME_CUE = re.compile(
    r"\b(?:my name(?:'s| is)?|name(?:'s| is)|i am|i'm|this is|it's|call me|naam)\b", re.I
)


def replaces(text: str) -> bool:
    """The caller replaces something said before ("... instead"), rather than adding to it."""
    return bool(_REPLACE.search(text)) and not _ADD.search(text)


def names_self(text: str) -> bool:
    """The caller introduces themself with a cue, so a name in the turn is theirs."""
    return bool(_NAME_CUE.search(text))
