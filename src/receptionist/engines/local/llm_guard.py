"""The llm brain's guard: a model's draft may say only numbers, days and words that the
tenant's files, the grounded draft or the caller gave (see :mod:`.llm_brain`)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from receptionist.language.text import wordset

from .grounded import CALLER_NUMBER_TEXT
from .sentences import split_sentences

_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_GROUPED = re.compile(r"\d{1,3}(?:,\d{3})+|\d{1,2}(?:,\d{2})*,\d{3}")  # 1,200 / 1,00,000
_MERIDIEM = re.compile(r"(?<=\d)\s*([ap])\.?\s?m\b\.?", re.I)
_DAYS = wordset(
    "monday tuesday wednesday thursday friday saturday sunday january february march april "
    "june july august september october november december"
)  # "may" is a verb far more often than a month
_NUMBER_WORDS = wordset(
    "zero two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety "
    "hundred thousand lakh lakhs crore crores dozen"
)  # not "one": "which one", "no one"
_WORD = re.compile(r"[a-z]+")
_KEEP_STOP = wordset("the and for with any from per not but you your our this that are was")
_META = re.compile(
    r"\b(?:draft|rewrit\w*|reword\w*|rephras\w*|paraphras\w*|as an ai|language model)\b", re.I
)
# the prompt's own labels (build_messages): a small model sometimes goes on writing the prompt
_PROMPT_ECHO = re.compile(
    r"\b(?:caller just said|call type:|details collected|still missing:|order total:|"
    r"facts from the business|recent conversation|receptionist:|caller:)",
    re.I,
)
NOT_ENGLISH = re.compile(r"[^\x00-\x7f‘’“”–—…₹]")
MARKUP = re.compile(r"[*#_`\"“”]")
LABEL = re.compile(
    r"^\s*(?:(?:receptionist|assistant|reply|response|answer|agent|rewritten|spoken)"
    r"(?: reply| text)?|[A-Z][a-z]{1,15})\s*:\s+",
    re.I,
)


def _norm_number(raw: str) -> list[str]:
    """ "1,200" -> ["1200"], "9:00" -> ["9"], "2.50" -> ["2.5"], "10,20" -> ["10", "20"]."""
    if _GROUPED.fullmatch(raw):
        return [raw.replace(",", "")]
    out: list[str] = []
    for part in raw.split(","):
        if ":" in part:
            hours, _, minutes = part.partition(":")
            out.append(hours if minutes.strip("0") == "" else f"{hours}:{minutes}")
        elif "." in part:
            try:
                out.append(format(Decimal(part).normalize(), "f"))
            except InvalidOperation:
                out.append(part)
        elif part:
            out.append(part)
    return out


def fact_tokens(text: str) -> set[str]:
    """The checkable facts of ``text``: numbers ("n:750"), day and month names ("d:thursday"),
    am/pm after a number ("m:pm") and numbers in words ("w:seven")."""
    out: set[str] = set()
    for m in _NUMBER.finditer(text):
        out.update(f"n:{n}" for n in _norm_number(m.group()))
    for m in _MERIDIEM.finditer(text):
        out.add(f"m:{m.group(1).lower()}m")
    for w in _WORD.findall(text.lower()):
        if w in _DAYS:
            out.add(f"d:{w}")
        elif w in _NUMBER_WORDS:
            out.add(f"w:{w}")
    return out


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def keep_words(draft: str, details: dict[str, Any]) -> set[str]:
    """Words of the collected details (names, items, services, choices) that ``draft`` says.

    Only short values count (a name, "1 kg Black Forest cake", "pickup"): free text such as a
    complaint may be put in other words.
    """
    said = _words(draft)
    out: set[str] = set()
    for value in details.values():
        values = value if isinstance(value, list) else [value]
        limit = 6 if isinstance(value, list) else 4
        for v in values:
            if not isinstance(v, str) or v == CALLER_NUMBER_TEXT or len(v.split()) > limit:
                continue
            out.update(w for w in _WORD.findall(v.lower()) if len(w) >= 3 and w not in _KEEP_STOP)
    return {w for w in out if w in said}


def asked_words(draft: str, pending_fields: Iterable[str]) -> set[str]:
    """Words of the details being asked for ("pickup_or_delivery", "name") that ``draft`` says:
    a reply that drops one has dropped a question."""
    said = _words(draft)
    words = {w for f in pending_fields for w in _WORD.findall(f.lower())}
    return {w for w in words if len(w) >= 3 and w not in _KEEP_STOP and w in said}


def _draft_tokens(text: str) -> set[str]:
    """What a draft sentence says, in the guard's token kinds (facts, detail and field words)."""
    words = _words(text)
    return fact_tokens(text) | {f"k:{w}" for w in words} | {f"q:{w}" for w in words}


