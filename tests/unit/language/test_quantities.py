"""Weights and counts a caller says."""

from __future__ import annotations

from decimal import Decimal

import pytest

from receptionist.language.quantities import extract_quantities, parse_kg, parse_number


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("2 kg", [2.0]),
        ("one kilo", [1.0]),
        ("half kg", [0.5]),
        ("1.5 kg", [1.5]),
        ("डेढ़ किलो", [1.5]),
        ("two kilos", [2.0]),
        ("250 grams", [0.25]),
        ("three and a half kg", [3.5]),
        ("two brownies", []),
    ],
)
def test_quantities(text: str, want: list[float]) -> None:
    assert [v for _, v in extract_quantities(text)] == want


def test_parse_kg_and_number() -> None:
    assert parse_kg("half a kilo please") == Decimal("0.5")
    assert parse_kg("a quarter kg") == Decimal("0.25")
    assert parse_kg("2", lenient=True) == Decimal("2") and parse_kg("2") is None
    assert parse_number("one and a half") == Decimal("1.5")
    assert parse_number("half past ten") == Decimal("10")  # "half past" is no half
    assert parse_number("six pastries") == Decimal("6")


def test_phone_read_out_holds_no_weights() -> None:
    # "0-1 kg" would be a weight if the digits before it were not one phone number
    assert extract_quantities("9-8-7-6-5-4-3-2-0-1 kg") == []
