"""Hindi: transliteration, the glossary and loanwords."""

from __future__ import annotations

from receptionist.language.hindi import transliterate


def test_transliterate() -> None:
    assert transliterate("रमेश गुप्ता") == "ramesh gupta"
    assert transliterate("Priya") == "priya"
