"""Hindi: transliteration, the glossary and loanwords."""

from __future__ import annotations

from receptionist.language.hindi import hindi_to_english, loanwords_in_latin, transliterate


def test_transliterate() -> None:
    assert transliterate("रमेश गुप्ता") == "ramesh gupta"
    assert transliterate("Priya") == "priya"


def test_hindi_to_english_uses_glossary_glosses_and_loanwords() -> None:
    assert hindi_to_english("रविवार बंद") == "Sunday closed"
    assert hindi_to_english("लैब टेस्ट / Lab tests") == "Lab tests"
    assert hindi_to_english("थायराइड टेस्ट") == "thyroid test"  # loanword, not "Thayaraid"
    assert hindi_to_english("plain English") == "plain English"


def test_loanwords_in_latin() -> None:
    assert loanwords_in_latin("थायराइड टेस्ट please") == "thyroid test please"
