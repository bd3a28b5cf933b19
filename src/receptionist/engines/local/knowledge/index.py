"""One tenant's files, indexed: facts to search, the catalog, and the mentions of its items."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from decimal import Decimal
from functools import lru_cache

from receptionist.engines.local.dialogue.fuzzy import fuzzy_spans, spoken_variants
from receptionist.language.text import (
    normalise,
)

from .catalog import Extra, MenuItem, _parse_catalog, extras_for, options_said
from .facts import _parse_facts
from .orders import (
    Mention,
    OrderLine,
    _prefer,
    _quantity_around,
    _word_pattern,
)
from .quote import Quote, quote_lines
from .retrieval import _BM25, Hit, _fact_tokens
from .tokens import tokens


class Knowledge:
    """Facts, search and price list of one tenant's input files (build with knowledge_for)."""

    def __init__(self, input_files: tuple[tuple[str, str], ...]) -> None:
        self.facts, self.glossary = _parse_facts(input_files)
        self._index = _BM25([_fact_tokens(f) for f in self.facts])
        self.items, self.extras = _parse_catalog(self.facts)
        self.half_kg_surcharge: dict[str, Decimal] = {}
        for fact in self.facts:
            m = re.search(r"half\s*kg\s*=\s*half\s+the\s+price\s*\+\s*₹\s*(\d+)", fact.text, re.I)
            if m:
                self.half_kg_surcharge[fact.section] = Decimal(m.group(1))
        self._patterns = self._alias_patterns()
        self._brands = self._brand_names()

    # ----------------------------------------------------------------- retrieval

    def search(self, question: str, k: int = 3) -> list[Hit]:
        """Facts best matching ``question``, best first (only facts sharing a word with it)."""
        query = tokens(question)
        if not query:
            return []
        if "hours" in query:
            query.append("schedule")  # prefer a weekly timetable, but do not require one
        scored = self._index.scores(query, optional=frozenset({"schedule"}))
        order = sorted(range(len(scored)), key=lambda i: (-scored[i][0], i))
        return [
            Hit(self.facts[i], scored[i][0], scored[i][1]) for i in order[:k] if scored[i][0] > 0
        ]

    def knows_word(self, word: str) -> bool:
        return all(t in self._index.idf for t in tokens(word))

    # ----------------------------------------------------------------- catalog

    def products(self) -> list[MenuItem]:
        return [it for it in self.items if it.kind == "product"]

    def _alias_patterns(self) -> list[tuple[re.Pattern[str], str, tuple[MenuItem, ...]]]:
        by_alias: dict[str, list[MenuItem]] = {}
        for it in self.items:
            for a in it.aliases:
                by_alias.setdefault(a, []).append(it)
        pats = []
        for alias, its in sorted(by_alias.items(), key=lambda kv: -len(kv[0])):
            words = [_word_pattern(w) for w in alias.split()]
            pat = re.compile(r"(?<![a-z0-9])" + r"\s+(?:of\s+)?".join(words) + r"(?![a-z0-9])")
            pats.append((pat, alias, tuple(its)))
        return pats

    def _brand_names(self) -> list[tuple[str, str, tuple[MenuItem, ...]]]:
        """A long product name's own first word, when no other item shares it: callers say
        "Volini" for "Volini pain relief spray 60 g". Heard through the fuzzy matcher."""
        firsts: dict[str, list[MenuItem]] = {}
        for it in self.items:
            words = normalise(it.display).split()
            if len(words) >= 3 and len(words[0]) >= 5 and words[0].isalpha():
                firsts.setdefault(words[0], []).append(it)
        shared = Counter(w for it in self.items for w in set(normalise(it.display).split()))
        return [
            (word, normalise(its[0].display), tuple(its))
            for word, its in firsts.items()
            if len(its) == 1 and shared[word] == 1
        ]

    def _fuzzy_mentions(
        self, low: str, allowed: set[int] | None, taken: list[tuple[int, int]]
    ) -> list[tuple[int, int, str, tuple[MenuItem, ...]]]:
        """Names heard slightly differently, or with the model number in words (dialogue.fuzzy),
        in what the exact names left."""
        names = [
            (spoken, alias, its)
            for _, alias, its in self._patterns
            for spoken in (alias, *spoken_variants(alias))
        ] + self._brands
        out = []
        for span in fuzzy_spans(low, [n for n, _, _ in names], taken):
            _, alias, its = names[span.alias]
            cands = tuple(x for x in its if allowed is None or id(x) in allowed)
            if cands:
                out.append((span.start, span.end, alias, cands))
        return out

    def find_mentions(self, text: str, pool: Sequence[MenuItem] | None = None) -> list[Mention]:
        """Catalog items named in ``text`` (longest names first), with counts and weights."""
        low = normalise(text)
        allowed = None if pool is None else {id(x) for x in pool}
        spans: list[tuple[int, int, str, tuple[MenuItem, ...]]] = []
        for pat, alias, its in self._patterns:
            cands = tuple(x for x in its if allowed is None or id(x) in allowed)
            if not cands:
                continue
            for m in pat.finditer(low):
                if any(s < m.end() and m.start() < e for s, e, _, _ in spans):
                    continue
                spans.append((m.start(), m.end(), alias, cands))
        spans += self._fuzzy_mentions(low, allowed, [(s, e) for s, e, _, _ in spans])
        spans.sort()
        # "two kilo eggless chocolate truffle": a priced option between the quantity and the
        # item is read past (blanked to spaces, so the positions stay the same)
        bare = low
        for e in self.extras:
            bare = re.sub(
                rf"(?<![a-z]){re.escape(e.keyword)}(?![a-z])", lambda m: " " * len(m[0]), bare
            )
        out: list[Mention] = []
        for i, (start, end, alias, cands) in enumerate(spans):
            prev_end = spans[i - 1][1] if i else 0
            nxt_start = spans[i + 1][0] if i + 1 < len(spans) else len(low)
            count, kg, packs = _quantity_around(bare, start, end, prev_end, nxt_start)
            cands = _prefer(cands, kg, count, low)
            out.append(Mention(start, end, alias, cands, count, kg, packs))
        return out

    def quote(self, lines: Sequence[OrderLine]) -> Quote:
        """What ``lines`` come to: the one computation of a price or total (.quote)."""
        return quote_lines(lines, self.half_kg_surcharge)

    def extras_for(self, item: MenuItem, options: Iterable[str]) -> list[Extra]:
        """The surcharges the files state for ``options`` on ``item`` (.catalog.extras_for)."""
        return extras_for(item, options, self.extras, self.items)

    def options_said(self, text: str) -> list[str]:
        """The priced options the caller asks for in ``text`` ("eggless"; not "no eggless")."""
        return options_said(text, self.extras)


@lru_cache(maxsize=64)
def knowledge_for(input_files: tuple[tuple[str, str], ...]) -> Knowledge:
    """The Knowledge of a set of input files, built once and shared by every call."""
    return Knowledge(input_files)
