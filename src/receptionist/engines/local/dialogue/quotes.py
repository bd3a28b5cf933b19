"""What an order comes to, in the grounded brain, through the call's `quote` tool (the same one
Gemini Live calls): "how much for two brownies and a milk bread?" -> "2 Chocolate brownies at 80
each and 1 Milk bread, 50 rupees: 210 rupees in all."

The total is the tool's, never added up here: this module only finds the items (with the
knowledge's own `find_mentions`, as the brain does), passes them to `quote` and reads its answer
back. It takes a turn only when a total is asked for: several items, or one with a quantity, or
"what's the total?" once the caller has given an order's items. A single price ("how much is a
haircut?") stays with the grounded brain, which reads it from the files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from receptionist.engines.base import ToolRunner
from receptionist.language.cues import asks_total
from receptionist.language.text import normalise, wordset

from ..intents import join_or
from ..knowledge import Knowledge, Mention, OrderLine

# where the caller lists what a price is asked for: after "how much for", before "kitne ka"
_LIST_AFTER = re.compile(r"\b(?:how much|price|cost|total|rate)\s+(?:for|of)\s+(.+)$", re.I)
_LIST_BEFORE = re.compile(r"^(.+?)\s+(?:kitna|kitne|kul|total)\b", re.I)
_SEPARATOR = re.compile(r",|&|\band\b|\baur\b|\bplus\b|\bwith\b", re.I)
_NOT_AN_ITEM = wordset(
    "a an the one two three four five six seven eight nine ten half dozen kg kgs kilo kilos "
    "gram grams g piece pieces pack packs box boxes of some please each ek do teen char paanch "
    "it that this them these those all everything total order"
)


def _said_item(chunk: str) -> str:
    """What is left of a listed chunk once counts and small words are gone: an item's name."""
    words = [w for w in re.findall(r"[a-z][a-z'-]*", normalise(chunk)) if w not in _NOT_AN_ITEM]
    return " ".join(words)


def _unlisted(text: str, mentions: list[Mention]) -> list[str]:
    """Items the caller listed that the price list does not have ("... and a pizza")."""
    m = _LIST_AFTER.search(text) or _LIST_BEFORE.search(text)
    if m is None:
        return []
    out = []
    for chunk in _SEPARATOR.split(m.group(1)):
        low = normalise(chunk)
        if any(normalise(x.said) in low for x in mentions):
            continue
        name = _said_item(chunk)
        if name and len(name) <= 40:
            out.append(name)
    return out


def _args(line: OrderLine) -> dict[str, Any]:
    args: dict[str, Any] = {"item": line.item.display, "section": line.item.section}
    if line.kg is not None:
        args["kg"] = str(line.kg)
    elif line.packs is not None:
        args["packs"] = line.packs
    elif line.count is not None:
        args["count"] = line.count
    if line.extras:
        args["options"] = [e.keyword for e in line.extras]
    return args


def _said_line(line: dict[str, Any]) -> str:
    if line.get("each"):
        return f"{line['line']} at {line['each']} each"
    return f"{line['line']} at {line['rupees']}"


def _join_and(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


@dataclass
class QuoteTalk:
    """One call's totals (owned by its GroundedBrain)."""

    tools: ToolRunner
    kb: Knowledge

    def handles(self) -> bool:
        return any(s.name == "quote" for s in self.tools.specs)

    async def turn(self, text: str, order: list[OrderLine]) -> str | None:
        """The reply, or None: no total asked for (the grounded brain answers)."""
        if not asks_total(text):
            return None
        mentions = self.kb.find_mentions(text)
        if not mentions:
            if not order:
                return None
            return await self._quote(list(order), [])
        quantified = any(m.kg or m.packs or (m.count or 0) > 1 for m in mentions)
        if len(mentions) < 2 and not quantified:
            return None  # one price: the brain reads it from the files
        for m in mentions:
            if m.ambiguous:
                names = join_or([f"{i.display} ({i.section})" for i in m.items[:4]])
                return f"Which {m.said} do you mean: {names}?"
        options = self.kb.options_said(text)  # "two eggless ...": the surcharge is the tool's
        lines = [
            OrderLine(
                m.items[0],
                count=m.count,
                kg=m.kg,
                packs=m.packs,
                extras=self.kb.extras_for(m.items[0], options),
            )
            for m in mentions
        ]
        if all(line.needs_weight() for line in lines):
            return None  # nothing to add up yet: the brain reads the prices per kg
        return await self._quote(lines, _unlisted(text, mentions))

    async def _quote(self, lines: list[OrderLine], unlisted: list[str]) -> str:
        said: list[str] = []
        if unlisted:
            said.append(f"Sorry, we don't have {join_or(unlisted)} on our price list.")
        by_weight = [line.item for line in lines if line.needs_weight()]
        if len(by_weight) == 1:
            it = by_weight[0]
            said.append(f"{it.display} is sold by weight, {it.describe_price()}: how many kg?")
        elif by_weight:
            prices = "; ".join(f"{it.display}, {it.describe_price()}" for it in by_weight)
            names = _join_and([it.display for it in by_weight])
            said.append(f"{names} are sold by weight ({prices}): how many kg of each?")
        priced = [line for line in lines if not line.needs_weight()]
        if priced:
            said.append(await self._total(priced))
        return " ".join(said)

    async def _total(self, lines: list[OrderLine]) -> str:
        got = await self.tools.run("quote", {"items": [_args(line) for line in lines]})
        if "error" in got:
            if got.get("reason") == "invalid_args":
                why = str(got["error"]).removeprefix("I could not use that: ").rstrip(".")
                return f"Sorry, I can't work that total out: {why}."
            # a slow or failing tool: its message is meant for a model, not for the caller
            return (
                "Sorry, I can't work out the total right now. "
                "The owner will confirm the price with you."
            )
        parts = [_said_line(x) for x in got.get("lines") or [] if isinstance(x, dict)]
        total = f"{got.get('total_rupees')} rupees"
        lead = f"{_join_and(parts)}: {total}" if parts else f"That comes to {total}"
        extra = " in all" if len(parts) > 1 else ""
        note = (
            " Some of these are starting prices, so it may come to more." if got.get("note") else ""
        )
        return f"{lead}{extra}.{note}"
