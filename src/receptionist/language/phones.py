"""Indian mobile numbers in what a caller said, read out digit by digit or written.

Digits said as words ("nine eight double four ...") and Devanagari digits are made digits first;
then libphonenumber's matcher (the ``phonenumbers`` package) finds the numbers, so grouping
("98 45 32 10 98"), prefixes (+91, 0091, 0) and validity all come from its metadata.
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import Leniency, PhoneNumberFormat, PhoneNumberType

from .numbers import DEVANAGARI_DIGITS, spoken_digits_to_numbers
from .text import clean, nfc

__all__ = ["extract_phones", "parse_phone"]

# Only mobiles: the number is for a WhatsApp message and a call back.
_MOBILE = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})


# after "number", "mobile" ...: digit groups however speech-to-text punctuated the pauses between
# them ("number 982201, 2345", "phone 98-221, 12233")
_CUED_GROUPS = re.compile(
    r"\b((?:number|mobile|phone|contact|whatsapp)(?:\s+is)?[\s:,-]*)(\+?\d[\d\s,.-]{5,}\d)",
    re.I,
)


def _join_cued_groups(text: str) -> str:
    def join(m: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", m.group(2))
        if not 10 <= len(digits) <= 13:
            return m.group(0)
        return m.group(1) + ("+" if m.group(2).startswith("+") else "") + digits

    return _CUED_GROUPS.sub(join, text)


def extract_phones(text: str) -> list[str]:
    """Indian mobile numbers in ``text`` as ``+91XXXXXXXXXX``, in the order said."""
    text = spoken_digits_to_numbers(nfc(text).translate(DEVANAGARI_DIGITS))
    text = _join_cued_groups(text)
    out = []
    for m in phonenumbers.PhoneNumberMatcher(text, "IN", leniency=Leniency.VALID):
        number = m.number
        if number.country_code == 91 and phonenumbers.number_type(number) in _MOBILE:
            out.append(phonenumbers.format_number(number, PhoneNumberFormat.E164))
    return out


def parse_phone(text: str) -> str | None:
    """The last mobile number said in one utterance (a caller correcting themselves)."""
    found = extract_phones(clean(text))
    return found[-1] if found else None
