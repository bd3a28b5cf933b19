"""Phone numbers read out in groups or digit by digit, joined before anything else reads them.

Speech-to-text writes a number read digit by digit as "9-8-4-5-0-1-2-3-4-5", "988-6543-2-1-0" or
"9839 445566". Left as it is, the phone parser misses it and the date and time parsers take
pieces of it ("9" -> the 9th, "5" -> 5 o'clock). Joined into one run of digits it is one phone
number and nothing else. (`language/phones.py` belongs to the analyzer's side; this is the
brain's own pre-reading, kept apart so neither changes the other.)
"""

from __future__ import annotations

import re

#: groups of digits joined by dashes, dots or single spaces, with an optional "+" in front
_GROUPS = re.compile(r"(?<![\w:])\+?\d{1,6}(?:(?:\s?[-.]\s?|\s)\d{1,6}){1,12}(?![\w:])")
PHONE_DIGITS = (10, 13)  # 10-digit Indian mobile, with 91 / 0 in front up to 13


def join_spoken_digits(text: str) -> str:
    """``text`` with each grouped or spelled-out phone number written as one digit run."""

    def join(m: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", m.group(0))
        low, high = PHONE_DIGITS
        if not low <= len(digits) <= high:
            return m.group(0)
        return ("+" if m.group(0).startswith("+") else "") + digits

    return _GROUPS.sub(join, text)


_NUMBER_CUE = re.compile(r"\b(?:number|mobile|phone|contact|whatsapp|call me)\b", re.I)


def partial_phone(text: str) -> str | None:
    """Digits the caller gave as their number that make no mobile number, as they were grouped:
    "98451 1223" (9 digits heard of 10). None when the turn has no such digits or says nothing
    of a number."""
    if not _NUMBER_CUE.search(text):
        return None
    for m in re.finditer(r"(?<![\w:])\+?\d[\d\s.-]{5,}\d(?![\w:])", text):
        digits = re.sub(r"\D", "", m.group(0))
        if len(digits) < 7 or len(digits) == 10 or (digits.startswith("91") and len(digits) == 12):
            continue
        return re.sub(r"[\s.-]+", " ", m.group(0).strip())
    return None
