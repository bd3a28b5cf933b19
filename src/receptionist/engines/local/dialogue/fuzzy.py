"""Hearing a catalog name that speech-to-text spelled a little differently.

The catalog matcher in :mod:`..knowledge` wants the tenant's own words ("dolo 650", "vick
vaporub"); Whisper writes "Dollo 650", "Vicks Vapo rub", and callers say model numbers as words
("Dolo six fifty"). :func:`fuzzy_spans` finds, in the parts of a caller's words no exact name
covered, the windows of words closest to a catalog name (`rapidfuzz` ratio of the words sorted,
so "Electral ORS" is "ORS Electral"; a high cutoff so
that a different product -- "white forest" for "black forest" -- never passes), and
:func:`spoken_variants` gives a name's model number in words so both can be heard.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz, process

#: similarity (0-100) a window of the caller's words needs to stand for a catalog name
CUTOFF = 87.0
MIN_ALIAS_CHARS = 6  # shorter names ("ors", "kids") are too easy to hit by chance

_ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_TEENS = ("ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
          "eighteen", "nineteen")  # fmt: skip
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")


def _two_digits(n: int) -> str:
    if n < 10:
        return _ONES[n]
    if n < 20:
        return _TEENS[n - 10]
    return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])


def number_words(n: int) -> list[str]:
    """How a caller says a model number: 650 -> "six fifty", "six hundred fifty"; 40 -> "forty"."""
    if n < 100:
        return [_two_digits(n)]
    if n < 1000:
        head, rest = divmod(n, 100)
        if rest == 0:
            return [f"{_ONES[head]} hundred"]
        return [f"{_ONES[head]} {_two_digits(rest)}", f"{_ONES[head]} hundred {_two_digits(rest)}"]
    return []


def spoken_variants(alias: str) -> list[str]:
    """``alias`` with its one number (if any) said in words: "dolo 650" -> "dolo six fifty" ..."""
    nums = re.findall(r"\b\d{1,3}\b", alias)
    if len(nums) != 1:
        return []
    return [re.sub(rf"\b{nums[0]}\b", w, alias) for w in number_words(int(nums[0]))]


@dataclass(frozen=True, slots=True)
class FuzzySpan:
    start: int  # character offsets in the text searched
    end: int
    alias: int  # index into the aliases given
    score: float


def _words(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r"[a-z0-9]+", text)]


def fuzzy_spans(
    text: str, aliases: Sequence[str], taken: Sequence[tuple[int, int]] = ()
) -> list[FuzzySpan]:
    """Non-overlapping windows of ``text`` (lower case, normalised) that sound like one of
    ``aliases``, outside the ``taken`` spans, best first then by position."""
    usable = [(i, a) for i, a in enumerate(aliases) if len(a.replace(" ", "")) >= MIN_ALIAS_CHARS]
    if not usable:
        return []
    words = [w for w in _words(text) if not any(s < w[1] and w[0] < e for s, e in taken)]
    sizes = sorted({len(a.split()) for _, a in usable})
    choices = [a for _, a in usable]
    found: list[FuzzySpan] = []
    for size in sizes:
        for n in {size - 1, size, size + 1} - {0}:
            for k in range(len(words) - n + 1):
                run = words[k : k + n]
                if any(run[j + 1][0] - run[j][1] > 3 for j in range(n - 1)):
                    continue  # not adjacent words (something taken lies between)
                window = text[run[0][0] : run[-1][1]]
                # words in any order: callers say "Electral ORS" for "ORS Electral"
                best = process.extractOne(
                    window, choices, scorer=fuzz.token_sort_ratio, score_cutoff=CUTOFF
                )
                if best is not None:
                    found.append(FuzzySpan(run[0][0], run[-1][1], usable[best[2]][0], best[1]))
    found.sort(key=lambda s: (-s.score, -(s.end - s.start)))
    out: list[FuzzySpan] = []
    for s in found:
        if not any(o.start < s.end and s.start < o.end for o in out):
            out.append(s)
    return sorted(out, key=lambda s: s.start)
