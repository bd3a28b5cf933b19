"""Weights and counts a caller says."""

from __future__ import annotations

import pytest

from receptionist.language.quantities import extract_quantities


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("2 kg", [2.0]),
        ("one kilo", [1.0]),
        ("half kg", [0.5]),
        ("1.5 kg", [1.5]),
        ("डेढ़ किलो", [1.5]),
        ("two kilos", [2.0]),
        ("250 grams", [0.25]),
        ("three and a half kg", [3.5]),
        ("two brownies", []),
    ],
)
def test_quantities(text: str, want: list[float]) -> None:
    assert [v for _, v in extract_quantities(text)] == want
