"""Answers to the caller's questions, built only from the tenant's files."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from receptionist.engines.local.dialogue.core import ANSWER_COVERAGE, FOLLOW_UP_COVERAGE
from receptionist.engines.local.dialogue.intent import IntentReading
from receptionist.engines.local.dialogue.patterns import (
    TOTAL_Q,
)
from receptionist.engines.local.dialogue.policy import (
    clear_winner,
    side_questions,
)
from receptionist.engines.local.dialogue.speaking import (
    join_and,
)
from receptionist.engines.local.knowledge import (
    Fact,
    OrderLine,
    format_rupees,
    tokens,
)


class Answering(IntentReading):
    """Answers to the caller's questions, built only from the tenant's files."""

    def _search_text(self, text: str) -> str:
        """The question as searched: the business's own name dropped, today/tomorrow as weekdays."""
        q = re.sub(r"\btoday\b|\btonight\b", f" {self.today:%A} ", text, flags=re.I)
        tomorrow = date.fromordinal(self.today.toordinal() + 1)
        q = re.sub(r"\btomorrow\b", f" {tomorrow:%A} ", q, flags=re.I)
        # "your saloon": the business's own name says nothing, unless the files use the word
        words = [
            w
            for w in q.split()
            if not (
                set(tokens(w)) and set(tokens(w)) <= self._name_words and not self.kb.knows_word(w)
            )
        ]
        return " ".join(words)

    def _answer(self, text: str) -> tuple[str, list[Fact]] | None:
        """A reply built only from the files, or None when they do not answer ``text``."""
        st = self.state
        if TOTAL_Q.search(text) and st.order:
            total = self._total_text()
            if total:
                lines = join_and([line.describe() for line in st.order])
                return f"For {lines}, that's {re.sub(r'^(?:total|price) ', '', total)}.", []
        q = self._search_text(text)
        mentions = self.kb.find_mentions(q)
        topic = self._topic
        if mentions:  # what the next question may be about without naming it ("and the advance?")
            self._topic = {t for m in mentions for it in m.items for t in tokens(it.display)}
        rest = set(tokens(q)) - {t for m in mentions for t in tokens(m.said)} - {"price"}
        for m in mentions:
            rest -= {t for it in m.items for t in tokens(it.display)}
        if mentions and (not rest or any(m.kg or (m.count or 0) > 1 for m in mentions)):
            return self._catalog_answer(mentions, q)
        found = self.kb.search(q, k=3)
        hits = [h for h in found if h.coverage >= ANSWER_COVERAGE]
        if not hits and clear_winner([(h.score, h.coverage) for h in found]):
            hits = found[:1]  # "till what time are you open on Sunday?": one fact stands out
        if not hits and not mentions and topic:
            # a follow-up ("and how much advance do I pay?" after "bridal makeup?"): a fact about
            # the thing just asked about that answers most of it
            about = [h for h in self.kb.search(q, k=5) if topic & set(tokens(h.fact.spoken))]
            hits = [h for h in about if h.coverage >= FOLLOW_UP_COVERAGE][:1]
        if hits:
            top = hits[0]
            chosen = [top] + [
                h for h in hits[1:2] if h.score >= 0.8 * top.score and h.coverage >= top.coverage
            ]
            facts = [h.fact for h in chosen]
            return " ".join(f.spoken for f in facts), facts
        if mentions:
            return self._catalog_answer(mentions, q)
        return None

    def _side_answers(self, text: str) -> list[tuple[str, list[Fact]]]:
        """Answers to the questions asked beside a request, one per question sentence that
        asks for nothing itself; before anything is asked back."""
        out = []
        for sentence in side_questions(text):
            answer = self._answer(sentence)
            if answer is not None and answer[0]:
                out.append(answer)
        return out

    def _catalog_answer(self, mentions: list[Any], text: str = "") -> tuple[str, list[Fact]]:
        said: list[str] = []
        facts: list[Fact] = []
        options = self.kb.options_said(text)  # "an eggless one": its surcharge is in the price
        for m in mentions:
            if len(m.items) == 1 and (m.kg or (m.count or 0) > 1 or m.packs):
                extras = self.kb.extras_for(m.items[0], options)
                line = OrderLine(m.items[0], count=m.count, kg=m.kg, packs=m.packs, extras=extras)
                amount = self.kb.quote([line]).lines[0].rupees  # the `quote` tool's figure
                if amount is not None:
                    word = "from " if line.item.onwards else ""
                    said.append(f"{line.describe()} comes to {word}{format_rupees(amount)}.")
                    if line.item.fact is not None:
                        facts.append(line.item.fact)
                    continue
            shared = len(m.items) > 1 and len({id(it.fact) for it in m.items}) == 1
            for it in m.items[:3]:
                if it.fact is None:
                    continue
                crowded = sum(1 for x in self.kb.items if x.fact is it.fact) > 1
                if crowded and not shared:  # "Hair spa: ...; keratin treatment: ...": just this one
                    said.append(f"{it.display[:1].upper()}{it.display[1:]}: {it.describe_price()}.")
                elif it.fact not in facts:
                    said.append(it.fact.spoken)
                if it.fact not in facts:
                    facts.append(it.fact)
        return " ".join(dict.fromkeys(said)), facts
