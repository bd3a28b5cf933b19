"""Clock times a caller says: "5:30 pm", "half past ten", "शाम 6 बजे", "saade paanch baje".

An hour said without am/pm is read the way a shop or a clinic means it: 1 to 7 is afternoon or
evening (:func:`shop_hour`).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .numbers import HOUR_WORDS, NUMBER_WORDS, blank_digit_runs, number_value
from .spans import outermost
from .text import clean, lower_clean, nfc, rx

__all__ = ["extract_times", "parse_time", "shop_hour"]

_NUM_ALT = "|".join(
    sorted((k for k in NUMBER_WORDS if NUMBER_WORDS[k] <= 12), key=len, reverse=True)
)
_HOUR = rf"(\d{{1,2}}|{_NUM_ALT})"
_TIME_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # 5:30 pm, 5.30pm, 5 pm, five pm, 5 o'clock in the evening
    (rx(rf"\b{_HOUR}(?:[:.](\d{{2}}))?\s*(a\.?m\.?|p\.?m\.?)(?![a-z])", re.I), "ampm"),
    (rx(r"\b([01]?\d|2[0-3]):([0-5]\d)\b"), "hhmm"),
    (rx(rf"\bhalf\s+past\s+{_HOUR}\b", re.I), "halfpast"),
    (rx(rf"\bquarter\s+past\s+{_HOUR}\b", re.I), "quarterpast"),
    (rx(rf"\bquarter\s+to\s+{_HOUR}\b", re.I), "quarterto"),
    (
        rx(
            rf"(सुबह|subah|morning|दोपहर|dopahar|afternoon|शाम|shaam|sham|evening|रात|raat|night)"
            rf"\s*(?:को\s*|ko\s*|at\s*|around\s*)?(साढ़े\s*|saade\s*|sadhe\s*)?{_HOUR}"
            rf"(?:[:.](\d{{2}}))?\s*(?:बजे|baje|o'?clock)?",
            re.I,
        ),
        "daypart_before",
    ),
    (
        rx(
            rf"(साढ़े\s*|saade\s*|sadhe\s*)?{_HOUR}(?:[:.](\d{{2}}))?\s*(?:बजे|baje|o'?clock)"
            rf"(?:\s*(?:in the\s*)?(morning|evening|afternoon|night))?",
            re.I,
        ),
        "baje",
    ),
    (rx(r"(डेढ़|dedh|ढाई|dhai)\s*(?:बजे|baje)", re.I), "dedh"),
    # "twelve noon", "12 noon", "midday", "midnight"
    (rx(r"\b(?:(?:12|twelve)\s+)?(noon|mid ?day|midnight)\b", re.I), "noon"),
    (
        rx(rf"\b{_HOUR}(?:[:.](\d{{2}}))?\s+in the\s+(morning|evening|afternoon|night)\b", re.I),
        "inthe",
    ),
]
_DAYPART_PM = ("दोपहर", "dopahar", "afternoon", "शाम", "shaam", "sham", "evening", "रात", "raat",
               "night")  # fmt: skip
_HourMinute = tuple[int | None, int]


def _hour(token: str) -> int | None:
    v = number_value(token)
    return int(v) if v is not None and 0 <= v <= 23 else None


def shop_hour(h: int) -> int:
    """An hour said without am/pm: 1-7 is afternoon/evening for a shop or clinic."""
    return h + 12 if 1 <= h <= 7 else h


def _ampm(m: re.Match[str]) -> _HourMinute:
    h = _hour(m.group(1))
    if h is None or h > 12:
        return None, 0
    pm = m.group(3).lower().startswith("p")
    return (h % 12) + (12 if pm else 0), int(m.group(2) or 0)


def _hhmm(m: re.Match[str]) -> _HourMinute:
    h, mi = int(m.group(1)), int(m.group(2))
    return (shop_hour(h) if h <= 7 and h != 0 else h), mi


def _past_to(m: re.Match[str], kind: str) -> _HourMinute:
    h = _hour(m.group(1))
    if h is None:
        return None, 0
    h = shop_hour(h)
    if kind == "halfpast":
        return h, 30
    if kind == "quarterpast":
        return h, 15
    return h - 1, 45


def _daypart_before(m: re.Match[str]) -> _HourMinute:
    h = _hour(m.group(3))
    if h is None or h > 12:
        return None, 0
    mi = 30 if m.group(2) else int(m.group(4) or 0)
    part = m.group(1).lower()
    if part in _DAYPART_PM and h < 12:
        h += 12 if not (part in ("दोपहर", "dopahar", "afternoon") and h >= 11) else 0
    return h, mi


def _baje(m: re.Match[str]) -> _HourMinute:
    h = _hour(m.group(2))
    if h is None or h > 23:
        return None, 0
    mi = 30 if m.group(1) else int(m.group(3) or 0)
    part = (m.group(4) or "").lower()
    if part in ("evening", "afternoon", "night") and h < 12:
        h += 12
    elif not part and h <= 12:
        h = shop_hour(h)
    return h, mi


def _in_the(m: re.Match[str]) -> _HourMinute:
    h = _hour(m.group(1))
    if h is None or h > 12:
        return None, 0
    if m.group(3).lower() != "morning" and h < 12:
        h += 12
    return h, int(m.group(2) or 0)


def _dedh(m: re.Match[str]) -> _HourMinute:
    return (13 if m.group(1).lower() in ("डेढ़", "dedh") else 14), 30


_READERS: dict[str, Callable[[re.Match[str]], _HourMinute]] = {
    "ampm": _ampm,
    "hhmm": _hhmm,
    "halfpast": lambda m: _past_to(m, "halfpast"),
    "quarterpast": lambda m: _past_to(m, "quarterpast"),
    "quarterto": lambda m: _past_to(m, "quarterto"),
    "daypart_before": _daypart_before,
    "baje": _baje,
    "inthe": _in_the,
    "dedh": _dedh,
    "noon": lambda m: (0 if m.group(1).lower() == "midnight" else 12, 0),
}


def extract_times(text: str) -> list[tuple[int, str]]:
    """``(position, "HH:MM")`` for each clock time in ``text``."""
    found: list[tuple[int, int, str]] = []
    text = blank_digit_runs(nfc(text))  # a phone number read out holds no times
    for pat, kind in _TIME_PATTERNS:
        for m in pat.finditer(text):
            h, mi = _READERS[kind](m)
            if h is None or not (0 <= h <= 23 and 0 <= mi <= 59):
                continue
            found.append((m.start(), m.end(), f"{h:02d}:{mi:02d}"))
    return outermost(found)


_BARE_HOUR = re.compile(
    r"(?:^|\b(?:at|around|by|about|after|before|say)\s+)(\d{1,2}|"
    + "|".join(sorted(HOUR_WORDS, key=len, reverse=True))
    + r")(?:\s*(?:o'?clock|ish))?(?:\s*(?:in the\s+)?(morning|afternoon|evening|night))?\b"
    r"(?!\s*(?:kg|kilo|g\b|gram|people|person|pieces|days?|hours?|minutes?|mins?))"
)


def parse_time(text: str, *, lenient: bool = False) -> str | None:
    """'HH:MM' for "4 pm", "half past ten", "evening 6", "noon"; with ``lenient`` (we just
    asked for a time) also a bare "11" or "around five"."""
    low = lower_clean(text)
    if re.search(r"\bnoon\b|\bmid ?day\b", low):
        return "12:00"
    if re.search(r"\bmidnight\b", low):
        return "00:00"
    found = extract_times(clean(text))
    if found:
        return found[0][1]
    m = re.search(r"\b(morning|afternoon|evening|night)\b", low)
    bare = _BARE_HOUR.search(low)
    if not bare or not (lenient or re.search(r"\b(?:at|around|by|o'?clock)\b", bare.group(0))):
        return None
    word = bare.group(1)
    h = int(word) if word.isdigit() else HOUR_WORDS[word]
    if not 0 <= h <= 23:
        return None
    part = bare.group(2) or (m.group(1) if m else None)
    if part in ("afternoon", "evening", "night") and h < 12:
        h += 12
    elif part is None and h <= 12:
        h = shop_hour(h)
    return f"{h:02d}:00"
