"""Indian mobile numbers in what a caller said: written, grouped, read out digit by digit."""

from __future__ import annotations

import pytest

from receptionist.language.phones import extract_phones, parse_phone


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("my number is 98450 12345", ["+919845012345"]),
        ("call me on +91 98450-12345 please", ["+919845012345"]),
        ("09845012345", ["+919845012345"]),
        ("7019 234 567", ["+917019234567"]),
        ("98 45 32 10 98", ["+919845321098"]),
        ("nine eight four five six seven eight nine zero one", ["+919845678901"]),
        ("nine eight four zero double five six seven eight nine", ["+919840556789"]),
        ("नंबर ९८३९० १२३४५ है", ["+919839012345"]),
        ("first 98860 12345, sorry 98860 12346", ["+919886012345", "+919886012346"]),
    ],
)
def test_phones(text: str, want: list[str]) -> None:
    assert extract_phones(text) == want


@pytest.mark.parametrize(
    "text",
    ["the shop is at 560095", "order 250 grams", "12345 67890", "it costs 1,500 rupees"],
)
def test_not_phones(text: str) -> None:
    assert extract_phones(text) == []  # 5xxxx / 1xxxx are not Indian mobiles


def test_landlines_and_foreign_numbers_are_no_mobiles() -> None:
    assert extract_phones("our landline is 080 2345 6789") == []
    assert extract_phones("+44 7911 123456") == []


def test_parse_phone_takes_the_correction() -> None:
    assert parse_phone("98860 12345, sorry, 98860 12346") == "+919886012346"
    assert parse_phone("same number") is None


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("My name is Nikhil, number 982201, 2345.", "+919822012345"),  # a pause heard as a comma
        ("Number is 98450, 12345", "+919845012345"),
        ("phone: 98-221, 12233", "+919822112233"),
    ],
)
def test_groups_after_number_are_one_number_whatever_the_punctuation(text: str, want: str) -> None:
    assert parse_phone(text) == want


@pytest.mark.parametrize("text", ["number 98450 1234", "I want 2, 3 cakes, number 5", "flat 12, 3"])
def test_too_few_digits_after_number_are_no_number(text: str) -> None:
    assert parse_phone(text) is None
