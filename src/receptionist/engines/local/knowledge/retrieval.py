"""Retrieval: which facts answer a question (BM25 over the facts' tokens, with context)."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from receptionist.language.dates import WEEKDAY_NAMES

from .facts import Fact, _short_heading
from .tokens import tokens

_DAY_RANGE = re.compile(
    r"\b(monday|tuesday|wednesday|thursday|friday|saturday|sunday)\s+(?:to|-|–|till|until)\s+"
    r"(monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b",
    re.I,
)
_EVERY_DAY = re.compile(r"\b(?:every\s*day|daily|all\s+days|7\s+days|open\s+all\s+week)\b", re.I)


_CONTEXT_BONUS = 0.5  # share of a word's idf earned by a fact whose heading/file has it


def _fact_tokens(fact: Fact) -> tuple[Counter[str], frozenset[str]]:
    """Terms of a fact (its words, its label twice) and the words of its heading and file.

    A table row and a line under a named heading ("Dr. Anil Sharma") are *about* their heading,
    so there the heading words count as the fact's own words.
    """
    weights: Counter[str] = Counter(_content_tokens(fact))
    heading = tokens(_short_heading(fact.section))
    context = set(tokens(re.sub(r"\.\w+$", "", fact.source).replace("_", " ")))
    for head, _ in fact.cells[1:]:
        context |= set(tokens(head))
    if fact.cells or fact.topic:
        for t in dict.fromkeys(heading):
            weights[t] += 1
    else:
        context |= set(heading)
    return weights, frozenset(context - set(weights))


def _content_tokens(fact: Fact) -> list[str]:
    # a table row is its name and values; the column titles are context, like a heading
    body = " ".join(v for _, v in fact.cells) if fact.cells else fact.english
    toks = tokens(body)
    label = re.match(r"^([^:,(]{2,40}):", body)
    if label and not fact.cells:  # "Eggless: every flavour ..." is *about* eggless: count twice
        toks += tokens(label.group(1))
    if "₹" in fact.text or re.search(r"\brupees?\b", body, re.I):
        toks.append("price")
    days = {t for t in toks if t in WEEKDAY_NAMES}
    for m in _DAY_RANGE.finditer(body):
        a, b = WEEKDAY_NAMES.index(m.group(1).lower()), WEEKDAY_NAMES.index(m.group(2).lower())
        span = range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)]
        toks += [WEEKDAY_NAMES[i] for i in span if WEEKDAY_NAMES[i] not in days]
        days |= {WEEKDAY_NAMES[i] for i in span}
    if _EVERY_DAY.search(body):
        toks += [d for d in WEEKDAY_NAMES if d not in days]
        days = set(WEEKDAY_NAMES)
    if days and "hours" in toks:
        toks.append("schedule")  # weekdays and clock times: the heart of a "timings" question
    return toks


@dataclass(frozen=True, slots=True)
class Hit:
    fact: Fact
    score: float  # BM25
    coverage: float  # share of the question's (idf-weighted) words this fact contains, 0..1


class _BM25:
    """Okapi BM25 over facts, plus a small bonus for words found only in the heading.

    k1=0.8 saturates quickly (a line listing five clock times is no more about timings than one
    with two); the heading bonus lets "Shop hours: Sunday 8 am to 9 pm" beat a delivery-slot line
    for "when do you open".
    """

    def __init__(
        self,
        docs: Sequence[tuple[Counter[str], frozenset[str]]],
        k1: float = 0.8,
        b: float = 0.6,
    ) -> None:
        self.k1, self.b = k1, b
        self.tfs = [d[0] for d in docs]
        self.contexts = [d[1] for d in docs]
        self.lens = [sum(tf.values()) for tf in self.tfs]
        self.avg = (sum(self.lens) / len(self.lens)) if self.lens else 1.0
        df: Counter[str] = Counter()
        for tf, ctx in docs:
            df.update(set(tf) | ctx)
        n = len(docs)
        self.idf = {t: math.log(1 + (n - c + 0.5) / (c + 0.5)) for t, c in df.items()}
        self.unknown_idf = math.log(1 + (n - 1 + 0.5) / 1.5) if n else 1.0

    def weight(self, term: str) -> float:
        return self.idf.get(term, self.unknown_idf)

    def scores(
        self, query: Sequence[str], optional: frozenset[str] = frozenset()
    ) -> list[tuple[float, float]]:
        """(score, coverage) per fact; ``optional`` terms add to the score, not to coverage."""
        q = list(dict.fromkeys(query))
        total = sum(self.weight(t) for t in q if t not in optional) or 1.0
        out: list[tuple[float, float]] = []
        for tf, ctx, length in zip(self.tfs, self.contexts, self.lens, strict=True):
            score = matched = 0.0
            norm = self.k1 * (1 - self.b + self.b * length / self.avg)
            for t in q:
                f = tf.get(t, 0)
                if f:
                    idf = self.idf[t]
                    score += idf * f * (self.k1 + 1) / (f + norm)
                    matched += 0.0 if t in optional else idf
                elif t in ctx:
                    score += _CONTEXT_BONUS * self.idf[t]
                    matched += 0.0 if t in optional else self.idf[t]
            out.append((score, matched / total))
        return out
