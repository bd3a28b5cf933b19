"""Names a caller gives: self-introductions, patients, bare answers."""

from __future__ import annotations

import pytest

from receptionist.language.names import answered_name, extract_names, parse_name


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("Hi, my name is Priya Nair, number is 98450 12345", ["Priya Nair"]),
        ("This is Kavya.", ["Kavya"]),
        ("I am Rohit Menon, 9900112233", ["Rohit Menon"]),
        ("मेरा नाम रमेश गुप्ता है", ["रमेश गुप्ता"]),
        ("Mera naam Ankit hai", ["Ankit"]),
        ("I am calling about my order", []),
        ("I'm not sure", []),
        ("I'm Farida, my number is 90080 11223", ["Farida"]),
        ("Name is Joseph, 98860 44556", ["Joseph"]),
        ("It's Sohail. No, spelled S-U-H-A-I-L.", ["Sohail", "Suhail"]),
        ("my name is Gita, spelt g e e t a", ["Gita", "Geeta"]),
        ("Flat C-14, T-3 report", []),
        # how speech-to-text writes a quick "name's Deepa"
        ("Name as Deepa, number 98445 56677", ["Deepa"]),
        ("the same name as my father", []),
    ],
)
def test_names(text: str, want: list[str]) -> None:
    assert [n for _, n in extract_names(text)] == want


def test_patient_name() -> None:
    got = extract_names("I need an appointment for my mother Kamla Devi", patient=True)
    assert [n for _, n in got] == ["Kamla Devi"]


def test_parse_name_live_speech() -> None:
    assert parse_name("my name is priya nair") == "Priya Nair"
    assert parse_name("Priya", lenient=True) == "Priya" and parse_name("Priya") is None
    assert parse_name("for my son, day after tomorrow", patient=True) is None
    assert parse_name("Janani, 9791 001 002", lenient=True) == "Janani"
    assert parse_name("Name as Mohan, number 9 8 40 223344") == "Mohan"
    # speech-to-text wrote it in lower case; "my name is" says it is one all the same
    assert parse_name("My name is prakash tiwari, number 98397 78899") == "Prakash Tiwari"
    assert parse_name("Name is current, 98865 43210") is None  # a misheard name: asked again
    assert parse_name("the same name as my father", lenient=True) is None


def test_answered_name() -> None:
    assert answered_name("Sunita Rao, 98450 12345") == "Sunita Rao"
    assert answered_name("रमेश गुप्ता") == "रमेश गुप्ता"
    assert answered_name("Hello, yes") is None
    assert answered_name("Name is Kavita, 98394 45566") == "Kavita"
    assert answered_name("Name as Deepa") == "Deepa"
