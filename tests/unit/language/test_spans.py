"""Overlapping matches: the outermost reading wins, in text order."""

from __future__ import annotations

from receptionist.language.spans import outermost


def test_outermost_drops_matches_inside_longer_ones() -> None:
    found = [(10, 15, "kal"), (0, 10, "25/12/2026"), (0, 5, "25/12"), (20, 24, "aaj")]
    assert outermost(found) == [(0, "25/12/2026"), (10, "kal"), (20, "aaj")]


def test_outermost_of_nothing() -> None:
    assert outermost([]) == []
