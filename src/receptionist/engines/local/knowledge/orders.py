"""Orders: items named in what the caller said (with counts and weights), priced lines, totals."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal

from receptionist.language.numbers import parse_count
from receptionist.language.quantities import extract_quantities

from .catalog import Extra, MenuItem
from .tokens import tokens

_COUNT_WORD = r"(\d+|a dozen|dozen|an|a|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|couple|a couple)"  # noqa: E501
_PACK_WORDS = r"(?:boxes|box|packs|pack|packets|packet)"
# what one of an item is sold as ("two strips of Dolo": a strip is the priced unit): a count
_UNIT_WORDS = (
    r"(?:pieces?|pcs|nos|numbers?|slices?|strips?|bottles?|tubes?|jars?|sachets?|tins?|cans?)"
)
_COUNT_BEFORE = re.compile(
    rf"\b{_COUNT_WORD}\s+(?:({_PACK_WORDS})\s+(?:of\s+)?)?(?:{_UNIT_WORDS}\s+(?:of\s+)?)?$"
)
# a romanised Hindi count before a pack or unit word ("do packet Electral"): "do" is two only
# there (anywhere else it is the English verb)
_HINDI_COUNT_BEFORE = re.compile(
    rf"\b(ek|do|teen|chaar|char|paanch)\s+(?:({_PACK_WORDS})|{_UNIT_WORDS})\s+(?:of\s+)?$"
)
_HINDI_COUNTS = {"ek": 1, "do": 2, "teen": 3, "chaar": 4, "char": 4, "paanch": 5}


@dataclass(frozen=True, slots=True)
class Mention:
    """Where the caller named a catalog item, with any quantity said around it."""

    start: int
    end: int
    said: str
    items: tuple[MenuItem, ...]  # more than one: the caller must choose
    count: int | None = None
    kg: Decimal | None = None
    packs: int | None = None

    @property
    def ambiguous(self) -> bool:
        return len(self.items) > 1


@dataclass(slots=True)
class OrderLine:
    """One line of an order: an item with its count or weight, priced from the files."""

    item: MenuItem
    count: int | None = None
    kg: Decimal | None = None
    packs: int | None = None
    extras: list[Extra] = field(default_factory=list)
    field: str = ""  # the call-type field it was said for ("items", "service", "flavour")

    def needs_weight(self) -> bool:
        return self.item.per_kg and self.kg is None

    def describe(self) -> str:
        """'1 kg Black Forest cake', '6 Chocolate brownies', '2 packs of Pav'."""
        name = self.item.display
        extras = "".join(f" {e.keyword}" for e in self.extras if e.keyword not in name.lower())
        if self.kg is not None:
            if self.kg == Decimal("0.5"):
                qty = "half kg"
            elif self.kg < 1:
                qty = f"{_fmt_qty(self.kg * 1000)} g"
            else:
                qty = f"{_fmt_qty(self.kg)} kg"
            return f"{qty} {name}{extras}"
        if self.packs is not None:
            noun = _plural(name) if self.item.price is not None else name  # "pack of Pav"
            return f"{self.packs} pack{'s' if self.packs != 1 else ''} of {noun}{extras}"
        if self.count is not None and self.count != 1:
            return f"{self.count} {_plural(name)}{extras}"
        return f"{name}{extras}"


def _fmt_qty(value: Decimal) -> str:
    return f"{value.normalize():f}" if value != value.to_integral_value() else str(int(value))


def _plural(name: str) -> str:
    if name.endswith(("s", "x", "ch", "sh")):
        return name
    if name.endswith("y") and name[-2:-1] not in "aeiou":
        return name[:-1] + "ies"
    if name.endswith("f") and not name.endswith("ff"):
        return name[:-1] + "ves"  # loaf -> loaves
    return name + "s"


def _word_pattern(word: str) -> str:
    if word.endswith("y") and len(word) > 3:
        return re.escape(word[:-1]) + r"(?:y|ies|ie|ys)"
    if word.endswith("f") and len(word) > 3:
        return re.escape(word[:-1]) + r"(?:f|fs|ves)"
    if word.isalpha():
        return re.escape(word) + r"(?:s|es)?"
    return re.escape(word)


def _quantity_around(
    low: str, start: int, end: int, prev_end: int, next_start: int
) -> tuple[int | None, Decimal | None, int | None]:
    before = low[max(prev_end, start - 40) : start]
    after = low[end : min(next_start, end + 25)]
    kg: Decimal | None = None
    count: int | None = None
    packs: int | None = None
    # a weight right before ("two kilos of", "half kg", "1 kg") or right after ("... 1 kg")
    for pos, value in reversed(extract_quantities(before)):
        tail = before[pos:]
        if re.fullmatch(
            # "1 kg of the", and what speech-to-text makes of a pause: "one kilo, a"
            r"\s*[\w.]+(?:\s+and\s+a\s+half)?\s*-?\s*\w+\s*,?\s*(?:(?:of|the|a|an)\s+)*",
            tail,
        ):
            kg = Decimal(str(value))
        break
    if kg is None:
        m = re.match(
            r"\s*,?\s*(?:of\s+)?((?:\d+(?:\.\d+)?|half|one|two|three|four|five)\s*"
            r"(?:kg|kgs|kilo|kilos|kilogram|kilograms|g|gm|gms|grams?))\b",
            after,
        )
        if m:
            got = extract_quantities(m.group(1))
            if got:
                kg = Decimal(str(got[0][1]))
    m = _COUNT_BEFORE.search(before)
    hindi = None if m else _HINDI_COUNT_BEFORE.search(before)
    n: int | None = None
    if hindi:
        m, n = hindi, _HINDI_COUNTS[hindi.group(1)]
    elif m:
        n = parse_count(m.group(1))
    if m:
        if m.group(2):
            packs = n
        elif kg is None:
            count = n
    return count, kg, packs


def _prefer(
    cands: tuple[MenuItem, ...], kg: Decimal | None, count: int | None, text: str
) -> tuple[MenuItem, ...]:
    """Narrow same-named items: a weight means the per-kg one; 'gents'/'ladies' picks a section."""
    if len(cands) <= 1:
        return cands
    if kg is not None:
        by_kg = tuple(c for c in cands if c.unit_kg is not None)
        if by_kg:
            cands = by_kg
    said = set(tokens(text))
    shared = frozenset.intersection(*[x.context for x in cands])
    distinct = [c for c in cands if (c.context - shared) & said]
    if len(distinct) == 1:
        return (distinct[0],)
    products = tuple(c for c in cands if c.kind == "product")
    if products and len(products) < len(cands):
        cands = products
    return cands
