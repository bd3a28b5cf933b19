"""Words for the options of a choice a caller makes ("pickup" or "delivery"), per language.

A tenant's choice field names its options in its description ("'pickup' or 'delivery'"); a
caller rarely says the option itself: "I'll come and get it", "send it to my home", "ghar pe
bhej do". Each option has one table per language; readers use the union.
"""

from __future__ import annotations

__all__ = ["CHOICE_SYNONYMS", "choice_phrases"]

_TABLES: dict[str, dict[str, tuple[str, ...]]] = {
    "pickup": {
        "en": ("pick up", "pick it up", "pickup", "pick-up", "collect", "come and get",
               "come and take", "take away", "takeaway", "self pickup", "i'll come"),
    },
    "delivery": {
        "en": ("deliver", "delivery", "home delivery", "send it", "send them", "drop it",
               "to my home", "to my house", "to my place"),
        "hi-latn": ("ghar pe", "ghar par", "bhej do"),
    },
}  # fmt: skip

#: option (lower case) -> every phrase for it, in table order
CHOICE_SYNONYMS: dict[str, tuple[str, ...]] = {
    option: tuple(p for table in tables.values() for p in table)
    for option, tables in _TABLES.items()
}


def choice_phrases(option: str) -> tuple[str, ...]:
    """What a caller may say for ``option``: its synonyms, the option, its first five letters."""
    low = option.lower()
    return (*CHOICE_SYNONYMS.get(low, ()), low, low[:5])
