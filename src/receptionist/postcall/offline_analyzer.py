"""Deterministic post-call analyzer: keyword rules and regular expressions, no model.

:func:`analyze_offline` picks one of the tenant's call types and pulls out the details its
schema declares, from the transcript alone. It is the fallback when no model is configured or
reachable, and a floor to compare a model against (``bench/analyzer_accuracy.py``).

What it does, in short:

- call type: each call type gets keywords from its own schema (name, description, field
  names/descriptions) plus a small built-in multilingual intent list (English, Hindi in
  Devanagari, romanised Hinglish); caller words weigh 1, agent words 0.35. Ties go to the type
  whose required fields were found most; no match at all goes to the tenant's enquiry-like type.
- details, by field type: phones (Indian mobiles), dates (relative words resolved against
  ``now`` in the tenant's timezone), times, quantities, names, items matched against the
  tenant's input files, booleans from yes/no cues, and for other strings the caller sentence that
  mentions the field. Anything not found is left out -- nothing is invented.

Known limits: no real language understanding; free-text fields are whole caller sentences, not
paraphrases; Devanagari names are kept as spoken (see :func:`transliterate` for comparisons).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from receptionist.tenants.model import CallType, FieldSpec, Tenant

from .analyzers.schema import NO_CONVERSATION, Analysis, validate_details

__all__ = [
    "analyze_offline",
    "choose_call_type",
    "extract_dates",
    "extract_names",
    "extract_phones",
    "extract_quantities",
    "extract_times",
    "transliterate",
]

AGENT_WEIGHT = 0.35


def _nfc(text: str) -> str:
    """NFC form: "ढ़" and "ड़" always as letter + nukta, so patterns and speech compare equal."""
    return unicodedata.normalize("NFC", text)


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _rx(pattern: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(_nfc(pattern), flags)


# --------------------------------------------------------------------------- text helpers

_WORD_RE = _rx(r"[0-9a-z\u0900-\u097f]+")
_SENT_SPLIT = _rx(r"(?<=[.?!।])\s+|\n+")

STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "of",
        "to",
        "for",
        "in",
        "on",
        "at",
        "by",
        "with",
        "from",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "i",
        "me",
        "my",
        "we",
        "our",
        "you",
        "your",
        "he",
        "she",
        "they",
        "them",
        "his",
        "her",
        "their",
        "what",
        "which",
        "who",
        "whom",
        "how",
        "when",
        "where",
        "why",
        "do",
        "does",
        "did",
        "can",
        "could",
        "would",
        "should",
        "will",
        "shall",
        "may",
        "might",
        "must",
        "not",
        "no",
        "yes",
        "e",
        "g",
        "eg",
        "etc",
        "any",
        "some",
        "one",
        "if",
        "as",
        "than",
        "then",
        "so",
        "also",
        "just",
        "about",
        "into",
        "out",
        "up",
        "down",
        "over",
        "such",
        "customer",
        "customers",
        "caller",
        "patient",
        "patients",
        "s",
        "t",
        "wants",
        "want",
        "asks",
        "ask",
        "asked",
        "about",
        "without",
        "only",
        "own",
        "more",
        "most",
        "other",
        "there",
        "here",
        "has",
        "have",
        "had",
        "per",
        "each",
        "है",
        "हैं",
        "का",
        "की",
        "के",
        "को",
        "में",
        "से",
        "और",
        "या",
        "पर",
        "भी",
        "तो",
        "ही",
        "था",
        "थी",
        "थे",
        "hai",
        "hain",
        "ka",
        "ki",
        "ke",
        "ko",
        "mein",
        "se",
        "aur",
        "ya",
        "par",
        "bhi",
        "toh",
        "hi",
        "tha",
        "thi",
        "the",
    ]
)


def _words(text: str) -> list[str]:
    return _WORD_RE.findall(text.lower())


def _stem(word: str) -> str:
    if len(word) > 4 and word.isascii():
        if word.endswith(("ches", "shes", "sses", "xes")):
            return word[:-2]
        for suf in ("ings", "ing", "ies", "ves", "ed", "s"):
            if word.endswith(suf) and len(word) - len(suf) >= 3 and not word.endswith("ss"):
                return word[: -len(suf)] + {"ies": "y", "ves": "f"}.get(suf, "")
    return word


def _content_words(text: str) -> list[str]:
    return [_stem(w) for w in _words(text) if w not in STOPWORDS and len(w) > 1]


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENT_SPLIT.split(text) if s.strip()]


@dataclass(frozen=True, slots=True)
class _Turn:
    speaker: str
    text: str

    @property
    def caller(self) -> bool:
        return self.speaker == "caller"


def _turns(transcript: Iterable[dict[str, Any]]) -> list[_Turn]:
    out = []
    for t in transcript:
        text = _nfc(str(t.get("text") or "")).strip()
        if text:
            out.append(_Turn(str(t.get("speaker") or ""), text))
    return out


# --------------------------------------------------------------------------- numbers

_NUM_WORDS: dict[str, int] = {
    "zero": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
    "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "ek": 1, "teen": 3, "char": 4, "chaar": 4, "paanch": 5, "panch": 5, "chhe": 6, "chhah": 6,
    "saat": 7, "aath": 8, "nau": 9, "das": 10, "gyarah": 11, "barah": 12, "baarah": 12,
    "एक": 1, "दो": 2, "तीन": 3, "चार": 4, "पांच": 5, "पाँच": 5, "छह": 6, "छः": 6, "सात": 7,
    "आठ": 8, "नौ": 9, "दस": 10, "ग्यारह": 11, "बारह": 12, "शून्य": 0,
}  # fmt: skip
_DIGIT_WORDS: dict[str, str] = {
    "zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip
_NUM_WORDS = {_nfc(k): v for k, v in _NUM_WORDS.items()}
_DEVANAGARI_DIGITS = str.maketrans("०१२३४५६७८९", "0123456789")


def _num(token: str) -> float | None:
    token = token.lower().translate(_DEVANAGARI_DIGITS)
    if re.fullmatch(r"\d+(?:\.\d+)?", token):
        return float(token)
    if token in _NUM_WORDS:
        return float(_NUM_WORDS[token])
    return None


# --------------------------------------------------------------------------- phones

_PHONE_RE = _rx(
    r"(?<![\d+])(?:\+\s*91[\s-]*|0091[\s-]*|91[\s-]+|0[\s-]*)?([6-9](?:[\s-]*\d){9})(?![\s-]*\d)"
)
_SPOKEN_DIGITS_RE = _rx(
    r"\b(?:(?:double|triple)\s+)?(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)"
    r"(?:[\s,-]+(?:(?:double|triple)\s+)?(?:zero|oh|one|two|three|four|five|six|seven|eight|nine|\d))+\b",
    re.IGNORECASE,
)


def _spoken_digits_to_numbers(text: str) -> str:
    """'nine eight double four ...' -> '9844...' (only runs of six or more digits)."""

    def repl(m: re.Match[str]) -> str:
        toks = re.findall(r"double|triple|\w+", m.group(0).lower())
        out: list[str] = []
        mult = 1
        for tok in toks:
            if tok == "double":
                mult = 2
            elif tok == "triple":
                mult = 3
            else:
                d = _DIGIT_WORDS.get(tok, tok if tok.isdigit() else "")
                out.append(d * mult)
                mult = 1
        digits = "".join(out)
        return digits if len(digits) >= 6 else m.group(0)

    return _SPOKEN_DIGITS_RE.sub(repl, text)


def extract_phones(text: str) -> list[str]:
    """Indian mobile numbers in ``text`` as ``+91XXXXXXXXXX``, in the order said."""
    text = _spoken_digits_to_numbers(_nfc(text).translate(_DEVANAGARI_DIGITS))
    out = []
    for m in _PHONE_RE.finditer(text):
        digits = re.sub(r"\D", "", m.group(1))
        out.append("+91" + digits)
    return out


# --------------------------------------------------------------------------- dates

_MONTHS = {
    "jan": 1, "january": 1, "feb": 2, "february": 2, "mar": 3, "march": 3, "apr": 4,
    "april": 4, "may": 5, "jun": 6, "june": 6, "jul": 7, "july": 7, "aug": 8, "august": 8,
    "sep": 9, "sept": 9, "september": 9, "oct": 10, "october": 10, "nov": 11,
    "november": 11, "dec": 12, "december": 12,
    "जनवरी": 1, "फ़रवरी": 2, "फरवरी": 2, "मार्च": 3, "अप्रैल": 4, "मई": 5, "जून": 6,
    "जुलाई": 7, "अगस्त": 8, "सितंबर": 9, "अक्टूबर": 10, "नवंबर": 11, "दिसंबर": 12,
}  # fmt: skip
_WEEKDAYS = {
    "monday": 0, "mon": 0, "somvar": 0, "somwar": 0, "सोमवार": 0,
    "tuesday": 1, "tue": 1, "mangalvar": 1, "mangalwar": 1, "मंगलवार": 1,
    "wednesday": 2, "wed": 2, "budhvar": 2, "budhwar": 2, "बुधवार": 2,
    "thursday": 3, "thu": 3, "guruvar": 3, "guruwar": 3, "वीरवार": 3, "गुरुवार": 3,
    "friday": 4, "fri": 4, "shukravar": 4, "shukrawar": 4, "शुक्रवार": 4,
    "saturday": 5, "sat": 5, "shanivar": 5, "shaniwar": 5, "शनिवार": 5,
    "sunday": 6, "sun": 6, "ravivar": 6, "raviwar": 6, "itwaar": 6, "इतवार": 6, "रविवार": 6,
}  # fmt: skip
_MONTHS = {_nfc(k): v for k, v in _MONTHS.items()}
_WEEKDAYS = {_nfc(k): v for k, v in _WEEKDAYS.items()}
_PAST_CUES = _rx(
    r"\b(?:yesterday|gave|given|was|did|tha|thi|diya|di|karaya|karayi)\b|था|थी|दिया|दी\b|कराया|कराई"
)
_MONTH_NAMES = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DAY_MONTH_RE = _rx(
    rf"(?<![\d/])(\d{{1,2}})(?:st|nd|rd|th)?\s*(?:of\s+)?({_MONTH_NAMES})\b(?:\s*,?\s*(\d{{4}}))?",
    re.IGNORECASE,
)
_MONTH_DAY_RE = _rx(
    rf"\b({_MONTH_NAMES})\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?:\s*,?\s*(\d{{4}}))?", re.IGNORECASE
)
_NUMERIC_DATE_RE = _rx(r"(?<![\d:.])(\d{1,2})[/-](\d{1,2})(?:[/-](\d{2,4}))?(?![\d:])")
_ISO_DATE_RE = _rx(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_TARIKH_RE = _rx(r"(\d{1,2})\s*(?:तारीख|tarikh|tareekh|taarikh)")
_RELATIVE_RE = _rx(
    r"day after tomorrow|परसों|parso|parson|parsoon|tomorrow|tmrw|कल|\bkal\b|today|tonight|आज"
    r"|\baaj\b|yesterday",
    re.IGNORECASE,
)
_WEEKDAY_RE = _rx(
    r"(?:\b(next|this|coming|agle|agla)\s+)?("
    + "|".join(sorted((k for k in _WEEKDAYS if len(k) > 3), key=len, reverse=True))
    + r")",
    re.IGNORECASE,
)


def _local_today(now: datetime, tz: str) -> date:
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


def extract_dates(text: str, today: date) -> list[tuple[int, date]]:
    """``(position, date)`` for each date expression in ``text``, resolved from ``today``.

    Relative words ("tomorrow", "कल", "parso"), weekdays (next occurrence, never today),
    "25th December", "December 25", "25/12", "25-12-2026", "25 तारीख".
    "कल"/"kal" means yesterday in a sentence with a past-tense cue ("... diya tha").
    """
    found: list[tuple[int, int, date]] = []  # (start, end, date)
    low = _nfc(text).lower()
    for m in _ISO_DATE_RE.finditer(low):
        d = _future_date(today, int(m.group(2)), int(m.group(3)), int(m.group(1)))
        if d:
            found.append((m.start(), m.end(), d))
    for m in _DAY_MONTH_RE.finditer(low):
        yr = int(m.group(3)) if m.group(3) else None
        d = _future_date(today, _MONTHS[m.group(2).lower()], int(m.group(1)), yr)
        if d:
            found.append((m.start(), m.end(), d))
    for m in _MONTH_DAY_RE.finditer(low):
        yr = int(m.group(3)) if m.group(3) else None
        d = _future_date(today, _MONTHS[m.group(1).lower()], int(m.group(2)), yr)
        if d:
            found.append((m.start(), m.end(), d))
    for m in _NUMERIC_DATE_RE.finditer(low):
        day, month = int(m.group(1)), int(m.group(2))
        if not (1 <= month <= 12 and 1 <= day <= 31):
            continue
        yr = int(m.group(3)) if m.group(3) else None
        d = _future_date(today, month, day, yr)
        if d:
            found.append((m.start(), m.end(), d))
    past = bool(_PAST_CUES.search(low))
    for m in _TARIKH_RE.finditer(low):
        day = int(m.group(1))
        month, year = today.month, today.year
        if past and day > today.day:
            month, year = (12, year - 1) if month == 1 else (month - 1, year)
        elif not past and day < today.day:
            month, year = (1, year + 1) if month == 12 else (month + 1, year)
        d = _future_date(today, month, day, year)
        if d:
            found.append((m.start(), m.end(), d))
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
        found.append((m.start(), m.end(), d))
    for m in _WEEKDAY_RE.finditer(low):
        wd = _WEEKDAYS[m.group(2).lower()]
        if past:  # "Monday ko sample diya tha": the last one
            back = (today.weekday() - wd) % 7 or 7
            found.append((m.start(), m.end(), today - timedelta(days=back)))
            continue
        ahead = (wd - today.weekday()) % 7 or 7
        if (m.group(1) or "").lower() in ("next", "agle", "agla") or "अगले" in low[
            max(0, m.start() - 6) : m.start()
        ]:
            # "next Thursday" = Thursday of next week (Mon-Sun)
            ahead = 7 - today.weekday() + wd
        found.append((m.start(), m.end(), today + timedelta(days=ahead)))
    # drop matches inside a longer match ("25/12" inside "25/12/2026", "kal" of "parso"...)
    found.sort(key=lambda f: (f[0], -(f[1] - f[0])))
    out: list[tuple[int, date]] = []
    last_end = -1
    for start, end, d in found:
        if start < last_end:
            continue
        out.append((start, d))
        last_end = end
    return out


# --------------------------------------------------------------------------- times

_NUM_ALT = "|".join(sorted((k for k in _NUM_WORDS if _NUM_WORDS[k] <= 12), key=len, reverse=True))
_HOUR = rf"(\d{{1,2}}|{_NUM_ALT})"
_TIME_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # 5:30 pm, 5.30pm, 5 pm, five pm, 5 o'clock in the evening
    (_rx(rf"\b{_HOUR}(?:[:.](\d{{2}}))?\s*(a\.?m\.?|p\.?m\.?)(?![a-z])", re.I), "ampm"),
    (_rx(r"\b([01]?\d|2[0-3]):([0-5]\d)\b"), "hhmm"),
    (_rx(rf"\bhalf\s+past\s+{_HOUR}\b", re.I), "halfpast"),
    (_rx(rf"\bquarter\s+past\s+{_HOUR}\b", re.I), "quarterpast"),
    (_rx(rf"\bquarter\s+to\s+{_HOUR}\b", re.I), "quarterto"),
    (
        _rx(
            rf"(सुबह|subah|morning|दोपहर|dopahar|afternoon|शाम|shaam|sham|evening|रात|raat|night)"
            rf"\s*(?:को\s*|ko\s*|at\s*|around\s*)?(साढ़े\s*|saade\s*|sadhe\s*)?{_HOUR}"
            rf"(?:[:.](\d{{2}}))?\s*(?:बजे|baje|o'?clock)?",
            re.I,
        ),
        "daypart_before",
    ),
    (
        _rx(
            rf"(साढ़े\s*|saade\s*|sadhe\s*)?{_HOUR}(?:[:.](\d{{2}}))?\s*(?:बजे|baje|o'?clock)"
            rf"(?:\s*(?:in the\s*)?(morning|evening|afternoon|night))?",
            re.I,
        ),
        "baje",
    ),
    (_rx(r"(डेढ़|dedh|ढाई|dhai)\s*(?:बजे|baje)", re.I), "dedh"),
    (
        _rx(rf"\b{_HOUR}(?:[:.](\d{{2}}))?\s+in the\s+(morning|evening|afternoon|night)\b", re.I),
        "inthe",
    ),
]
_DAYPART_PM = ("दोपहर", "dopahar", "afternoon", "शाम", "shaam", "sham", "evening", "रात", "raat",
               "night")  # fmt: skip


def _hour(token: str) -> int | None:
    v = _num(token)
    return int(v) if v is not None and 0 <= v <= 23 else None


def _fix_ambiguous(h: int) -> int:
    """An hour said without am/pm: 1-7 is afternoon/evening for a shop or clinic."""
    return h + 12 if 1 <= h <= 7 else h


def extract_times(text: str) -> list[tuple[int, str]]:
    """``(position, "HH:MM")`` for each clock time in ``text``."""
    found: list[tuple[int, int, str]] = []
    text = _nfc(text)
    for pat, kind in _TIME_PATTERNS:
        for m in pat.finditer(text):
            h: int | None
            mi = 0
            if kind == "ampm":
                h = _hour(m.group(1))
                if h is None or h > 12:
                    continue
                mi = int(m.group(2) or 0)
                pm = m.group(3).lower().startswith("p")
                h = (h % 12) + (12 if pm else 0)
            elif kind == "hhmm":
                h, mi = int(m.group(1)), int(m.group(2))
                if h <= 7 and h != 0:
                    h = _fix_ambiguous(h)
            elif kind in ("halfpast", "quarterpast", "quarterto"):
                h = _hour(m.group(1))
                if h is None:
                    continue
                h = _fix_ambiguous(h)
                if kind == "halfpast":
                    mi = 30
                elif kind == "quarterpast":
                    mi = 15
                else:
                    h, mi = h - 1, 45
            elif kind == "daypart_before":
                h = _hour(m.group(3))
                if h is None or h > 12:
                    continue
                mi = 30 if m.group(2) else int(m.group(4) or 0)
                part = m.group(1).lower()
                if part in _DAYPART_PM and h < 12:
                    h += 12 if not (part in ("दोपहर", "dopahar", "afternoon") and h >= 11) else 0
            elif kind == "baje":
                h = _hour(m.group(2))
                if h is None or h > 23:
                    continue
                mi = 30 if m.group(1) else int(m.group(3) or 0)
                part = (m.group(4) or "").lower()
                if part in ("evening", "afternoon", "night") and h < 12:
                    h += 12
                elif not part and h <= 12:
                    h = _fix_ambiguous(h)
            elif kind == "inthe":
                h = _hour(m.group(1))
                if h is None or h > 12:
                    continue
                mi = int(m.group(2) or 0)
                if m.group(3).lower() != "morning" and h < 12:
                    h += 12
            else:  # dedh / dhai
                h, mi = (13 if m.group(1).lower() in ("डेढ़", "dedh") else 14), 30
            if h is None or not (0 <= h <= 23 and 0 <= mi <= 59):
                continue
            found.append((m.start(), m.end(), f"{h:02d}:{mi:02d}"))
    found.sort(key=lambda f: (f[0], -(f[1] - f[0])))
    out: list[tuple[int, str]] = []
    last_end = -1
    for start, end, t in found:
        if start < last_end:
            continue
        out.append((start, t))
        last_end = end
    return out


# --------------------------------------------------------------------------- quantities

_QTY_RE = _rx(
    r"(?:(half|आधा|aadha|adha)|(डेढ़|dedh)|(ढाई|dhai)|(\d+(?:\.\d+)?|[a-z]+|[\u0900-\u097f]+)"
    r"(?:\s+and\s+a\s+half)?)\s*(?:-\s*)?(kg|kgs|kilo|kilos|kilogram|kilograms|किलो|g|gm|gms|grams?"
    r"|ग्राम)(?![a-z\u0900-\u097f])",
    re.IGNORECASE,
)


def extract_quantities(text: str) -> list[tuple[int, float]]:
    """``(position, kg)`` for each weight said: "2 kg", "one kilo", "half kg", "डेढ़ किलो"."""
    out = []
    text = _nfc(text)
    for m in _QTY_RE.finditer(text):
        unit = m.group(5).lower()
        if m.group(1):
            v: float | None = 0.5
        elif m.group(2):
            v = 1.5
        elif m.group(3):
            v = 2.5
        else:
            v = _num(m.group(4))
            if v is not None and "and a half" in m.group(0).lower():
                v += 0.5
        if v is None:
            continue
        if unit.startswith(("g", "ग")):
            v = v / 1000.0
        out.append((m.start(), v))
    return out


def _quantity_near(text: str, start: int, end: int) -> str | None:
    """The weight said just after (or just before) an item: "1 kg", "0.5 kg", "250 g"."""
    for seg, ok in (
        (text[end : end + 25], lambda p: p < 10),
        (text[max(0, start - 25) : start], None),
    ):
        for m in _QTY_RE.finditer(seg):
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


def _count_before(text: str, pos: int) -> int | None:
    m = re.search(r"(\d+|[a-z]+|[\u0900-\u097f]+)\s+$", text[:pos].lower())
    if not m:
        return None
    v = _num(m.group(1))
    return int(v) if v is not None and 0 < v <= 100 else None


# --------------------------------------------------------------------------- names

_NAME_WORD = r"[A-Z][a-z]+|[\u0900-\u097f]+"
_NAME_PATTERNS = [
    _rx(
        rf"(?i:my name is|my name's|name is|naam hai|this is|i am|i'm|myself|it's|it is)\s+"
        rf"((?:{_NAME_WORD})(?:\s+(?:{_NAME_WORD})){{0,2}})"
    ),
    _rx(
        r"(?:मेरा नाम|नाम|mera naam|naam)\s+"
        r"((?:[\u0900-\u097f]+\s+){0,2}?[\u0900-\u097f]+)\s+(?:है|हैं)"
    ),
    _rx(r"(?:mera naam|naam)\s+((?:[A-Za-z]+\s+){0,2}?[A-Za-z]+)\s+hai\b", re.I),
    _rx(
        rf"((?:{_NAME_WORD})(?:\s+(?:{_NAME_WORD})){{0,2}})"
        r"\s+(?:bol raha|bol rahi|बोल रहा|बोल रही)"
    ),
    _rx(rf"\bname\s*(?:is|:)?\s+((?:{_NAME_WORD})(?:\s+(?:{_NAME_WORD})){{0,2}})"),
]
_PATIENT_PATTERNS = [
    _rx(
        rf"(?:patient(?:'s)? name is|patient ka naam|patient is"
        rf"|for my (?:son|daughter|mother|father|wife|husband|mother-in-law|father-in-law"
        rf"|grandfather|grandmother|baby)|मरीज़? का नाम"
        rf"|मेरी (?:माँ|मां|मम्मी|बेटी|पत्नी)|मेरे (?:पिताजी|पापा|बेटे|पति)|beta|beti)\s*(?:is|hai|है)?\s*"
        rf"((?:{_NAME_WORD})(?:\s+(?:{_NAME_WORD})){{0,2}})"
    ),
]
_NOT_NAMES = _wordset(
    "calling from here there just not looking interested sorry the a an okay ok yes no hello "
    "hi fine good very also going trying speaking asking wondering regarding about new "
    "monday tuesday wednesday thursday friday saturday sunday today tomorrow morning evening "
    "january february march april may june july august september october november december "
    "है हैं का की के को में से और या पर भी जी हाँ नहीं ठीक मैं आप मुझे हम क्या"
)
_NAME_TAIL_STOP = frozenset(
    [
        "and",
        "calling",
        "from",
        "speaking",
        "here",
        "i",
        "my",
        "please",
        "ji",
        "sir",
        "madam",
        "bol",
        "बोल",
        "जी",
        "हूँ",
        "हूं",
        "है",
    ]
)


def _clean_name(raw: str) -> str | None:
    words = raw.split()
    kept: list[str] = []
    for w in words:
        if w.lower() in _NAME_TAIL_STOP:
            break
        kept.append(w)
    if not kept or kept[0].lower() in _NOT_NAMES:
        return None
    if any(w.lower() in _NOT_NAMES for w in kept):
        kept = kept[: next(i for i, w in enumerate(kept) if w.lower() in _NOT_NAMES)]
    return " ".join(kept) or None


def extract_names(text: str, *, patient: bool = False) -> list[tuple[int, str]]:
    """``(position, name)`` for each self-introduction ("my name is X", "मेरा नाम X है" ...).

    With ``patient``, also phrases naming someone else as the patient ("for my mother X").
    """
    out: list[tuple[int, str]] = []
    text = _nfc(text)
    pats = (_PATIENT_PATTERNS + _NAME_PATTERNS) if patient else _NAME_PATTERNS
    seen: set[int] = set()
    for pat in pats:
        for m in pat.finditer(text):
            name = _clean_name(m.group(1))
            if name and m.start(1) not in seen:
                seen.add(m.start(1))
                out.append((m.start(1), name))
    out.sort()
    return out


# --------------------------------------------------------------------------- transliteration

_DEV_VOWELS = {
    "अ": "a", "आ": "aa", "इ": "i", "ई": "ee", "उ": "u", "ऊ": "oo", "ए": "e", "ऐ": "ai",
    "ओ": "o", "औ": "au", "ऋ": "ri", "ऑ": "o",
}  # fmt: skip
_DEV_MATRAS = {
    "ा": "a", "ि": "i", "ी": "i", "ु": "u", "ू": "u", "े": "e", "ै": "ai", "ो": "o",
    "ौ": "au", "ृ": "ri", "ॉ": "o", "ॅ": "e",
}  # fmt: skip
_DEV_CONS = {
    "क": "k", "ख": "kh", "ग": "g", "घ": "gh", "ङ": "n", "च": "ch", "छ": "chh", "ज": "j",
    "झ": "jh", "ञ": "n", "ट": "t", "ठ": "th", "ड": "d", "ढ": "dh", "ण": "n", "त": "t",
    "थ": "th", "द": "d", "ध": "dh", "न": "n", "प": "p", "फ": "ph", "ब": "b", "भ": "bh",
    "म": "m", "य": "y", "र": "r", "ल": "l", "व": "v", "श": "sh", "ष": "sh", "स": "s",
    "ह": "h", "क़": "q", "ख़": "kh", "ग़": "g", "ज़": "z", "ड़": "r", "ढ़": "rh", "फ़": "f",
}  # fmt: skip


def transliterate(text: str) -> str:
    """Rough Devanagari -> Latin ("रमेश गुप्ता" -> "ramesh gupta"), for comparing names.

    Inherent 'a' is dropped at the end of a word; long and short vowels are folded together.
    Latin text passes through unchanged (lower-cased).
    """
    import unicodedata

    text = unicodedata.normalize("NFC", text)
    out: list[str] = []
    chars = list(text)
    i = 0
    while i < len(chars):
        c = chars[i]
        nxt = chars[i + 1] if i + 1 < len(chars) else ""
        if c + nxt in _DEV_CONS and nxt == "़":
            c, i = c + nxt, i + 1
            nxt = chars[i + 1] if i + 1 < len(chars) else ""
        if c in _DEV_CONS:
            out.append(_DEV_CONS[c])
            if nxt == "्":
                i += 2
                continue
            if nxt in _DEV_MATRAS:
                out.append(_DEV_MATRAS[nxt])
                i += 2
                continue
            after = nxt if nxt else " "
            if after in _DEV_CONS or after in "ंँ":
                out.append("a")
            elif after not in _DEV_MATRAS and not ("\u0900" <= after <= "\u097f"):
                pass  # word end: schwa deletion
            i += 1
            continue
        if c in _DEV_VOWELS:
            out.append(_DEV_VOWELS[c])
        elif c in "ंँ":
            out.append("n")
        elif c in ("ः", "़", "्"):
            pass
        else:
            out.append(c)
        i += 1
    res = "".join(out).lower()
    return res.replace("aa", "a").replace("ee", "i").replace("oo", "u")


# --------------------------------------------------------------------------- intents

# concept -> (words that name the concept in a call type's name/description,
#             words a caller uses for it: English, Devanagari Hindi, romanised Hinglish)
_INTENTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "order": (
        ("order", "buy", "purchase"),
        ("order", "ordering", "buy", "deliver", "delivery", "pickup", "pick up", "parcel",
         "ऑर्डर", "आर्डर", "chahiye", "चाहिए", "bhej", "भेज", "mangwana", "मंगवाना", "loaf",
         "pastries", "pastry", "brownies", "cookies", "puffs", "pack"),
    ),
    "custom": (
        ("custom", "birthday", "anniversary", "theme", "made to order"),
        ("birthday", "anniversary", "theme", "photo cake", "fondant", "custom", "write on",
         "written", "message on", "likhna", "लिखना", "जन्मदिन", "janamdin", "tier", "tiered",
         "eggless", "design", "cartoon", "unicorn"),
    ),
    "appointment": (
        ("appointment", "book", "consultation", "booking"),
        ("appointment", "book", "booking", "slot", "consultation", "consult", "show to the doctor",
         "टीका", "tika", "teeka", "vaccination", "vaccine", "लगवाना",
         "अपॉइंटमेंट", "अपोइंटमेंट", "बुक", "dikhana", "दिखाना", "milna", "मिलना", "haircut",
         "facial", "come in", "visit", "checkup", "check up", "चेकअप", "नंबर लगा", "number laga"),
    ),
    "cancel": (
        ("cancel", "cancels", "reschedule", "move"),
        ("cancel", "cancelled", "can't come", "cannot come", "won't be able", "reschedule",
         "won't make it", "can't make it", "drop it", "not coming",
         "postpone", "prepone", "shift my", "move my", "change my appointment", "कैंसल", "रद्द",
         "nahi aa paunga", "nahi aa paungi", "नहीं आ पाऊंगा", "नहीं आ पाऊँगी"),
    ),
    "complaint": (
        ("complaint", "unhappy", "wrong", "problem"),
        ("complaint", "complain", "unhappy", "wrong", "late", "stale", "spoiled", "bad", "rude",
         "not fresh", "disappointed", "refund", "शिकायत", "shikayat", "kharab", "खराब", "ख़राब",
         "galat", "गलत", "ग़लत", "burnt", "melted", "broken", "hair in", "never arrived",
         "didn't come", "not delivered"),
    ),
    "price": (
        ("price", "prices", "enquiry", "question", "fees"),
        ("price", "cost", "how much", "rate", "charges", "charge", "kitna", "kitne", "कितना",
         "कितने", "दाम", "कीमत", "फ़ीस", "फीस", "fees", "fee", "rupees"),
    ),
    "info": (
        ("enquiry", "question", "timings", "general", "location"),
        ("timing", "timings", "open", "close", "closed", "address", "where", "location", "kab",
         "कब", "कहाँ", "kahan", "do you", "is there", "sunday", "parking", "available",
         "समय", "टाइम", "khule", "खुला", "खुले", "wrong number"),
    ),
    "refill": (
        ("refill", "prescription", "medicine", "repeat"),
        ("refill", "repeat", "medicine", "medicines", "tablet", "tablets", "prescription",
         "दवा", "दवाई", "dawa", "dawai", "dava", "गोली", "goli", "पर्चा", "parcha", "khatam",
         "खत्म", "ख़त्म", "mg"),
    ),
    "report": (
        ("report", "lab", "test"),
        ("report", "रिपोर्ट", "test", "टेस्ट", "जाँच", "जांच", "janch", "jaanch", "sample",
         "सैंपल", "cbc", "thyroid", "थायराइड", "hba1c", "lipid", "sugar test", "blood test",
         "urine", "vitamin", "ecg"),
    ),
}  # fmt: skip
_INTENTS = {
    k: (tuple(_nfc(w) for w in a), tuple(_nfc(w) for w in b)) for k, (a, b) in _INTENTS.items()
}
_ENQUIRY_WORDS = ("enquiry", "inquiry", "question", "general", "info", "other")


@dataclass(frozen=True)
class _TypeKeywords:
    call_type: CallType
    phrases: dict[str, float]  # lower-case word or phrase -> weight


def _type_keywords(tenant: Tenant) -> list[_TypeKeywords]:
    n = len(tenant.call_types)
    df: dict[str, int] = {}
    own: list[dict[str, float]] = []
    for ct in tenant.call_types:
        kw: dict[str, float] = {}
        for w in _content_words(ct.name.replace("_", " ")):
            kw[w] = max(kw.get(w, 0), 1.5)
        for w in _content_words(ct.description):
            kw[w] = max(kw.get(w, 0), 1.0)
        for f in ct.fields:
            for w in _content_words(f.name.replace("_", " ") + " " + f.description):
                kw[w] = max(kw.get(w, 0), 0.2)
        own.append(kw)
        for w in kw:
            df[w] = df.get(w, 0) + 1
    for kw in own:  # a word shared by several types is no name-word of any of them
        for w, v in kw.items():
            if df[w] > 1 and v > 1.0:
                kw[w] = 1.0
    out = []
    for ct, kw in zip(tenant.call_types, own, strict=True):
        # words every type has ("name", "phone") tell nothing
        phrases = {w: v * (1.0 - (df[w] - 1) / n) for w, v in kw.items() if df[w] < n}
        described = " ".join(_words(ct.name.replace("_", " ") + " " + ct.description))
        dwords = set(_words(described)) | {_stem(w) for w in _words(described)}
        for triggers, caller_words in _INTENTS.values():
            if any((t in dwords) if " " not in t else (t in described) for t in triggers):
                for cw in caller_words:
                    phrases[cw] = max(phrases.get(cw, 0.0), 2.0)
        out.append(_TypeKeywords(ct, phrases))
    return out


def _phrase_hits(text_low: str, words: set[str], phrase: str) -> int:
    if " " in phrase or not phrase.isascii():
        if phrase.isascii():
            return len(re.findall(r"\b" + re.escape(phrase) + r"\b", text_low))
        return text_low.count(phrase)
    return 1 if (phrase in words) else 0


_WRONG_NUMBER = _rx(
    r"wrong number|galat number|ghalat number|गलत नंबर|ग़लत नंबर|गलत नम्बर|ग़लत नम्बर", re.I
)
_TYPED = ("phone", "date", "time", "datetime", "list", "number", "integer", "boolean")
QUESTION_WEIGHT = 1.0
_BOOKING_VERBS = _rx(
    r"\b(?:book|order|cancel|reschedule|want|need|chahiye|karna|karwana)\b|चाहिए|बुक|कैंसल", re.I
)
REQUIRED_BONUS = 0.75


def _score_types(tenant: Tenant, turns: Sequence[_Turn]) -> dict[str, float]:
    kws = _type_keywords(tenant)
    scores = {k.call_type.name: 0.0 for k in kws}
    for turn in turns:
        low = turn.text.lower()
        words = set(_words(low)) | {_stem(w) for w in _words(low)}
        weight = 1.0 if turn.caller else AGENT_WEIGHT
        for k in kws:
            s = 0.0
            for phrase, v in k.phrases.items():
                hits = _phrase_hits(low, words, phrase)
                if hits:
                    s += v * min(hits, 2)
            scores[k.call_type.name] += weight * s
    return scores


def _enquiry_type(tenant: Tenant) -> CallType:
    for ct in tenant.call_types:
        if any(w in ct.name.lower() for w in _ENQUIRY_WORDS):
            return ct
    for ct in tenant.call_types:
        if any(w in ct.description.lower() for w in _ENQUIRY_WORDS):
            return ct
    return tenant.call_types[0]


def choose_call_type(
    tenant: Tenant, transcript: Sequence[dict[str, Any]], *, now: datetime | None = None
) -> tuple[str, float]:
    """(call type, confidence in [0, 1]) for a non-empty transcript."""
    turns = _turns(transcript)
    if any(t.caller and _WRONG_NUMBER.search(t.text) for t in turns):
        return _enquiry_type(tenant).name, 0.6
    scores = _score_types(tenant, turns)
    when = now or datetime.now(ZoneInfo(tenant.timezone))
    ctx = _Context(tenant, turns, when)
    for ct in tenant.call_types:
        if scores[ct.name] <= 0:
            continue
        # a caller who gives the typed details a booking needs (date, time, phone ...) is booking
        typed = [f for f in ct.fields if f.required and f.type in _TYPED]
        found = sum(1 for f in typed if _extract_field(ctx, f) not in (None, [], ""))
        scores[ct.name] += REQUIRED_BONUS * found
    enquiry = _enquiry_type(tenant).name
    # a caller who asks questions (without booking words) is enquiring
    questions = sum(
        1
        for t in turns
        if t.caller
        for s in _sentences(t.text)
        if s.endswith("?") and not _BOOKING_VERBS.search(s)
    )
    scores[enquiry] = scores.get(enquiry, 0.0) + QUESTION_WEIGHT * min(questions, 2)
    best = max(scores.values(), default=0.0)
    if best <= 0:
        return _enquiry_type(tenant).name, 0.2
    top = [name for name, s in scores.items() if s >= best - 1e-9]
    if len(top) > 1:

        def found_required(name: str) -> int:
            ct = tenant.call_type(name)
            assert ct is not None
            det = _extract_details(ctx, ct)
            return sum(1 for f in ct.required_fields if f in det)

        top.sort(key=found_required, reverse=True)
    total = sum(s for s in scores.values() if s > 0)
    conf = best / total if total else 0.0
    return top[0], round(min(1.0, conf), 2)


# --------------------------------------------------------------------------- vocabulary


@dataclass(frozen=True, slots=True)
class _VocabEntry:
    canonical: str
    aliases: tuple[str, ...]  # lower-case forms to look for, canonical included
    context: frozenset[str]  # words of the file name and section heading
    priced: bool
    tabled: bool = False
    fname: str = ""
    head_noun: str = ""  # "cake" for entries under "## Cakes ..."


_PRICE_RE = _rx(r"₹|rs\.?\s*\d|\d+\s*(?:rupees|रुपये)", re.I)
_ALIAS_HI = {
    "थायराइड": "thyroid", "थाइरोइड": "thyroid", "शुगर": "sugar", "टेस्ट": "test",
    "रिपोर्ट": "report", "केक": "cake", "विटामिन": "vitamin", "यूरिन": "urine", "ब्लड": "blood",
    "लिपिड": "lipid", "प्रोफाइल": "profile", "हेयरकट": "haircut", "फेशियल": "facial",
    "चॉकलेट": "chocolate", "पाइनएप्पल": "pineapple", "डॉक्टर": "doctor", "डॉ.": "dr.",
}  # fmt: skip


_ALIAS_HI = {_nfc(k): v for k, v in _ALIAS_HI.items()}


def _split_item(raw: str) -> list[str]:
    raw = re.sub(r"\*\*|`", "", raw).strip()
    parts: list[str] = []
    for chunk in re.split(r";|(?<!\w)/(?!\w)|\s/\s", raw):
        chunk = re.split(r"\s--\s|:|₹|\s-\s|,", chunk)[0]
        chunk = re.sub(r"\(.*?\)", "", chunk)
        chunk = re.sub(r"\d+\s*(?:g|kg|ml)\b.*", "", chunk)
        chunk = chunk.strip(" .-|#")
        if 2 < len(chunk) <= 40 and not re.fullmatch(r"[\d\s.,%+-]+", chunk):
            parts.append(chunk)
    return parts


@lru_cache(maxsize=64)
def _vocabulary(input_files: tuple[tuple[str, str], ...]) -> tuple[_VocabEntry, ...]:
    out: list[_VocabEntry] = []
    for fname, raw_text in input_files:
        text = _nfc(raw_text)
        heading = ""
        head_entry: tuple[str, set[str]] | None = None
        first_bullet = False
        for line in text.splitlines():
            s = line.strip()
            if s.startswith("#"):
                heading = s.strip("# ")
                # a heading like "डॉ. अनिल शर्मा (Dr. Anil Sharma) -- MBBS" names an entry too
                m = re.match(r"(.+?)\s*\((.+?)\)\s*--", heading)
                head_entry = None
                if m:
                    canon = m.group(2).strip()
                    native = m.group(1).strip().lower()
                    aliases = {canon.lower(), native}
                    for form in (canon.lower(), native):
                        parts = form.split()
                        if len(parts) >= 3:  # "dr. anil sharma" -> "anil sharma", "dr anil", ...
                            aliases |= {" ".join(parts[1:]), f"{parts[0]} {parts[1]}"}
                            if form.isascii():
                                aliases |= {f"dr {parts[1]}", f"doctor {parts[1]} {parts[2]}"}
                    head_entry = (canon, aliases)
                    ctx0 = frozenset(_content_words(fname))
                    out.append(_VocabEntry(canon, tuple(sorted(aliases)), ctx0, False, True, fname))
                first_bullet = head_entry is not None
                continue
            if first_bullet and head_entry and s.startswith("- "):
                # "- बच्चों के डॉक्टर / Child specialist (paediatrician): ..." names the entry too
                first_bullet = False
                canon, aliases = head_entry
                extra = {a.lower() for a in _split_item(s[2:].split(":")[0])}
                extra |= {x.strip().lower() for x in re.findall(r"\(([^)]*)\)", s.split(":")[0])}
                ctx0 = frozenset(_content_words(fname))
                out[-1] = _VocabEntry(
                    canon, tuple(sorted(aliases | extra)), ctx0, False, True, fname
                )
                continue
            ctx = frozenset(_content_words(fname + " " + heading))
            hw = _words(heading)
            noun = _stem(hw[0]) if hw else ""
            priced = bool(_PRICE_RE.search(s))
            cands: list[str] = []
            if s.startswith("|"):
                cells = [c.strip() for c in s.strip("|").split("|")]
                if cells and not set(cells[0]) <= set("-: "):
                    cands = _split_item(cells[0])
                    if cands and cands[0].lower() in ("cake", "stylist", "area", "डॉक्टर"):
                        cands = []
            elif s.startswith(("- ", "* ")):
                body = s[2:]
                # "Waxing: full arms ₹400" / "Haircut + beard trim: ₹400"
                cands = _split_item(body)
                for inner in re.findall(r"\(([^)]*)\)", body):
                    if not re.search(r"\d|₹", inner) and "," not in inner:
                        cands.append(inner.strip())
            for c in cands:
                lowc = c.lower()
                aliases = {lowc}
                for dev, lat in _ALIAS_HI.items():
                    if dev in lowc:
                        aliases.add(lowc.replace(dev, lat))
                tabled = s.startswith("|")
                out.append(_VocabEntry(c, tuple(sorted(aliases)), ctx, priced, tabled, fname, noun))
    return tuple(out)


def _field_keywords(spec: FieldSpec) -> set[str]:
    desc = re.sub(r"e\.g\..*$", "", spec.description)  # examples are not what the field is about
    words = set(_content_words(spec.name.replace("_", " ") + " " + desc))
    return words | {w + "s" for w in words}


def _examples(spec: FieldSpec) -> list[str]:
    m = re.search(r"e\.g\.\s*(.+)$", spec.description)
    if not m:
        return []
    out = []
    for part in re.split(r",| or ", m.group(1)):
        part = part.strip(" .'\")(")
        if part and len(part) <= 30 and not re.search(r"\d", part):
            out.append(part)
    return out


_NOT_ITEM_FILES = ("hour", "timing", "delivery", "location", "contact")


def _field_vocab(
    tenant: Tenant, spec: FieldSpec, siblings: Iterable[str] = ()
) -> list[_VocabEntry]:
    vocab = _vocabulary(tenant.input_files)
    skip = {s.replace("_", " ").lower() for s in siblings}
    skip |= {f.name.replace("_", " ").lower() for ct in tenant.call_types for f in ct.fields}
    pool = [
        e
        for e in vocab
        if (e.priced or e.tabled)
        and len(e.canonical) > 2
        and e.canonical.lower() not in skip
        and not any(w in e.fname.lower() for w in _NOT_ITEM_FILES)
    ]
    fk = _field_keywords(spec)
    scored = [(len(fk & set(e.context)), e) for e in pool]
    best = max((s for s, _ in scored), default=0)
    if spec.type == "list":
        chosen = pool
    elif best > 0:
        chosen = [e for s, e in scored if s == best]
    else:
        chosen = pool
    for ex in _examples(spec):
        chosen.append(_VocabEntry(ex, (ex.lower(),), frozenset(), False))
    return chosen


def _normalise_for_match(text: str) -> str:
    low = text.lower()
    for dev, lat in _ALIAS_HI.items():
        low = low.replace(dev, lat)
    return low


def _match_vocab(text: str, vocab: Sequence[_VocabEntry]) -> list[tuple[int, int, _VocabEntry]]:
    """Non-overlapping vocabulary matches in ``text``, longest first."""
    low = _normalise_for_match(text)
    hits: list[tuple[int, int, _VocabEntry]] = []
    for e in vocab:
        for alias in e.aliases:
            pat = re.escape(alias)
            if alias[:1].isascii() and alias[:1].isalnum():
                pat = r"(?<![a-z0-9])" + pat
            if alias[-1:].isascii() and alias[-1:].isalnum():
                pat += r"(?:s|es)?(?![a-z0-9])"
            for m in re.finditer(pat, low):
                hits.append((m.start(), m.end(), e))
    hits.sort(key=lambda h: (-(h[1] - h[0]), h[0]))
    taken: list[tuple[int, int, _VocabEntry]] = []
    for h in hits:
        if all(h[1] <= t[0] or h[0] >= t[1] for t in taken):
            taken.append(h)
    taken.sort(key=lambda h: h[0])
    return taken


# --------------------------------------------------------------------------- details


@dataclass
class _Context:
    tenant: Tenant
    turns: Sequence[_Turn]
    now: datetime

    @property
    def today(self) -> date:
        return _local_today(self.now, self.tenant.timezone)

    def caller_text(self) -> str:
        return "\n".join(t.text for t in self.turns if t.caller)

    def agent_text(self) -> str:
        return "\n".join(t.text for t in self.turns if not t.caller)


_YES = _rx(
    r"^\s*(?:yes|yeah|yep|ya|haan|han|haa|ha ji|ji haan|जी हाँ|हाँ|हां|जी|sure|correct|right|ok)\b",
    re.I,
)
_NO = _rx(r"^\s*(?:no|nope|nahi|nahin|नहीं|नही|not)\b", re.I)
_NEG_NEAR = _rx(r"\b(?:no|not|don't|dont|nahi|nahin|without|with egg|regular)\b|नहीं|नही|बिना")
_QUOTED_OPTIONS = _rx(r"'([^']+)'\s+or\s+'([^']+)'")
_NAME_FIELD = _rx(r"(?:^|_)name$")


def _relevant_sentences(ctx: _Context, spec: FieldSpec, *, caller_only: bool = True) -> list[str]:
    fk = _field_keywords(spec) - {"name", "phone", "number", "date", "time"}
    out: list[tuple[int, str]] = []
    for t in ctx.turns:
        if caller_only and not t.caller:
            continue
        for s in _sentences(t.text):
            words = set(_content_words(s))
            score = len(words & fk)
            if score:
                out.append((score, s))
    out.sort(key=lambda x: -x[0])
    return [s for _, s in out]


def _pick_by_relevance(
    ctx: _Context,
    spec: FieldSpec,
    finder: Any,
) -> Any:
    """Value found by ``finder(sentence)`` in the caller's sentences that mention the field;
    else the caller's last such value; else the agent's last (read-backs)."""
    fk = _field_keywords(spec) - {"date", "time", "name", "phone", "number"}
    best: tuple[int, int, Any] | None = None
    last_caller: Any = None
    last_agent: Any = None
    order = 0
    for t in ctx.turns:
        for s in _sentences(t.text):
            vals = finder(s)
            if not vals:
                continue
            order += 1
            if t.caller:
                last_caller = vals[-1]
                rel = len(set(_content_words(s)) & fk)
                if rel and (best is None or rel >= best[0]):
                    best = (rel, order, vals[-1])
            else:
                last_agent = vals[-1]
    if best is not None and len(fk) > 0 and spec.name not in ("date", "time"):
        return best[2]
    if last_caller is not None:
        return last_caller
    return last_agent


def _extract_phone(ctx: _Context, spec: FieldSpec) -> str | None:
    caller = [p for t in ctx.turns if t.caller for p in extract_phones(t.text)]
    turns = ctx.turns
    last_caller_i = max((i for i, t in enumerate(turns) if t.caller and extract_phones(t.text)),
                        default=-1)  # fmt: skip
    for i in range(len(turns) - 2, max(last_caller_i, 0) - 1, -1):
        t, nxt = turns[i], turns[i + 1]
        if not t.caller and nxt.caller and extract_phones(t.text) and _YES.search(nxt.text):
            return extract_phones(t.text)[-1]
    if caller:
        return caller[-1]
    agent = [p for t in ctx.turns if not t.caller for p in extract_phones(t.text)]
    return agent[-1] if agent else None


def _extract_date(ctx: _Context, spec: FieldSpec) -> str | None:
    today = ctx.today

    def finder(s: str) -> list[date]:
        return [d for _, d in extract_dates(s, today)]

    d = _pick_by_relevance(ctx, spec, finder)
    return d.isoformat() if d else None


def _extract_time(ctx: _Context, spec: FieldSpec) -> str | None:
    def finder(s: str) -> list[str]:
        return [t for _, t in extract_times(s)]

    return _pick_by_relevance(ctx, spec, finder)


def _extract_datetime(ctx: _Context, spec: FieldSpec) -> str | None:
    d = _extract_date(ctx, spec)
    t = _extract_time(ctx, spec)
    return f"{d}T{t}" if d and t else None


_ASKS_NAME = _rx(r"\bname\b|\bnaam\b|नाम", re.I)
_BARE_NAME = _rx(
    r"^\s*(?:(?:my name is|name is|this is|i am|i'm|it's|naam|नाम)\s+)?"
    r"((?:Mohd\.\s+)?(?:[A-Z][a-z]+|[\u0900-\u097f]+)(?:\s+(?:[A-Z][a-z]+|[\u0900-\u097f]+)){0,2})"
    r"\s*(?:[,.।]|$|\d|\+)"
)


def _answered_names(ctx: _Context) -> list[str]:
    """Names the caller gave right after the agent asked ("Name?" -- "Sunita Rao, 98...")."""
    out: list[str] = []
    turns = ctx.turns
    for i in range(1, len(turns)):
        t, prev = turns[i], turns[i - 1]
        if not t.caller or prev.caller or not _ASKS_NAME.search(prev.text):
            continue
        m = _BARE_NAME.match(t.text)
        if m:
            name = _clean_name(m.group(1))
            if name and not _GREETING_WORDS.intersection(w.lower() for w in name.split()):
                out.append(name)
    return out


_GREETING_WORDS = _wordset(
    "hello hi haan han yes no ok okay sure sorry same mera meri mere my number phone "
    "जी हाँ नहीं मेरा मेरी मेरे बेटी बेटा sir madam beta beti"
)


def _extract_name(ctx: _Context, spec: FieldSpec) -> str | None:
    patient = "patient" in spec.name or "patient" in spec.description.lower()
    names: list[str] = []
    for t in ctx.turns:
        if t.caller:
            names += [n for _, n in extract_names(t.text, patient=patient)]
    if not names:
        names = _answered_names(ctx)
    if patient:
        # a named patient ("for my mother Kamla Devi") wins over the caller's own name
        pats = [n for t in ctx.turns if t.caller for p in _PATIENT_PATTERNS
                for m in p.finditer(t.text) if (n := _clean_name(m.group(1)))]  # fmt: skip
        if pats:
            return pats[-1]
    return names[-1] if names else None


def _extract_number(ctx: _Context, spec: FieldSpec) -> float | int | None:
    text_words = set(_words(spec.name.replace("_", " ") + " " + spec.description))
    if text_words & {"kg", "weight", "kilo", "kilos"}:
        vals = [v for t in ctx.turns if t.caller for _, v in extract_quantities(t.text)]
        if not vals:
            vals = [v for t in ctx.turns if not t.caller for _, v in extract_quantities(t.text)]
        if not vals:
            return None
        v = vals[-1]
        if spec.type == "integer":
            return int(v) if v == int(v) else None
        return v
    fk = _field_keywords(spec)
    for s in reversed(_relevant_sentences(ctx, spec)):
        for tok in _words(s):
            n = _num(tok)
            if n is not None and tok not in fk:
                return int(n) if spec.type == "integer" or n == int(n) else n
    return None


def _extract_boolean(ctx: _Context, spec: FieldSpec) -> bool | None:
    desc = spec.description.lower()
    key = {w for w in _words(spec.name.replace("_", " ")) if w not in STOPWORDS and len(w) > 2}
    if "never" in desc or "first" in desc or "new" in spec.name:
        key |= {"first time", "pehli baar", "पहली बार", "new patient", "never", "before",
                "pehle", "पहले", "already", "earlier"}  # fmt: skip
    invert_words = ("before", "pehle", "पहले", "already", "earlier", "visited")
    turns = ctx.turns
    result: bool | None = None
    for i, t in enumerate(turns):
        low = t.text.lower()
        hit = [k for k in key if (k in low if (" " in k or not k.isascii()) else k in _words(low))]
        if not hit:
            continue
        if t.caller:
            for s in _sentences(t.text):
                sl = s.lower()
                if not any(k in sl for k in hit):
                    continue
                neg = bool(_NEG_NEAR.search(sl))
                inv = any(w in sl for w in invert_words) and not any(
                    w in sl for w in ("first", "pehli", "पहली", "never", "new")
                )
                result = (not neg) != inv
        elif t.text.rstrip().endswith("?") and i + 1 < len(turns) and turns[i + 1].caller:
            ans = turns[i + 1].text
            inv = any(w in low for w in invert_words) and "never" not in low
            if _YES.search(ans) and not _NEG_NEAR.search(ans.lower()):
                result = not inv
            elif _NO.search(ans):
                result = inv
    return result


# Common Indian brand/generic names of regular (chronic) medicines, for callers who name one
# without a strength. Names said with a strength ("Telma 40") are found without this list.
_MEDICINES = (
    "pan d", "pan 40", "pantocid", "shelcal", "dolo", "crocin", "calpol", "telma", "telmisartan",
    "metformin", "glycomet", "ecosprin", "thyronorm", "eltroxin", "amlodipine", "amlong",
    "stamlo", "atorva", "atorvastatin", "rosuvas", "januvia", "galvus", "istamet", "jalra",
    "becosules", "limcee", "montair", "allegra", "omez", "razo", "rantac", "losar", "cilacar",
    "glimepiride", "amaryl", "gemer", "volini", "combiflam", "uprise", "folvite", "thyrox",
)  # fmt: skip
_MED_WITH_DOSE = _rx(r"\b([A-Z][A-Za-z]+(?:[ -][A-Z][A-Za-z]*)?)\s+(\d{1,4}(?:\.\d+)?)(\s*mg)?\b")
_NOT_MEDICINE = frozenset(["dr", "doctor", "sir", "madam", "number", "phone", "flat", "room"])


def _extract_medicines(ctx: _Context) -> list[str]:
    out: list[str] = []
    names: set[str] = set()
    for t in ctx.turns:
        if not t.caller:
            continue
        spans: list[tuple[int, int, str]] = []
        for m in _MED_WITH_DOSE.finditer(t.text):
            name = m.group(1)
            if name.split()[0].lower() in _NOT_MEDICINE or m.group(2).startswith("0"):
                continue
            if len(re.sub(r"\D", "", t.text[m.start(2) :])) >= 10 and not m.group(3):
                continue  # start of a phone number
            spans.append((m.start(), m.end(), f"{name} {m.group(2)}{' mg' if m.group(3) else ''}"))
        low = t.text.lower()
        for med in _MEDICINES:
            for m in re.finditer(r"(?<![a-z])" + re.escape(med) + r"(?![a-z])", low):
                if not any(a <= m.start() < b for a, b, _ in spans):
                    spans.append((m.start(), m.end(), t.text[m.start() : m.end()]))
        for _, _, v in sorted(spans):
            key = v.lower().split()[0]
            if key not in names:
                names.add(key)
                out.append(v)
    return out


def _extract_items(ctx: _Context, spec: FieldSpec) -> list[str]:
    if set(_words(spec.name + " " + spec.description)) & {"medicine", "medicines", "drug", "drugs"}:
        return _extract_medicines(ctx)
    vocab = _field_vocab(ctx.tenant, spec)
    with_sizes = bool(set(_words(spec.description)) & {"size", "weight", "quantity"})
    out: list[str] = []
    for t in ctx.turns:
        if not t.caller:
            continue
        text = t.text
        for start, end, e in _match_vocab(text, vocab):
            item = e.canonical
            nxt = re.match(r"\s+([a-z]+)", text[end:].lower())
            if (
                nxt
                and e.head_noun
                and _stem(nxt.group(1)) == e.head_noun
                and e.head_noun not in item.lower()
            ):
                item += " " + _stem(nxt.group(1))
                end += nxt.end()
            if with_sizes:
                qty = _quantity_near(text, start, end)
                if qty:
                    item += " " + qty
                else:
                    n = _count_before(text, start)
                    if n is not None and n > 1:
                        item = f"{n} {item}"
            if item.lower() not in (o.lower() for o in out):
                out.append(item)
    return out


def _extract_string(ctx: _Context, spec: FieldSpec) -> str | None:
    if (
        _NAME_FIELD.search(spec.name)
        and "name" in spec.description.lower()
        and not (set(_words(spec.description)) & {"test", "item", "service"})
    ):
        return _extract_name(ctx, spec)
    opts = _QUOTED_OPTIONS.search(spec.description)
    if opts:
        choices = [opts.group(1), opts.group(2)]
        last: tuple[int, str] | None = None
        for i, t in enumerate(ctx.turns):
            if not t.caller:
                continue
            low = t.text.lower()
            for c in choices:
                stem = c.lower()[:4]
                if stem in low or (c == "delivery" and "deliver" in low):
                    pos = i * 10000 + low.rfind(stem)
                    if last is None or pos > last[0]:
                        last = (pos, c)
        return last[1] if last else None
    if "message" in spec.name or "write" in spec.description.lower():
        for t in reversed(ctx.turns):
            if not t.caller:
                continue
            m = re.search(
                r"(?<![A-Za-z])[\"“']([^\"”']{2,40})[\"”'](?![A-Za-z])", t.text
            ) or re.search(
                r"(?:write|likhna|likhiye|लिखना|लिखिए)\s*[:,]?\s*(.{2,40}?)\s*(?:on (?:it|the cake)"
                r"|$|\.|,)",
                t.text,
                re.I,
            )
            if m:
                return m.group(1).strip()
        return None
    vocab = _field_vocab(ctx.tenant, spec)
    item_like = bool(
        set(_words(spec.name.replace("_", " ")))
        & {"service", "flavour", "flavor", "test", "doctor", "stylist", "item", "items", "product"}
    )
    if item_like and vocab:
        found = _extract_items(ctx, spec)
        if found:
            return " and ".join(found)
        if "stylist" in spec.name and re.search(
            r"\b(?:any|anyone|anybody)\b", ctx.caller_text(), re.I
        ):
            return "any"
        return None
    if spec.required and spec.name in ("question",):
        for t in ctx.turns:
            if t.caller:
                for s in _sentences(t.text):
                    if "?" in s or re.match(
                        r"(?i)(what|when|where|how|do|is|are|can|kya|क्या|कब|कहाँ)\b", s
                    ):
                        return s.strip()[:200]
    sents = _relevant_sentences(ctx, spec)
    if "address" in spec.name:
        sents = [s for s in sents if _ADDRESS_CUES.search(s) and "?" not in s]
        if not sents:
            for t in ctx.turns:
                if t.caller:
                    sents += [s for s in _sentences(t.text) if _ADDRESS_CUES.search(s)
                              and re.search(r"\d", s) and "?" not in s]  # fmt: skip
    return sents[0].strip()[:200] if sents else None


_ADDRESS_CUES = _rx(
    r"\b(?:flat|house|door|no\.|apartments?|cross|main|road|block|layout|nagar|colony|sector"
    r"|street|near|opposite|floor)\b",
    re.I,
)


def _extract_field(ctx: _Context, spec: FieldSpec) -> Any:
    t = spec.type
    if t == "phone":
        return _extract_phone(ctx, spec)
    if t == "date":
        return _extract_date(ctx, spec)
    if t == "time":
        return _extract_time(ctx, spec)
    if t == "datetime":
        return _extract_datetime(ctx, spec)
    if t in ("number", "integer"):
        return _extract_number(ctx, spec)
    if t == "boolean":
        return _extract_boolean(ctx, spec)
    if t == "list":
        return _extract_items(ctx, spec) or None
    return _extract_string(ctx, spec)


def _extract_details(ctx: _Context, ct: CallType) -> dict[str, Any]:
    details: dict[str, Any] = {}
    for spec in ct.fields:
        value = _extract_field(ctx, spec)
        if value is None or value == "" or value == []:
            continue
        details[spec.name] = value
    return details


def _summary(ct: CallType, details: dict[str, Any]) -> str:
    title = ct.name.replace("_", " ").capitalize()
    parts = []
    for spec in ct.fields:
        if spec.name not in details:
            continue
        v = details[spec.name]
        if isinstance(v, list):
            v = ", ".join(v)
        elif isinstance(v, bool):
            v = "yes" if v else "no"
        parts.append(f"{spec.name.replace('_', ' ')} {v}")
    line = f"{title}: " + "; ".join(parts) if parts else f"{title} (no details found)"
    return line[:300]


def analyze_offline(
    tenant: Tenant, transcript: Sequence[dict[str, Any]], *, now: datetime
) -> Analysis:
    """Call type, summary and details of one call, without a model.

    ``transcript`` is the stored list of turns ``{speaker, text, start_ms, end_ms}``; ``now``
    (timezone-aware, normally the call's start) anchors "tomorrow", weekdays and so on, which are
    resolved in the tenant's timezone.
    """
    turns = _turns(transcript)
    if not any(t.caller for t in turns):
        return Analysis(
            call_type=NO_CONVERSATION,
            summary="No conversation: the caller did not speak.",
            details={},
            analyzer="offline",
            confidence=1.0,
        )
    name, conf = choose_call_type(tenant, transcript, now=now)
    ct = tenant.call_type(name)
    assert ct is not None
    ctx = _Context(tenant, turns, now)
    details = _extract_details(ctx, ct)
    # never hand on something the schema would reject
    for problem_key in [k for k in details if validate_details(tenant, name, {k: details[k]})]:
        details.pop(problem_key)
    return Analysis(
        call_type=name,
        summary=_summary(ct, details),
        details=details,
        analyzer="offline",
        confidence=conf,
    )
