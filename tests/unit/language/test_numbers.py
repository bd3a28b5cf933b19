"""Number words (one table: English, Hinglish, Hindi) and digits read out one by one."""

from __future__ import annotations

import pytest

from receptionist.language.numbers import (
    HOUR_WORDS,
    blank_digit_runs,
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


@pytest.mark.parametrize(
    "text",
    ["ring me on 7-0-1-9-3-3-4-4-5-5", "it's 701-9334-4-5-5", "mobile 70193 34455 thanks",
     "seven zero one nine three three four four five five"],
)  # fmt: skip
def test_blank_digit_runs_blanks_read_out_numbers(text: str) -> None:
    out = blank_digit_runs(text)
    assert len(out) == len(text)  # positions kept
    assert not any(c.isdigit() for c in out)
    assert "seven" not in out


@pytest.mark.parametrize(
    "text", ["on 14-02-2027 please", "2027-02-14", "flat 402, 3 kg, at 5:30", "one two three"]
)
def test_blank_digit_runs_keeps_dates_and_short_numbers(text: str) -> None:
    assert blank_digit_runs(text) == text
