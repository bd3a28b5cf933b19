"""The files' text as the voice can say it: rupees, symbols, abbreviations."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

from receptionist.language.text import (
    nfc,
)

from .tokens import _NUMBER


def format_rupees(amount: Decimal | int | float) -> str:
    """'1500 rupees' (no thousands separators: text-to-speech reads plain numbers well)."""
    value = Decimal(str(amount)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    if value == value.to_integral_value():
        return f"{int(value)} rupees"
    return f"{value} rupees"


_RUPEE = re.compile(rf"(?:₹|\brs\.?|\binr)\s*({_NUMBER})", re.I)


def _rupees_sub(m: re.Match[str]) -> str:
    return format_rupees(Decimal(m.group(1).replace(",", "")))


def speakable(text: str, legends: dict[str, str] | None = None) -> str:
    """One line of a file as a short sentence for text-to-speech (English, no markdown)."""
    s = nfc(text).strip()
    s = re.sub(r"^\s*(?:[-*+•>#]+|\d{1,2}[.)])\s*", "", s)
    s = s.replace("**", "").replace("__", "").replace("`", "")
    if "marked" not in s:
        for mark, meaning in (legends or {}).items():
            s = s.replace(mark, f"({meaning})")
    # "Vitamin D / Vitamin B12: ₹1,200 / ₹900" -> "Vitamin D: ₹1,200; Vitamin B12: ₹900"
    s = re.sub(
        rf"^([^:/]+?)\s+/\s+([^:/]+?):\s*(₹\s*{_NUMBER})\s*/\s*(₹\s*{_NUMBER})",
        r"\1: \3; \2: \4",
        s,
    )
    s = _RUPEE.sub(_rupees_sub, s)
    s = re.sub(
        rf"({_NUMBER})\s*(?:rupees|रुपये)", lambda m: m.group(1).replace(",", "") + " rupees", s
    )
    s = re.sub(r"\s+--\s+|\s+—\s+|\s+–\s+", ", ", s)
    s = re.sub(r"(\d)\s*-\s*(\d)(?!\d*\s*(?:am|pm))", r"\1 to \2", s)
    s = re.sub(r"\s*\+\s*(?=\d)", " plus ", s)
    s = re.sub(r"\s*[+&]\s*", " and ", s)
    s = re.sub(r"\be\.g\.", "for example", s, flags=re.I)
    s = re.sub(r"\b(\d+)\s*min\b", r"\1 minutes", s)
    s = re.sub(r"\bDr\.\s*", "Doctor ", s)
    s = s.replace("|", ",").replace(" / ", " or ").replace("\u200d", "")
    s = re.sub(r"\s+", " ", s).strip(" ,;")
    s = re.sub(r"\s+([,.;:])", r"\1", s)
    if s and s[-1] not in ".?!":
        s += "."
    return s[:1].upper() + s[1:]
