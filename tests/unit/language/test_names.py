"""Names a caller gives: self-introductions, patients, bare answers."""

from __future__ import annotations

import pytest

from receptionist.language.names import extract_names


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
    ],
)
def test_names(text: str, want: list[str]) -> None:
    assert [n for _, n in extract_names(text)] == want


def test_patient_name() -> None:
    got = extract_names("I need an appointment for my mother Kamla Devi", patient=True)
    assert [n for _, n in got] == ["Kamla Devi"]
