"""How the grounded brain says dates, times, numbers and lists."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any


def say_date(iso: str) -> str:
    try:
        d = date.fromisoformat(iso)
    except ValueError:
        return iso
    return f"{d:%A} {d.day} {d:%B}"


def say_time(hhmm: str) -> str:
    try:
        h, m = (int(x) for x in hhmm.split(":"))
    except ValueError:
        return hhmm
    if h == 12 and m == 0:
        return "12 noon"
    if h == 0 and m == 0:
        return "midnight"
    suffix = "am" if h < 12 else "pm"
    h12 = h % 12 or 12
    return f"{h12} {suffix}" if m == 0 else f"{h12}:{m:02d} {suffix}"


def article(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def strip_fillers(text: str) -> str:
    s = re.sub(
        r"^(?:(?:um+|uh+|so|well|okay|ok|yes|yeah|sure|it's|it is|the)\b[\s,.]*)+",
        "",
        text.strip(),
        flags=re.I,
    )
    return s.strip(" .")


def join_and(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def fmt_number(value: Any) -> str:
    d = Decimal(str(value))
    return str(int(d)) if d == d.to_integral_value() else f"{d.normalize():f}"


def spell_number(number: str) -> str:
    digits = re.sub(r"\D", "", number)
    if digits.startswith("91") and len(digits) == 12:
        digits = digits[2:]
    if len(digits) == 10:
        return f"{digits[:5]} {digits[5:]}"
    return number
