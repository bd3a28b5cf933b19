"""Conversation acts: every reader sees the union of the English, Hinglish and Hindi tables."""

from __future__ import annotations

import pytest

from receptionist.language.cues import (
    asks_order_status,
    asks_total,
    is_goodbye,
    is_greeting,
    is_no,
    is_noise,
    is_question,
    is_thanks,
    is_wrong_number,
    is_yes,
    question_strength,
    sounds_unfinished,
    wants_human,
)


@pytest.mark.parametrize(
    "text", ["हाँ", "हां, ठीक है", "जी हाँ", "Haan ji", "yes please", "Um, sure.", "okay", "ji"]
)
def test_yes(text: str) -> None:
    assert is_yes(text)
    assert not is_no(text)


@pytest.mark.parametrize("text", ["नहीं", "नही, कल", "nahi", "No, the 28th", "wait", "not really"])
def test_no(text: str) -> None:
    assert is_no(text)
    assert not is_yes(text)


@pytest.mark.parametrize("text", ["yesterday", "okra", "हाँडी", "jim", "notify me", "Hello"])
def test_a_word_that_only_starts_like_yes_or_no_is_neither(text: str) -> None:
    assert not is_yes(text) and not is_no(text)


@pytest.mark.parametrize(
    "text", ["Oh sorry, wrong number.", "गलत नंबर", "ग़लत नम्बर है", "galat number lag gaya"]
)
def test_wrong_number(text: str) -> None:
    assert is_wrong_number(text)


@pytest.mark.parametrize("text", ["the number was wrong", "गलत", "I want the right number"])
def test_not_wrong_number(text: str) -> None:
    assert not is_wrong_number(text)


def test_goodbye_thanks_greeting() -> None:
    assert is_goodbye("Thank you, bye") and is_goodbye("I'll call you back later")
    assert not is_goodbye("Can I come by tomorrow?")
    assert is_thanks("great, thank you") and is_thanks("achha, shukriya")
    assert not is_thanks("thanks, and the price of a pastry?")
    assert is_greeting("Hello?") and is_greeting("Hi, good morning") and is_greeting("Namaste ji")
    assert not is_greeting("Hello, I want a cake")


def test_noise_human_question() -> None:
    assert is_noise("") and is_noise("Um... hmm.") and is_noise("[noise]")
    assert not is_noise("um, yes") and not is_noise("गलत नंबर") and is_noise("।")
    assert wants_human("Can I speak to the owner?") and not wants_human("Who is the owner?")
    assert question_strength("How much is a pastry") == 2
    assert question_strength("Saturday?") == 1
    assert question_strength("Saturday") == 0
    assert is_question("kab khule ho") and not is_question("I want a cake")


@pytest.mark.parametrize(
    "text",
    ["Name is Kavita,", "Two kilos of Black Forest and", "my number is", "I want a cake for",
     "Sorry -", "I'll pick it up at...", "मेरा नाम", "mera naam", "Number:"],
)  # fmt: skip
def test_a_turn_cut_mid_sentence_sounds_unfinished(text: str) -> None:
    assert sounds_unfinished(text)


@pytest.mark.parametrize(
    "text",
    ["How much for two brownies and a milk bread?", "What's the total?", "total kitna hoga?",
     "2 brownie aur ek bread kitne ka hoga", "कुल कितना होगा?", "What will it come to?"],
)  # fmt: skip
def test_asks_total(text: str) -> None:
    assert asks_total(text)


@pytest.mark.parametrize(
    "text", ["I want two brownies", "Do you deliver?", "totally fine", "What time do you open?"]
)
def test_not_asks_total(text: str) -> None:
    assert not asks_total(text)


@pytest.mark.parametrize(
    "text",
    ["Name is Kavita.", "Bye", "Yes it is", "one kilo, at five", "Call me", "", "Thank you",
     "What is the address"],
)  # fmt: skip
def test_a_whole_sentence_does_not(text: str) -> None:
    assert not sounds_unfinished(text)


@pytest.mark.parametrize(
    "text",
    ["I ordered a cake yesterday, is it ready?", "What about my booking?", "mera order ready hai?",
     "meri booking ka kya hua", "मेरा ऑर्डर कब आएगा?", "Is my order ready?"],
)  # fmt: skip
def test_asks_order_status(text: str) -> None:
    assert asks_order_status(text)


@pytest.mark.parametrize(
    "text", ["I want to order a cake", "Can I book a haircut?", "Do you take orders on Sunday?"]
)
def test_not_asks_order_status(text: str) -> None:
    assert not asks_order_status(text)
