"""Text basics: Unicode form, words, the one stop-word list and the one stemmer."""

from __future__ import annotations

import pytest

from receptionist.language.text import (
    STOPWORDS,
    clean,
    content_words,
    nfc,
    normalise,
    sentences,
    singular,
    stem,
    weights_said_plainly,
    words,
)


@pytest.mark.parametrize(
    ("word", "want"),
    [("brownies", "browny"), ("brownie", "browny"), ("loaves", "loaf"), ("booking", "book"),
     ("booked", "book"), ("classes", "class"), ("peaches", "peach"), ("bus", "bus"),
     ("need", "need"), ("cake", "cake"), ("दवाई", "दवाई")],
)  # fmt: skip
def test_stem(word: str, want: str) -> None:
    assert stem(word) == want


def test_singular_keeps_other_endings() -> None:
    assert singular("brownies") == "browny" and singular("dressing") == "dressing"
    assert singular("loaves") == "loaf" and singular("glass") == "glass"


def test_stopwords_cover_english_hindi_and_hinglish() -> None:
    assert {"the", "please", "है", "में", "hai", "mein"} <= STOPWORDS
    assert content_words("I want the eggless cakes, please") == ["eggless", "cake"]
    assert content_words("the customer asks", frozenset({"customer", "asks"})) == []


def test_words_sentences_nfc() -> None:
    assert words("Kal 5 बजे, OK?") == ["kal", "5", "बजे", "ok"]
    assert sentences("Hi. Is it open? हाँ। ठीक है") == ["Hi.", "Is it open?", "हाँ।", "ठीक है"]
    composed = "\u0921\u093c"  # ड + nukta, as speech-to-text may write it
    assert nfc(composed) == nfc("ड़") and len(nfc(composed)) == len(nfc("ड़"))


def test_clean_and_normalise() -> None:
    assert clean(" [noise] two   kilos -\n please ") == "two kilos - please"
    assert normalise("Dr. Anil's Black-Forest & Pineapple") == "dr anil black forest and pineapple"
    assert normalise("1.5 kg") == "1.5 kg"
    assert weights_said_plainly("half a kilo and a kg") == "half kilo and 1 kg"


def test_a_verb_and_its_past_meet() -> None:
    """Speech-to-text writes "advanced" for "advance": both must be one search word."""
    assert stem("advance") == stem("advanced") == stem("advances")
    assert stem("charge") == stem("charges") == stem("charged")
    assert stem("free") == "free" and stem("brownie") == "browny"
