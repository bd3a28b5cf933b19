"""Phone numbers as WhatsApp providers want them: country code + digits, no "+".

MSG91 (like most WhatsApp providers) takes recipients as digits with the country code and no
"+" (India: "91" + 10 digits; see /work/shared/PROTOCOLS.md, "MSG91 WhatsApp"). Our numbers come
from people and from Exotel, in every shape: "+91 98000 00001", "09800000001" (Exotel gives
national numbers with the trunk prefix 0), "9800000001", "919800000001". Parsing and validity
come from Google's libphonenumber metadata (the ``phonenumbers`` package), so a number is
accepted only when it is a real, dialable number of its country.

WhatsApp needs a mobile number: a landline cannot receive the message, and sending to it only
costs money and a failed report later. libphonenumber's type ``FIXED_LINE_OR_MOBILE`` (all of
the US/Canada, where numbers do not reveal their kind) is accepted too.

A withheld caller ID (Exotel and carriers show "anonymous", "withheld", "private", zeros, or
nothing) is reported with its own reason, distinct from an invalid number: it is not an error
of anybody's, and the owner should read it as such. Reasons are written for the business owner
(they are shown next to a message that was not sent).
"""

from __future__ import annotations

import re
from typing import Final

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType, ValidationResult, geocoder

__all__ = ["WITHHELD_REASON", "InvalidPhone", "is_mobile", "normalise_phone"]

WITHHELD_REASON: Final = "the number is withheld or missing (no caller ID)"

# Words carriers and telephony providers put where a hidden caller ID would be.
_WITHHELD_WORDS: Final = frozenset(
    {
        "anonymous",
        "withheld",
        "private",
        "unknown",
        "restricted",
        "unavailable",
        "hidden",
        "blocked",
        "null",
        "none",
        "undefined",
    }
)
# What may surround the digits of a number as people write it; anything else (letters, "ext")
# is refused rather than guessed at (libphonenumber would read letters as a keypad word).
_ALLOWED: Final = re.compile(r"^\+?[\d\s\-().\/]+$")
_MOBILE_TYPES: Final = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})
_TYPE_NAMES: Final = {
    PhoneNumberType.FIXED_LINE: "landline",
    PhoneNumberType.TOLL_FREE: "toll-free",
    PhoneNumberType.PREMIUM_RATE: "premium-rate",
    PhoneNumberType.SHARED_COST: "shared-cost",
    PhoneNumberType.VOIP: "internet (VoIP)",
    PhoneNumberType.PERSONAL_NUMBER: "personal (forwarding)",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "company (UAN)",
    PhoneNumberType.VOICEMAIL: "voicemail",
}


class InvalidPhone(ValueError):
    """A number we cannot send a WhatsApp message to; ``reason`` is for the owner to read."""

    def __init__(self, reason: str, *, withheld: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.withheld = withheld


def _withheld(raw: str) -> bool:
    text = raw.strip()
    digits = "".join(ch for ch in text if ch.isdigit())
    if not digits:
        words = re.findall(r"[a-z]+", text.lower())
        # nothing at all, only punctuation ("+", "-"), or a word such as "Private Number"
        return not words or any(word in _WITHHELD_WORDS for word in words)
    return set(digits) == {"0"}


def _country(number: phonenumbers.PhoneNumber) -> str:
    name: str = geocoder.country_name_for_number(number, "en")
    return name or f"country code +{number.country_code}"


def _parse(raw: str, default_region: str) -> phonenumbers.PhoneNumber:
    text = raw.strip()
    if any(ch.isalpha() for ch in text):
        raise InvalidPhone(f"{text} is not a phone number (it contains letters)")
    if not _ALLOWED.match(text):
        raise InvalidPhone(f"{text} is not a phone number (unexpected characters)")
    region = default_region.upper()
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        if exc.error_type == NumberParseException.INVALID_COUNTRY_CODE:
            if text.startswith("+"):
                raise InvalidPhone(f"{text} has an unknown country code") from None
            raise InvalidPhone(
                f"{text} has no country code, and the default region {region!r} is unknown"
            ) from None
        if exc.error_type == NumberParseException.TOO_SHORT_NSN:
            raise InvalidPhone(f"{text} is too short to be a phone number") from None
        if exc.error_type == NumberParseException.TOO_LONG:
            raise InvalidPhone(f"{text} is too long to be a phone number") from None
        raise InvalidPhone(f"{text} is not a phone number") from None
    if number.national_number == 0:  # "+91 0000000000": a placeholder, not a number
        raise InvalidPhone(WITHHELD_REASON, withheld=True)
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible == ValidationResult.TOO_SHORT:
        raise InvalidPhone(f"{text} is too short to be a phone number")
    if possible == ValidationResult.TOO_LONG:
        raise InvalidPhone(f"{text} is too long to be a phone number")
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(f"{text} is not a valid phone number in {_country(number)}")
    return number


def normalise_phone(
    raw: str | None, default_region: str = "IN", *, mobile_only: bool = True
) -> str:
    """Digits with country code and no "+" (``"919800000001"``), or :class:`InvalidPhone`.

    Numbers without a "+" are read as numbers of ``default_region`` (ISO 3166 code), with or
    without its trunk prefix ("09800000001") or its country code ("919800000001"); "00" + country
    code works where 00 is the region's international prefix (India). With ``mobile_only`` (the
    default: WhatsApp) landlines and other non-mobile numbers are refused.
    """
    if raw is None or _withheld(raw):
        raise InvalidPhone(WITHHELD_REASON, withheld=True)
    number = _parse(raw, default_region)
    if mobile_only:
        kind = phonenumbers.number_type(number)
        if kind not in _MOBILE_TYPES:
            name = _TYPE_NAMES.get(kind, "non-mobile")
            raise InvalidPhone(
                f"{raw.strip()} is a {name} number, not a mobile number (WhatsApp needs a mobile)"
            )
    # E.164 keeps a significant leading zero of the national number (Italy), unlike
    # country_code + national_number
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164).lstrip("+")


def is_mobile(raw: str | None, default_region: str = "IN") -> bool:
    """True when ``raw`` is a valid number that can receive WhatsApp messages (see module doc)."""
    try:
        normalise_phone(raw, default_region, mobile_only=True)
    except InvalidPhone:
        return False
    return True
