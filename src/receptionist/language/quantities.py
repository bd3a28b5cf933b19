"""Weights and counts a caller says: "2 kg", "one and a half kilo", "डेढ़ किलो", "500 grams"."""

from __future__ import annotations

import re
from decimal import Decimal

from .numbers import blank_digit_runs, number_value, parse_count
from .text import clean, lower_clean, nfc, rx, weights_said_plainly

__all__ = [
    "count_before",
    "extract_quantities",
    "parse_kg",
    "parse_number",
    "quantity_near",
]

QTY_RE = rx(
    r"(?:(half|आधा|aadha|adha)|(डेढ़|dedh)|(ढाई|dhai)|(\d+(?:\.\d+)?|[a-z]+|[\u0900-\u097f]+)"
    r"(?:\s+and\s+a\s+half)?)\s*(?:-\s*)?(kg|kgs|kilo|kilos|kilogram|kilograms|किलो|g|gm|gms|grams?"
    r"|ग्राम)(?![a-z\u0900-\u097f])",
    re.IGNORECASE,
)


def extract_quantities(text: str) -> list[tuple[int, float]]:
    """``(position, kg)`` for each weight said: "2 kg", "one kilo", "half kg", "डेढ़ किलो"."""
    out = []
    text = blank_digit_runs(nfc(text))  # a phone number read out holds no weights
    for m in QTY_RE.finditer(text):
        unit = m.group(5).lower()
        if m.group(1):
            v: float | None = 0.5
        elif m.group(2):
            v = 1.5
        elif m.group(3):
            v = 2.5
        else:
            v = number_value(m.group(4))
            if v is not None and "and a half" in m.group(0).lower():
                v += 0.5
        if v is None:
            continue
        if unit.startswith(("g", "ग")):
            v = v / 1000.0
        out.append((m.start(), v))
    return out


def quantity_near(text: str, start: int, end: int) -> str | None:
    """The weight said just after (or just before) an item: "1 kg", "0.5 kg", "250 g"."""
    for seg, ok in (
        (text[end : end + 25], lambda p: p < 10),
        (text[max(0, start - 25) : start], None),
    ):
        for m in QTY_RE.finditer(seg):
            if ok is not None and not ok(m.start()):
                continue
            if ok is None and seg[m.end() :].strip(" ,.of-"):
                continue  # before the item: must end right where the item starts
            got = extract_quantities(m.group(0))
            if not got:
                continue
            v = got[0][1]
            unit = m.group(5).lower()
            if unit.startswith(("g", "ग")) and v < 1:
                return f"{v * 1000:g} g"
            return f"{v:g} kg"
    return None


def count_before(text: str, pos: int) -> int | None:
    """The count said right before ``pos`` ("3 pineapple cakes"), 1 to 100."""
    m = re.search(r"(\d+|[a-z]+|[\u0900-\u097f]+)\s+$", text[:pos].lower())
    if not m:
        return None
    v = number_value(m.group(1))
    return int(v) if v is not None and 0 < v <= 100 else None


def parse_kg(text: str, *, lenient: bool = False) -> Decimal | None:
    """A weight in kg ("2 kg", "one and a half kilo", "500 grams"); a bare "2" if ``lenient``."""
    found = extract_quantities(weights_said_plainly(clean(text)))
    if found:
        return Decimal(str(found[0][1]))
    if lenient:
        n = parse_number(text)
        if n is not None and 0 < n <= 50:
            return n
    return None


def parse_number(text: str) -> Decimal | None:
    """The first number said: digits, "one and a half", "half", or a count word."""
    low = lower_clean(text)
    if re.search(r"\bone and a half\b|\bone point five\b", low):
        return Decimal("1.5")
    if re.search(r"\b(?:half|a half)\b", low) and not re.search(r"\bhalf past\b", low):
        return Decimal("0.5")
    m = re.search(r"\b(\d+(?:\.\d+)?)\b", low)
    if m:
        return Decimal(m.group(1))
    for w in re.findall(r"[a-z0-9']+", low):
        n = parse_count(w)
        if n is not None and w not in ("a", "an"):
            return Decimal(n)
    return None
