"""normalise_phone / is_mobile: the shapes our numbers arrive in, and the reasons we refuse."""

from __future__ import annotations

import pytest

from receptionist.notify.phones import WITHHELD_REASON, InvalidPhone, is_mobile, normalise_phone

VALID = [
    # (raw, default region, expected)
    ("+91 98000 00001", "IN", "919800000001"),
    ("+91-98000-00001", "IN", "919800000001"),
    ("+91 (98000) 00001", "IN", "919800000001"),
    ("09800000001", "IN", "919800000001"),  # Exotel: national number with trunk prefix 0
    ("9800000001", "IN", "919800000001"),
    ("919800000001", "IN", "919800000001"),  # country code without "+"
    ("00919800000001", "IN", "919800000001"),  # India's international prefix
    ("  +91 98000 00001  ", "IN", "919800000001"),
    ("+14155552671", "IN", "14155552671"),  # US: FIXED_LINE_OR_MOBILE is accepted
    ("4155552671", "US", "14155552671"),
    ("+44 7911 123456", "IN", "447911123456"),
    ("+39 312 345 6789", "in", "393123456789"),  # region code case does not matter
]


@pytest.mark.parametrize(("raw", "region", "expected"), VALID)
def test_valid_mobiles(raw: str, region: str, expected: str) -> None:
    assert normalise_phone(raw, region) == expected
    assert is_mobile(raw, region)


WITHHELD = [
    None,
    "",
    "   ",
    "anonymous",
    "Anonymous",
    "withheld",
    "PRIVATE",
    "Private Number",
    "unknown",
    "restricted",
    "+",
    "+0000000000",
    "0000000000",
    "0",
    "+91 00000 00000",
]


@pytest.mark.parametrize("raw", WITHHELD)
def test_withheld_or_absent(raw: str | None) -> None:
    with pytest.raises(InvalidPhone) as info:
        normalise_phone(raw)
    assert info.value.withheld
    assert info.value.reason == WITHHELD_REASON == str(info.value)
    assert "withheld" in info.value.reason
    assert not is_mobile(raw)


INVALID = [
    # (raw, words the owner must read in the reason)
    ("12345", ("12345", "too short")),
    ("98000", ("98000", "too short")),
    ("+91 98000 00001 23456 789", ("too long",)),
    ("98000abc01", ("98000abc01", "letters")),
    ("call me", ("call me", "letters")),
    ("98000 00001 ext 12", ("letters",)),
    ("98000#00001", ("98000#00001", "not a phone number")),
    ("+91 50000 00000", ("+91 50000 00000", "not a valid phone number in India")),
    ("+999 1234567", ("+999 1234567", "unknown country code")),
    ("08047112233", ("08047112233", "landline", "not a mobile")),  # Bangalore landline
    ("+91 80 4711 2233", ("landline", "not a mobile")),
    ("1800123456", ("toll-free", "not a mobile")),
    ("+44 20 7946 0958", ("landline",)),
]


@pytest.mark.parametrize(("raw", "words"), INVALID)
def test_invalid(raw: str, words: tuple[str, ...]) -> None:
    with pytest.raises(InvalidPhone) as info:
        normalise_phone(raw)
    assert not info.value.withheld
    assert info.value.reason != WITHHELD_REASON
    for word in words:
        assert word in info.value.reason
    assert isinstance(info.value, ValueError)
    assert not is_mobile(raw)


def test_landline_is_fine_when_mobile_not_required() -> None:
    assert normalise_phone("08047112233", mobile_only=False) == "918047112233"


def test_unknown_default_region() -> None:
    with pytest.raises(InvalidPhone, match=r"no country code.*'XX'"):
        normalise_phone("9800000001", "XX")
    assert normalise_phone("+919800000001", "XX") == "919800000001"  # "+" needs no region
