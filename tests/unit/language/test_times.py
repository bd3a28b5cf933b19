"""Clock times a caller says, in English, Hindi and Hinglish."""

from __future__ import annotations

import pytest

from receptionist.language.times import extract_times, parse_time


def times(text: str) -> list[str]:
    return [t for _, t in extract_times(text)]


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("at 5 pm", ["17:00"]),
        ("5:30 pm", ["17:30"]),
        ("5.30pm", ["17:30"]),
        ("10 am", ["10:00"]),
        ("12 pm", ["12:00"]),
        ("17:00", ["17:00"]),
        ("half past five", ["17:30"]),
        ("quarter past eleven", ["11:15"]),
        ("five pm", ["17:00"]),
        ("6 o'clock", ["18:00"]),
        ("शाम 5 बजे", ["17:00"]),
        ("सुबह 10 बजे", ["10:00"]),
        ("साढ़े ग्यारह बजे", ["11:30"]),
        ("Shaam 6 baje tak", ["18:00"]),
        ("dopahar 2 baje", ["14:00"]),
        ("evening 6", ["18:00"]),
        ("2 kg cake", []),
        # what parse_time always knew, now found in a sentence too (the analyzer reads these)
        ("on Friday at twelve noon.", ["12:00"]),
        ("at 12 noon, for patient", ["12:00"]),
        ("around midday", ["12:00"]),
        ("cake delivery at midnight", ["00:00"]),
    ],
)
def test_times(text: str, want: list[str]) -> None:
    assert times(text) == want


@pytest.mark.parametrize(
    ("text", "lenient", "want"),
    [("4 pm please", False, "16:00"), ("noon", False, "12:00"), ("around five", False, "17:00"),
     ("11", True, "11:00"), ("11", False, None), ("six in the evening", True, "18:00"),
     ("Oh, evening", True, None), ("2 kg", True, None)],
)  # fmt: skip
def test_parse_time(text: str, lenient: bool, want: str | None) -> None:
    assert parse_time(text, lenient=lenient) == want


def test_phone_read_out_holds_no_times() -> None:
    assert times("number 9-8-7-6-5-4-3-2-1-0") == []
    assert times("nine eight seven six five four three two one zero at 4 pm") == ["16:00"]
