"""Hindi: transliteration, the glossary and loanwords."""

from __future__ import annotations

import pytest

from receptionist.language.hindi import hindi_to_english, loanwords_in_latin, transliterate


def test_transliterate() -> None:
    assert transliterate("रमेश गुप्ता") == "ramesh gupta"
    assert transliterate("Priya") == "priya"


@pytest.mark.parametrize(
    ("hindi", "latin"),
    [
        ("गोमती नगर", "gomti nagar"),  # a medial 'a' between two sounded syllables is not said
        ("लखनऊ", "lakhnau"),
        ("कमला", "kamla"),
        ("अमरूद", "amrud"),
        ("समझना", "samajhna"),  # from the end: "jh" loses it, so "m" keeps it
        ("बदलना", "badalna"),
        ("मनोहर", "manohar"),  # no consonant with a vowel after "h": kept
        ("पता", "pata"),  # the first syllable keeps its 'a'
        ("विभूति खंड", "vibhuti khand"),  # nasalised: said
        ("शर्मा", "sharma"),
    ],
)
def test_transliterate_drops_the_schwas_hindi_drops(hindi: str, latin: str) -> None:
    assert transliterate(hindi) == latin


def test_hindi_to_english_uses_glossary_glosses_and_loanwords() -> None:
    assert hindi_to_english("रविवार बंद") == "Sunday closed"
    assert hindi_to_english("लैब टेस्ट / Lab tests") == "Lab tests"
    assert hindi_to_english("थायराइड टेस्ट") == "thyroid test"  # loanword, not "Thayaraid"
    assert hindi_to_english("plain English") == "plain English"


def test_loanwords_in_latin() -> None:
    assert loanwords_in_latin("थायराइड टेस्ट please") == "thyroid test please"


def test_two_loanwords_written_as_one_word() -> None:
    """A business name made of two English words in one Devanagari word is said in English
    ("हेल्थकेयर" -> "Healthcare"), not transliterated letter by letter."""
    english = hindi_to_english('पास में "हेल्थकेयर फार्मा" है')
    assert "Healthcare pharma" in english
    assert "Lifecare" in hindi_to_english("लाइफ़केयर")
    assert hindi_to_english("केयरलाइफ़") == "Carelife"
