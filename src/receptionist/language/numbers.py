"""Numbers said in words (English, Hinglish, Hindi) and phone digits read out one by one."""

from __future__ import annotations

import re

from .text import nfc, rx

__all__ = [
    "DEVANAGARI_DIGITS",
    "HOUR_WORDS",
    "NUMBER_WORDS",
    "blank_digit_runs",
    "number_value",
    "parse_count",
    "spoken_digits_to_numbers",
]

# One table for every reader: English, romanised Hindi and Devanagari.
NUMBER_WORDS: dict[str, int] = {
    nfc(k): v
    for k, v in {
        "zero": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
        "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
        "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
        "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
        "hundred": 100,
        "ek": 1, "teen": 3, "char": 4, "chaar": 4, "paanch": 5, "panch": 5, "chhe": 6,
        "chhah": 6, "saat": 7, "aath": 8, "nau": 9, "das": 10, "gyarah": 11, "barah": 12,
        "baarah": 12,
        "एक": 1, "दो": 2, "तीन": 3, "चार": 4, "पांच": 5, "पाँच": 5, "छह": 6, "छः": 6, "सात": 7,
        "आठ": 8, "नौ": 9, "दस": 10, "ग्यारह": 11, "बारह": 12, "शून्य": 0,
    }.items()
}  # fmt: skip
# Clock hours said in words (no "zero"/"oh": "Oh, evening" is no time).
HOUR_WORDS: dict[str, int] = {k: v for k, v in NUMBER_WORDS.items() if 1 <= v <= 12}
_DIGIT_WORDS: dict[str, str] = {
    "zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip
DEVANAGARI_DIGITS = str.maketrans("०१२३४५६७८९", "0123456789")


def number_value(token: str) -> float | None:
    """'12', '2.5', 'twelve', 'barah', 'बारह', '१२' -> the number; None for any other word."""
    token = token.lower().translate(DEVANAGARI_DIGITS)
    if re.fullmatch(r"\d+(?:\.\d+)?", token):
        return float(token)
    if token in NUMBER_WORDS:
        return float(NUMBER_WORDS[token])
    return None


def parse_count(word: str) -> int | None:
    """'6' / 'six' / 'a' / 'a dozen' -> count, None when it is no count (nor zero)."""
    w = word.strip().lower()
    if w.isdigit():
        return int(w)
    if w in ("a", "an", "one", "single"):
        return 1
    if w in ("dozen", "a dozen", "one dozen"):
        return 12
    if w in ("couple", "a couple", "pair", "a pair"):
        return 2
    if NUMBER_WORDS.get(w):
        return NUMBER_WORDS[w]
    m = re.fullmatch(r"(\w+)\s+dozen", w)
    if m:
        n = parse_count(m.group(1))
        return n * 12 if n else None
    return None


_DIGIT_ALT = "zero|oh|one|two|three|four|five|six|seven|eight|nine"
_SPOKEN_DIGITS_RE = rx(
    rf"\b(?:(?:double|triple)\s+)?(?:{_DIGIT_ALT})"
    rf"(?:[\s,-]+(?:(?:double|triple)\s+)?(?:{_DIGIT_ALT}|\d))+\b",
    re.IGNORECASE,
)


def _digits_of(spoken: str) -> str:
    out: list[str] = []
    mult = 1
    for tok in re.findall(r"double|triple|\w+", spoken.lower()):
        if tok == "double":
            mult = 2
        elif tok == "triple":
            mult = 3
        else:
            out.append(_DIGIT_WORDS.get(tok, tok if tok.isdigit() else "") * mult)
            mult = 1
    return "".join(out)


def spoken_digits_to_numbers(text: str) -> str:
    """'nine eight double four ...' -> '9844...' (only runs of six or more digits)."""

    def repl(m: re.Match[str]) -> str:
        digits = _digits_of(m.group(0))
        return digits if len(digits) >= 6 else m.group(0)

    return _SPOKEN_DIGITS_RE.sub(repl, text)


# seven or more digits in one run, grouped by spaces, dots or hyphens: a phone number read out
# ("9-8-4-5-0-1-2-3-4-5", "988-6543-2-1-0", "982 001 2345")
_DIGIT_RUN_RE = re.compile(r"(?<![\w.,:/-])\d(?:[ .-]{0,3}\d){6,}(?![\w:/])")
_DATE_SHAPE_RE = re.compile(r"\d{1,2}([/-])\d{1,2}\1\d{2,4}|\d{4}-\d{2}-\d{2}")


def blank_digit_runs(text: str) -> str:
    """``text`` with phone-like digit runs made spaces, positions kept.

    A number read out digit by digit or in odd groups is no date ("4-5" inside
    "9-8-4-5-0-..."), time or weight; readers of those blank the runs first. Spoken digits
    ("nine eight four ...", six or more) count too; a written date ("25-12-2026") does not.
    """

    def blank(m: re.Match[str]) -> str:
        if _DATE_SHAPE_RE.fullmatch(m.group(0)):
            return m.group(0)
        return " " * len(m.group(0))

    def blank_spoken(m: re.Match[str]) -> str:
        return " " * len(m.group(0)) if len(_digits_of(m.group(0))) >= 6 else m.group(0)

    return _SPOKEN_DIGITS_RE.sub(blank_spoken, _DIGIT_RUN_RE.sub(blank, text))
