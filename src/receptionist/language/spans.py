"""Overlapping matches of several patterns reduced to the ones a reader means."""

from __future__ import annotations

from typing import TypeVar

__all__ = ["outermost"]

T = TypeVar("T")


def outermost(found: list[tuple[int, int, T]]) -> list[tuple[int, T]]:
    """``(start, value)`` of the matches not inside an earlier or longer one, in text order.

    "25/12" inside "25/12/2026", "kal" inside "parso kal": the longer reading wins.
    """
    found = sorted(found, key=lambda f: (f[0], -(f[1] - f[0])))
    out: list[tuple[int, T]] = []
    last_end = -1
    for start, end, value in found:
        if start < last_end:
            continue
        out.append((start, value))
        last_end = end
    return out