@dataclass(slots=True)
class Guard:
    """Checks a model's wording of one draft, piece by piece (see the module docstring).

    Required tokens: the draft's facts (see :func:`fact_tokens`), "k:word" for the words of the
    collected details it says and "q:word" for the words of the details it asks for. Facts and
    details must all have been said before the model may ask its question (a question is the
    end of a turn); everything must have been said by the end, else :meth:`tail` adds the draft
    sentences that say what is missing.
    """

    draft: str
    required: set[str]
    allowed: set[str]  # fact tokens the reply may use
    asks: bool  # the draft asks a question
    max_chars: int
    max_pieces: int
    released: list[str] = field(default_factory=list)

    @classmethod
    def for_draft(
        cls,
        draft: str,
        *,
        context: Iterable[str] = (),
        details: dict[str, Any] | None = None,
        pending_fields: Iterable[str] = (),
    ) -> Guard:
        """``context``: other true texts whose numbers the reply may repeat (facts, state)."""
        allowed = fact_tokens(draft)
        for text in context:
            allowed |= fact_tokens(text)
        required = {t for t in fact_tokens(draft) if t[0] in "ndm"}
        required |= {f"k:{w}" for w in keep_words(draft, details or {})}
        required |= {f"q:{w}" for w in asked_words(draft, pending_fields)}
        pieces = split_sentences(draft)
        return cls(
            draft=draft,
            required=required,
            allowed=allowed,
            asks="?" in draft,
            max_chars=max(160, int(len(draft) * 1.6) + 40),
            max_pieces=max(3, len(pieces) + 1),
        )

    def check(self, piece: str) -> str | None:
        """Why ``piece`` (the next piece of the model's reply) may not be said, or None."""
        if (_META.search(piece) and not _META.search(self.draft)) or _PROMPT_ECHO.search(piece):
            return "meta text"
        if NOT_ENGLISH.search(piece):
            return "not English"
        for token in sorted(fact_tokens(piece) - self.allowed):
            kind, value = token.split(":", 1)
            what = {"n": "number", "d": "day", "m": "time", "w": "number in words"}[kind]
            return f"invented {what} {value}"
        if "?" in piece:
            if not self.asks:
                return "asked a question the draft does not"
            unsaid = [t for t in self.missing([*self.released, piece]) if not t.startswith("q:")]
            if unsaid:
                return "asked before saying " + ", ".join(t.split(":", 1)[1] for t in unsaid)
        if len(self.released) >= self.max_pieces:
            return "too long"
        if sum(len(p) + 1 for p in self.released) + len(piece) > self.max_chars:
            return "too long"
        return None

    def accept(self, piece: str) -> None:
        self.released.append(piece)

    def missing(self, pieces: Sequence[str] | None = None) -> list[str]:
        """Required tokens that ``pieces`` (default: the released ones) have not said."""
        said = " ".join(self.released if pieces is None else pieces)
        have = fact_tokens(said)
        words = _words(said)
        squashed = _squash(said)
        out = []
        for token in sorted(self.required):
            if token[0] in "kq":
                word = token[2:]
                if word not in words and word not in squashed:
                    out.append(token)
            elif token not in have:
                out.append(token)
        return out

    def tail(self) -> tuple[list[str], str]:
        """Draft sentences still to say after the released pieces, and why ("" if none): those
        that say something still missing, and the draft's questions if none was asked."""
        sentences = split_sentences(self.draft, max_chars=100_000)
        if not self.released:
            return sentences, ""
        missing = set(self.missing())
        picked = {i for i, s in enumerate(sentences) if _draft_tokens(s) & missing}
        reasons = []
        if missing:
            reasons.append("dropped " + ", ".join(t.split(":", 1)[1] for t in sorted(missing)))
        if self.asks and not any("?" in p for p in self.released):
            picked |= {i for i, s in enumerate(sentences) if "?" in s}
            reasons.append("dropped the question")
        return [sentences[i] for i in sorted(picked)], "; ".join(reasons)
