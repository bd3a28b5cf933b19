"""Dates a caller says, resolved against a fixed Wednesday."""

from __future__ import annotations

from datetime import date

import pytest

from receptionist.language.dates import extract_dates, parse_date

TODAY = date(2026, 11, 25)  # a Wednesday


def dates(text: str) -> list[str]:
    return [d.isoformat() for _, d in extract_dates(text, TODAY)]


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("today please", ["2026-11-25"]),
        ("for tomorrow", ["2026-11-26"]),
        ("day after tomorrow", ["2026-11-27"]),
        ("this Saturday", ["2026-11-28"]),
        ("on Wednesday", ["2026-12-02"]),  # today is Wednesday: the next one
        ("next Thursday", ["2026-12-03"]),  # Thursday of next week
        ("next Monday", ["2026-11-30"]),
        ("25th December", ["2026-12-25"]),
        ("December 5th", ["2026-12-05"]),
        ("the 12th of December", ["2026-12-12"]),
        ("25/12", ["2026-12-25"]),
        ("25-12-2026", ["2026-12-25"]),
        ("on 3rd January", ["2027-01-03"]),  # a past month means next year
        ("कल सुबह", ["2026-11-26"]),
        ("परसों शाम", ["2026-11-27"]),
        ("parso ke liye", ["2026-11-27"]),
        ("अगले मंगलवार", ["2026-12-01"]),
        ("शुक्रवार को", ["2026-11-27"]),
        ("सैंपल कल दिया था", ["2026-11-24"]),  # past tense: yesterday
        ("Monday ko sample diya tha", ["2026-11-23"]),
        ("23 tarikh ko sample diya tha", ["2026-11-23"]),
        ("28 तारीख को", ["2026-11-28"]),
        ("no date here at 5:30", []),
    ],
)
def test_dates(text: str, want: list[str]) -> None:
    assert dates(text) == want


def test_today_is_wednesday() -> None:
    assert date(2026, 11, 25) == TODAY and TODAY.weekday() == 2


def test_parse_date_prefers_the_day_ahead() -> None:
    assert parse_date("fever since yesterday, can he come tomorrow?", TODAY) == date(2026, 11, 26)


def test_parse_date_bare_ordinal_only_when_asked() -> None:
    assert parse_date("the 28th", TODAY) is None
    assert parse_date("the 28th", TODAY, lenient=True) == date(2026, 11, 28)
    assert parse_date("on the 2nd", TODAY) == date(2026, 12, 2)
    assert parse_date("9th block, 22nd cross", TODAY, lenient=True) is None


@pytest.mark.parametrize(
    "text",
    ["my number is 7-0-1-9-3-3-4-4-5-5", "call 701-9334-4-5-5", "it's 9 1 2 3 4 5 6 7 8 9"],
)
def test_phone_read_out_holds_no_dates(text: str) -> None:
    assert dates(text) == []
    assert dates(text + ", for Friday") == ["2026-11-27"]
