"""Number words (one table: English, Hinglish, Hindi) and digits read out one by one."""

from __future__ import annotations

import pytest

from receptionist.language.numbers import (
    HOUR_WORDS,
    number_value,
    parse_count,
    spoken_digits_to_numbers,
)


@pytest.mark.parametrize(
    ("token", "want"),
    [("12", 12.0), ("2.5", 2.5), ("twelve", 12.0), ("Barah", 12.0), ("बारह", 12.0),
     ("१२", 12.0), ("paanch", 5.0), ("hundred", 100.0), ("zero", 0.0), ("kilo", None)],
)  # fmt: skip
def test_number_value(token: str, want: float | None) -> None:
    assert number_value(token) == want


def test_counts_are_positive() -> None:
    assert parse_count("six") == 6 and parse_count("two dozen") == 24
    assert parse_count("teen") == 3  # the Hinglish words count too
    assert parse_count("a couple") == 2
    assert parse_count("zero") is None and parse_count("oh") is None


def test_hour_words_are_one_to_twelve() -> None:
    assert HOUR_WORDS["twelve"] == 12 and HOUR_WORDS["ek"] == 1
    assert "oh" not in HOUR_WORDS and "fifteen" not in HOUR_WORDS


def test_spoken_digits() -> None:
    said = "it is nine eight four zero double five six seven eight nine"
    assert spoken_digits_to_numbers(said) == "it is 9840556789"
    assert spoken_digits_to_numbers("triple seven, two one zero") == "777210"
    assert spoken_digits_to_numbers("one or two") == "one or two"  # short runs stay words
