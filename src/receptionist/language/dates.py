"""Dates a caller says, resolved against today: "tomorrow", "कल", "next Monday", "25/12".

English, Hindi (Devanagari) and romanised Hinglish; a past-tense cue in the sentence
("... diya tha") turns "kal" and weekdays into the past.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from .numbers import blank_digit_runs
from .spans import outermost
from .text import clean, lower_clean, nfc, rx

__all__ = ["MONTHS", "WEEKDAYS", "WEEKDAY_NAMES", "extract_dates", "local_today", "parse_date"]

MONTHS = {
    nfc(k): v
    for k, v in {
        "jan": 1, "january": 1, "feb": 2, "february": 2, "mar": 3, "march": 3, "apr": 4,
        "april": 4, "may": 5, "jun": 6, "june": 6, "jul": 7, "july": 7, "aug": 8, "august": 8,
        "sep": 9, "sept": 9, "september": 9, "oct": 10, "october": 10, "nov": 11,
        "november": 11, "dec": 12, "december": 12,
        "जनवरी": 1, "फ़रवरी": 2, "फरवरी": 2, "मार्च": 3, "अप्रैल": 4, "मई": 5, "जून": 6,
        "जुलाई": 7, "अगस्त": 8, "सितंबर": 9, "अक्टूबर": 10, "नवंबर": 11, "दिसंबर": 12,
    }.items()
}  # fmt: skip
WEEKDAYS = {
    nfc(k): v
    for k, v in {
        "monday": 0, "mon": 0, "somvar": 0, "somwar": 0, "सोमवार": 0,
        "tuesday": 1, "tue": 1, "mangalvar": 1, "mangalwar": 1, "मंगलवार": 1,
        "wednesday": 2, "wed": 2, "budhvar": 2, "budhwar": 2, "बुधवार": 2,
        "thursday": 3, "thu": 3, "guruvar": 3, "guruwar": 3, "वीरवार": 3, "गुरुवार": 3,
        "friday": 4, "fri": 4, "shukravar": 4, "shukrawar": 4, "शुक्रवार": 4,
        "saturday": 5, "sat": 5, "shanivar": 5, "shaniwar": 5, "शनिवार": 5,
        "sunday": 6, "sun": 6, "ravivar": 6, "raviwar": 6, "itwaar": 6, "इतवार": 6, "रविवार": 6,
    }.items()
}  # fmt: skip
WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_PAST_CUES = rx(
    r"\b(?:yesterday|gave|given|was|did|tha|thi|diya|di|karaya|karayi)\b|था|थी|दिया|दी\b|कराया|कराई"
)
_MONTH_NAMES = "|".join(sorted(MONTHS, key=len, reverse=True))
_DAY_MONTH_RE = rx(
    rf"(?<![\d/])(\d{{1,2}})(?:st|nd|rd|th)?\s*(?:of\s+)?({_MONTH_NAMES})\b(?:\s*,?\s*(\d{{4}}))?",
    re.IGNORECASE,
)
_MONTH_DAY_RE = rx(
    rf"\b({_MONTH_NAMES})\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?:\s*,?\s*(\d{{4}}))?", re.IGNORECASE
)
_NUMERIC_DATE_RE = rx(r"(?<![\d:.])(\d{1,2})[/-](\d{1,2})(?:[/-](\d{2,4}))?(?![\d:])")
_ISO_DATE_RE = rx(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_TARIKH_RE = rx(r"(\d{1,2})\s*(?:तारीख|tarikh|tareekh|taarikh)")
_RELATIVE_RE = rx(
    r"day after tomorrow|परसों|parso|parson|parsoon|tomorrow|tmrw|कल|\bkal\b|today|tonight|आज"
    r"|\baaj\b|yesterday",
    re.IGNORECASE,
)
_WEEKDAY_RE = rx(
    r"(?:\b(next|this|coming|agle|agla)\s+)?("
    + "|".join(sorted((k for k in WEEKDAYS if len(k) > 3), key=len, reverse=True))
    + r")",
    re.IGNORECASE,
)
_Found = list[tuple[int, int, date]]  # (start, end, date)


def local_today(now: datetime, tz: str) -> date:
    """Today's date in the timezone ``tz`` (naive ``now`` is taken as already local)."""
    if now.tzinfo is None:
        return now.date()
    try:
        return now.astimezone(ZoneInfo(tz)).date()
    except (KeyError, ValueError):
        return now.date()


def _future_date(today: date, month: int, day: int, year: int | None) -> date | None:
    try:
        if year is not None:
            if year < 100:
                year += 2000
            return date(year, month, day)
        d = date(today.year, month, day)
        if d < today - timedelta(days=31):
            d = date(today.year + 1, month, day)
        return d
    except ValueError:
        return None


def _add(found: _Found, m: re.Match[str], d: date | None) -> None:
    if d:
        found.append((m.start(), m.end(), d))


