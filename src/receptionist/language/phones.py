"""Indian mobile numbers in what a caller said, read out digit by digit or written.

Digits said as words ("nine eight double four ...") and Devanagari digits are made digits first;
then libphonenumber's matcher (the ``phonenumbers`` package) finds the numbers, so grouping
("98 45 32 10 98"), prefixes (+91, 0091, 0) and validity all come from its metadata.
"""

from __future__ import annotations

import phonenumbers
from phonenumbers import Leniency, PhoneNumberFormat, PhoneNumberType

from .numbers import DEVANAGARI_DIGITS, spoken_digits_to_numbers
from .text import clean, nfc

__all__ = ["extract_phones", "parse_phone"]

# Only mobiles: the number is for a WhatsApp message and a call back.
_MOBILE = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})


def extract_phones(text: str) -> list[str]:
    """Indian mobile numbers in ``text`` as ``+91XXXXXXXXXX``, in the order said."""
    text = spoken_digits_to_numbers(nfc(text).translate(DEVANAGARI_DIGITS))
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
