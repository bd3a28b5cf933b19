"""Splitting replies into speakable pieces for streaming text-to-speech."""

from __future__ import annotations

import itertools

import pytest

from receptionist.engines.local.sentences import DEFAULT_MAX_CHARS, lead_clause, split_sentences


@pytest.mark.parametrize(
    ("text", "pieces"),
    [
        ("Hello. How can I help?", ["Hello.", "How can I help?"]),
        ("Great! See you then.", ["Great!", "See you then."]),
        ("Really?! Wow.", ["Really?!", "Wow."]),
        ("One sentence without a stop", ["One sentence without a stop"]),
        ("Ends with a stop.", ["Ends with a stop."]),
        ('He said "yes." Then he left.', ['He said "yes."', "Then he left."]),
        ("We are open (from nine.) Come by.", ["We are open (from nine.)", "Come by."]),
        ("Wait... let me check.", ["Wait...", "let me check."]),
    ],
)
def test_splits_at_sentence_ends(text: str, pieces: list[str]) -> None:
    assert split_sentences(text) == pieces


@pytest.mark.parametrize(
    "text",
    [
        "The cake costs Rs. 450 for one kilo.",
        "Dr. Rao sees patients on Monday.",
        "Mr. and Mrs. Shah booked a table.",
        "We open at 10.30 am on weekdays.",
        "It weighs 2.5 kg in all.",
        "We make many kinds, e.g. black forest and truffle.",
        "Bring your report, i.e. the blood test.",
        "Your token is No. 5 in the queue.",
        "J. K. Rowling signed it.",
        "Call us at 9 a.m. tomorrow.",
        "Pay by UPI etc. at the counter.",
        "Prices are in ₹ and include 5% GST.",
    ],
)
def test_abbreviations_and_numbers_stay_whole(text: str) -> None:
    assert split_sentences(text) == [text]


def test_abbreviations_that_can_end_a_sentence() -> None:
    assert split_sentences("No. We are closed today.") == ["No.", "We are closed today."]
    assert split_sentences("We sell cakes, breads etc. Anything else?") == [
        "We sell cakes, breads etc.",
        "Anything else?",
    ]
    assert split_sentences("Open till 9 p.m. See you.") == ["Open till 9 p.m.", "See you."]
    assert split_sentences("We open on the 21st. Call then.") == [
        "We open on the 21st.",
        "Call then.",
    ]


def test_line_breaks_and_white_space() -> None:
    text = "  Our menu:\n\n- Chocolate cake\n- Fruit cake   \n\nAnything   else? "
    assert split_sentences(text) == [
        "Our menu:",
        "- Chocolate cake",
        "- Fruit cake",
        "Anything else?",
    ]


@pytest.mark.parametrize("text", ["", "   ", "\n\n", "...", " ! ? "])
def test_nothing_to_say_gives_no_pieces(text: str) -> None:
    assert split_sentences(text) == []


def test_stray_punctuation_joins_the_piece_before() -> None:
    assert split_sentences("Thank you. ! Bye.") == ["Thank you. !", "Bye."]


def test_short_semicolon_and_colon_clauses_are_not_split() -> None:
    text = "We have two kinds: eggless and regular; both are fresh."
    assert split_sentences(text) == [text]


def test_long_sentences_are_cut_at_softer_breaks() -> None:
    clause = "we have chocolate, vanilla and strawberry cakes in half kilo and one kilo sizes"
    text = f"Today {clause}; tomorrow {clause}: and on Sunday {clause}."
    pieces = split_sentences(text)
    assert len(pieces) == 3
    assert pieces[0].endswith(";")
    assert pieces[1].endswith(":")
    assert all(len(p) <= DEFAULT_MAX_CHARS for p in pieces)
    assert " ".join(pieces) == text


def test_long_comma_runs_are_packed_into_short_pieces() -> None:
    items = ", ".join(f"item number {i} with a long description" for i in range(12))
    text = f"We have {items}."
    pieces = split_sentences(text)
    assert len(pieces) > 1
    assert all(len(p) <= DEFAULT_MAX_CHARS for p in pieces)
    assert all(p.endswith((",", ".")) for p in pieces)
    assert " ".join(pieces) == text
    # packed greedily: no two neighbours would fit together
    assert all(len(a) + 1 + len(b) > DEFAULT_MAX_CHARS for a, b in itertools.pairwise(pieces))


def test_a_run_with_no_punctuation_is_cut_between_words() -> None:
    text = " ".join(["word"] * 80)
    pieces = split_sentences(text, max_chars=50)
    assert all(len(p) <= 50 for p in pieces)
    assert " ".join(pieces) == text


def test_a_single_overlong_word_is_kept_whole() -> None:
    word = "x" * 200
    assert split_sentences(f"{word}. Done.") == [f"{word}.", "Done."]


def test_max_chars_must_be_positive() -> None:
    with pytest.raises(ValueError):
        split_sentences("Hi.", max_chars=0)


def test_rejoining_keeps_every_word() -> None:
    text = (
        "Namaste! Welcome to Sweet Treats, Dr. Rao's favourite bakery. We are open from 9.30 am "
        "to 8 pm; on Sundays till 2 pm. A kilo of black forest is Rs. 650, e.g. for birthdays. "
        "Would you like to order?"
    )
    pieces = split_sentences(text)
    assert " ".join(pieces) == text
    assert pieces[0] == "Namaste!"
    assert pieces[-1] == "Would you like to order?"


@pytest.mark.parametrize(
    ("piece", "parts"),
    [
        # long, with a clause end in reach: cut there
        (
            "Address: 14, 5th Cross, 6th Block, Koramangala, Bengaluru 560095 (near the signal).",
            [
                "Address: 14, 5th Cross,",
                "6th Block, Koramangala, Bengaluru 560095 (near the signal).",
            ],
        ),
        (
            "Doctor Anil Sharma: new 500 rupees, follow-up within 7 days 300 rupees.",
            ["Doctor Anil Sharma:", "new 500 rupees, follow-up within 7 days 300 rupees."],
        ),
        # short enough already
        (
            "1 kg Black Forest cake comes to 750 rupees.",
            ["1 kg Black Forest cake comes to 750 rupees."],
        ),
        # the only clause end is too early (a first piece too short to cover the next one)
        (
            "Yes, we have eggless black forest cake in half kilo and one kilo sizes today.",
            ["Yes, we have eggless black forest cake in half kilo and one kilo sizes today."],
        ),
        # a colon inside a time is no clause end
        (
            "Every day from 8:00 am to 11:00 pm including Sundays and all public holidays.",
            ["Every day from 8:00 am to 11:00 pm including Sundays and all public holidays."],
        ),
    ],
)
def test_the_lead_clause_of_a_long_first_piece(piece: str, parts: list[str]) -> None:
    assert lead_clause(piece) == parts
    assert " ".join(lead_clause(piece)) == piece