def _written_dates(low: str, today: date, found: _Found) -> None:
    """ "2026-12-25", "25th December", "December 25", "25/12", "25-12-2026"."""
    for m in _ISO_DATE_RE.finditer(low):
        _add(found, m, _future_date(today, int(m.group(2)), int(m.group(3)), int(m.group(1))))
    for m in _DAY_MONTH_RE.finditer(low):
        yr = int(m.group(3)) if m.group(3) else None
        _add(found, m, _future_date(today, MONTHS[m.group(2).lower()], int(m.group(1)), yr))
    for m in _MONTH_DAY_RE.finditer(low):
        yr = int(m.group(3)) if m.group(3) else None
        _add(found, m, _future_date(today, MONTHS[m.group(1).lower()], int(m.group(2)), yr))
    for m in _NUMERIC_DATE_RE.finditer(low):
        day, month = int(m.group(1)), int(m.group(2))
        if 1 <= month <= 12 and 1 <= day <= 31:
            yr = int(m.group(3)) if m.group(3) else None
            _add(found, m, _future_date(today, month, day, yr))


def _tarikh_dates(low: str, today: date, past: bool, found: _Found) -> None:
    """ "25 तारीख": this month's, or the next (the last) month's when already gone (to come)."""
    for m in _TARIKH_RE.finditer(low):
        day = int(m.group(1))
        month, year = today.month, today.year
        if past and day > today.day:
            month, year = (12, year - 1) if month == 1 else (month - 1, year)
        elif not past and day < today.day:
            month, year = (1, year + 1) if month == 12 else (month + 1, year)
        _add(found, m, _future_date(today, month, day, year))


def _relative_dates(low: str, today: date, past: bool, found: _Found) -> None:
    for m in _RELATIVE_RE.finditer(low):
        w = m.group(0)
        if w in ("day after tomorrow", "परसों", "parso", "parson", "parsoon"):
            d = today + timedelta(days=2)
        elif w in ("tomorrow", "tmrw"):
            d = today + timedelta(days=1)
        elif w in ("कल", "kal"):
            d = today + timedelta(days=-1 if past else 1)
        elif w == "yesterday":
            d = today - timedelta(days=1)
        else:
            d = today
        _add(found, m, d)


def _weekday_dates(low: str, today: date, past: bool, found: _Found) -> None:
    for m in _WEEKDAY_RE.finditer(low):
        wd = WEEKDAYS[m.group(2).lower()]
        if past:  # "Monday ko sample diya tha": the last one
            back = (today.weekday() - wd) % 7 or 7
            _add(found, m, today - timedelta(days=back))
            continue
        ahead = (wd - today.weekday()) % 7 or 7
        if (m.group(1) or "").lower() in ("next", "agle", "agla") or "अगले" in low[
            max(0, m.start() - 6) : m.start()
        ]:
            # "next Thursday" = Thursday of next week (Mon-Sun)
            ahead = 7 - today.weekday() + wd
        _add(found, m, today + timedelta(days=ahead))


def extract_dates(text: str, today: date) -> list[tuple[int, date]]:
    """``(position, date)`` for each date expression in ``text``, resolved from ``today``.

    Relative words ("tomorrow", "कल", "parso"), weekdays (next occurrence, never today),
    "25th December", "December 25", "25/12", "25-12-2026", "25 तारीख".
    "कल"/"kal" means yesterday in a sentence with a past-tense cue ("... diya tha").
    """
    found: _Found = []
    low = blank_digit_runs(nfc(text).lower())
    past = bool(_PAST_CUES.search(low))
    _written_dates(low, today, found)
    _tarikh_dates(low, today, past, found)
    _relative_dates(low, today, past, found)
    _weekday_dates(low, today, past, found)
    return outermost(found)


def parse_date(text: str, today: date, *, lenient: bool = False) -> date | None:
    """First date said ("tomorrow", "Saturday", "25th November", "25/11"), from ``today``.

    A bare "the 28th" counts when we just asked for a date (``lenient``) or after on/for/by;
    otherwise "9th block, 22nd cross" in an address would be a date.
    """
    found = [d for _, d in extract_dates(clean(text), today)]
    if found:
        # "fever since yesterday, can he come tomorrow?": the day asked for is ahead
        return next((d for d in found if d >= today), found[0])
    low = lower_clean(text)
    lead = r"\b" if lenient else r"\b(?:on|for|by|before|till|until)\s+"
    m = re.search(
        lead + r"(?:the\s+)?(\d{1,2})(?:st|nd|rd|th)\b(?!\s*(?:block|cross|main|floor|"
        r"street|road|stage|phase|sector))",
        low,
    )
    if not m:
        return None
    day = int(m.group(1))
    year, month = today.year, today.month
    if day < today.day:
        month, year = (1, year + 1) if month == 12 else (month + 1, year)
    try:
        return date(year, month, day)
    except ValueError:
        return None
