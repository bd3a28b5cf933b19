"""The catalog: items and services with prices, read from the files' tables and lists."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal

from receptionist.language.text import (
    normalise,
    singular,
    singular_words,
    stem,
    wordset,
)

from .facts import Fact, _head_noun
from .speech import format_rupees
from .tokens import _NUMBER, _TOKEN_RE, tokens


@dataclass(frozen=True, slots=True)
class MenuItem:
    """Something with a price in the files: a cake per kg, a haircut, a lab test, a pack of pav."""

    name: str  # as written, English ("Black Forest", "Haircut + beard trim")
    display: str  # how to say it ("Black Forest cake")
    aliases: tuple[str, ...]  # normalised phrases a caller may use
    price: Decimal | None  # per unit; None when only sold in packs
    unit: str  # "kg", "piece", "250 g", "pack of 6"
    unit_kg: Decimal | None  # weight one priced unit stands for (1 for per-kg cakes)
    per_kg: bool
    pack: tuple[int, Decimal] | None = None  # (pieces, price) e.g. box of 6 for 390
    onwards: bool = False  # "₹700 onwards": a starting price
    kind: str = "product"  # "product" | "charge" (delivery charges, fees, advances)
    source: str = ""
    section: str = ""
    context: frozenset[str] = frozenset()  # tokens of file name, section and column header
    fact: Fact | None = field(default=None, compare=False)

    def describe_price(self) -> str:
        """'750 rupees per kg', '70 rupees each, or 390 rupees for a box of 6'."""
        parts: list[str] = []
        if self.price is not None:
            unit = {"piece": "", "kg": " per kg"}.get(self.unit, f" for {self.unit}")
            if self.unit_kg is not None and not self.per_kg and self.unit != "piece":
                unit = f" for {self.unit}"
            word = "from " if self.onwards else ""
            parts.append(f"{word}{format_rupees(self.price)}{unit}")
        if self.pack is not None:
            n, p = self.pack
            parts.append(f"{format_rupees(p)} for a pack of {n}")
        return ", or ".join(parts)


@dataclass(frozen=True, slots=True)
class Extra:
    """A surcharge the files mention: 'Eggless cakes cost ₹50 extra per kg'."""

    keyword: str  # normalised phrase that triggers it ("eggless", "rica wax")
    amount: Decimal
    per_kg: bool
    source: str
    line: str  # the text of the line it came from (scope: items of that line, else that file)


_PRICE_TOKEN = re.compile(rf"₹\s*({_NUMBER})")
_CHARGE_WORDS = wordset(
    "charge charges delivery minimum advance fee fees discount refund deposit above extra "
    "consultation"
)
_NOT_NAME_WORDS = re.compile(
    r"\b(?:need|needs|cost|costs|is|are|must|should|can|will|start|starts|includes|include)\b",
    re.I,
)
_GENERIC_HEADS = wordset("loaf bread slice cake pastry piece")
# second words that say what kind of thing it is: "thyroid profile" is also just "thyroid"
_KIND_WORDS = _GENERIC_HEADS | wordset("profile routine test treatment package makeup")
# last words too generic to name an item alone ("cake"), and first words too common
_NOT_ALONE = _KIND_WORDS | wordset("trim oil up")
_COMMON_FIRST = wordset("""
    classic fresh whole black white red blue green gold golden full upper lower root global
    plain special regular normal small large big other home head hair child kids kid milk
    blood""")


def _aliases(name: str, noun: str, *, derived: bool = True) -> set[str]:
    """Ways a caller may name an item; ``derived`` adds short forms ("brownie", "thyroid")."""
    base = normalise(re.sub(r"\(.*?\)", "", name))
    out = {base}
    if noun and noun not in base.split():
        out.add(f"{base} {noun}")
    m = re.fullmatch(r"(\w+) or (\w+) (\w+)", base)
    if m:
        out |= {f"{m.group(1)} {m.group(3)}", f"{m.group(2)} {m.group(3)}"}
    elif " or " in base:
        out |= {p.strip() for p in base.split(" or ") if p.strip()}
    words = base.split()
    if not derived:
        return {singular_words(a) for a in out if len(a) > 1}
    if len(words) >= 2 and words[-1] in _KIND_WORDS:
        short = words[:-1]
        if len(short) >= 2 or (len(short[0]) >= 5 and short[0] not in _COMMON_FIRST):
            out.add(" ".join(short))  # "garlic" for "Garlic loaf", "thyroid" for "... profile"
    last = words[-1] if len(words) >= 2 else ""
    if (len(last) >= 4 or re.fullmatch(r"[a-z]+\d+", last)) and singular(last) not in _NOT_ALONE:
        out.add(words[-1])  # "brownie" for "Walnut brownie" (several may share it: a choice)
    if len(words) >= 3 and words[1] not in ("and", "or", "with", "plus", "of", "for", "full"):
        out.add(" ".join(words[:2]))  # "blood sugar" for "Blood sugar fasting + PP"
    if words and words[-1] == "package" and len(words) >= 2:
        out.add(" ".join(words[:-1]))
    full = normalise(name)
    if full != base:
        out.add(full)
    return {singular_words(a) for a in out if len(a) > 1}


def _name_and_unit(raw: str) -> tuple[str, str, Decimal | None, int | None]:
    """'Butter cookies, 250 g' -> ('Butter cookies', '250 g', 0.25, None);
    'Pav, pack of 6' -> ('Pav', 'pack of 6', None, 6); 'Milk bread (400 g)' -> loaf of 400 g."""
    name = raw.strip(" -:,.")
    pack = re.search(r",?\s*(?:pack|box|packet)\s+of\s+(\d+)\s*$", name, re.I)
    if pack:
        return (
            name[: pack.start()].strip(" ,"),
            f"pack of {pack.group(1)}",
            None,
            int(pack.group(1)),
        )
    weight = re.search(r",?\s*\(?(\d+(?:\.\d+)?)\s*(kg|g|gm|grams?)\)?\s*(?:\(.*\))?$", name, re.I)
    if weight:
        grams = Decimal(weight.group(1)) * (1000 if weight.group(2).lower() == "kg" else 1)
        unit = f"{weight.group(1)} {weight.group(2).lower()}"
        stripped = name[: weight.start()] + re.sub(r"^[^()]*", "", name[weight.end() :])
        return stripped.strip(" ,"), unit, grams / 1000, None
    return name, "piece", None, None


def _strip_parens(text: str) -> tuple[str, list[str]]:
    notes: list[str] = []

    def keep(m: re.Match[str]) -> str:
        notes.append(m.group(1))
        return ""

    return re.sub(r"\s*\(([^()]*)\)", keep, text), notes


def _clean_keyword(text: str) -> str:
    s = normalise(re.sub(r"\(.*?\)", "", text))
    s = re.sub(r"\b(?:costs?|is|are|charge[sd]?|cakes?)\b", " ", s)
    return re.sub(r"\s+", " ", s).strip()


def _parse_extras(fname: str, line: str, label: str) -> list[Extra]:
    out: list[Extra] = []
    for m in re.finditer(rf"₹\s*({_NUMBER})\s+extra(\s+per\s+kg)?", line):
        before = re.sub(r"\([^()]*\)", " ", line[: m.start()])
        chunk = re.split(r"[;.(]|\s--\s", before)[-1]
        keyword = _clean_keyword(chunk.replace("₹", "")) or _clean_keyword(label)
        if not keyword:
            continue
        if len(keyword.split()) > 4:  # "Eggless cakes cost ₹50 extra": the first words
            keyword = " ".join(keyword.split()[:2])
        out.append(
            Extra(keyword, Decimal(m.group(1).replace(",", "")), bool(m.group(2)), fname, line)
        )
    return out


def extras_for(
    item: MenuItem, options: Iterable[str], extras: Sequence[Extra], items: Sequence[MenuItem]
) -> list[Extra]:
    """The surcharges the files state for ``options`` on ``item`` (each option as the caller or
    the model said it: "eggless", "Eggless please"), each keyword once.

    An extra stated on a line of items belongs to those items ("Waxing: full arms ₹400, full
    legs ₹600 (Rica wax ₹200 extra)"); one stated on a line of its own ("Eggless cakes cost ₹50
    extra per kg") to the items sold the same way (per kg, or per piece).
    """
    said = [normalise(o) for o in options if o]
    out: list[Extra] = []
    for e in extras:
        if any(x.keyword == e.keyword for x in out):
            continue
        if not any(re.search(rf"(?<![a-z]){re.escape(e.keyword)}(?![a-z])", o) for o in said):
            continue
        if any(it.fact is not None and e.line == it.fact.english for it in items):
            applies = item.fact is not None and e.line == item.fact.english  # that line's items
        else:
            applies = e.per_kg == item.per_kg  # sold the same way as it is charged
        if applies:
            out.append(e)
    return out


def options_said(text: str, extras: Sequence[Extra]) -> list[str]:
    """The extras' keywords the caller asks for in ``text`` ("eggless"), not those refused
    ("no eggless", "without eggless"), each once, in the files' order."""
    norm = normalise(text)
    out: list[str] = []
    for e in extras:
        said = re.search(rf"(?<![a-z]){re.escape(e.keyword)}(?![a-z])", norm)
        refused = re.search(
            rf"\b(?:no|not|without|don't want)\s+(?:\w+\s+)?{re.escape(e.keyword)}", norm
        )
        if said and not refused and e.keyword not in out:
            out.append(e.keyword)
    return out


def _item_kind(*texts: str) -> str:
    words = {stem(w) for t in texts for w in _TOKEN_RE.findall(t.lower())}
    return "charge" if words & {stem(w) for w in _CHARGE_WORDS} else "product"


def _context(fact: Fact, header: str = "") -> frozenset[str]:
    stem_name = re.sub(r"[.]\w+$", "", fact.source).replace("_", " ")
    return frozenset(tokens(f"{stem_name} {fact.section} {header}"))


def _items_from_row(fact: Fact, noun: str) -> list[MenuItem]:
    name = fact.cells[0][1] if fact.cells else ""
    if not name:
        return []
    name = re.sub(r"\s+" + noun + r"$", "", name, flags=re.I) if noun else name
    for head, value in fact.cells[1:]:
        m = _PRICE_TOKEN.search(value)
        if not m:
            continue
        per_kg = "per kg" in head.lower() or "/kg" in head.lower()
        price = Decimal(m.group(1).replace(",", ""))
        display = f"{name} {noun}" if noun and noun not in name.lower() else name
        display = re.sub(r"\s*\(.*?\)", "", display)
        kind = _item_kind(fact.section, head, fact.cells[0][0])
        return [
            MenuItem(
                name=name,
                display=display,
                aliases=tuple(sorted(_aliases(name, noun, derived=kind == "product"))),
                price=price,
                unit="kg" if per_kg else "piece",
                unit_kg=Decimal(1) if per_kg else None,
                per_kg=per_kg,
                onwards="onward" in value.lower(),
                kind=kind,
                source=fact.source,
                section=fact.section,
                context=_context(fact, fact.cells[0][0] + " " + head),
                fact=fact,
            )
        ]
    return []


@dataclass(frozen=True, slots=True)
class _Priced:
    """What one priced chunk of a line says, before it becomes menu items."""

    items: list[tuple[str, Decimal]]  # (name as written, price)
    onwards: bool  # "₹700 onwards", "from ₹150"
    per_kg: bool  # "₹750 per kg"
    pack: tuple[int, Decimal] | None  # "box of 6 for ₹270"


def _items_from_chunk(fact: Fact, chunk: str, label: str, noun: str) -> list[MenuItem]:
    bare, _notes = _strip_parens(chunk)
    priced = _read_prices(bare, label)
    if priced is None:
        return []
    out: list[MenuItem] = []
    for raw_name, amount in priced.items:
        item = _menu_item(fact, label, raw_name, amount, priced)
        if item is not None:
            out.append(item)
    return out


def _read_prices(bare: str, label: str) -> _Priced | None:
    """The names and prices in one chunk of a line ("Black Forest ₹750 per kg"), or None."""
    prices = list(_PRICE_TOKEN.finditer(bare))
    if not prices:
        return None
    first = prices[0]
    after = bare[first.end() :]
    if re.match(r"\s+extra\b", after):
        return None
    head = bare[: first.start()]
    onwards = bool(re.match(r"\s*(?:per\s+\w+\s*)?(?:onwards?|upwards|and above)", after, re.I))
    if re.search(r"\bfrom\s*$", head, re.I):  # "Dressing: from ₹150"
        head, onwards = re.sub(r"\bfrom\s*$", "", head, flags=re.I), True
    per_kg = bool(re.match(r"\s*(?:per|/)\s*kg", after, re.I))
    items: list[tuple[str, Decimal]] = []
    # "Waxing: full arms ₹400, full legs ₹600" -> sub-items under one label
    if ":" in head and len(prices) > 1 and re.search(r",\s*[A-Za-z][^₹]*₹", bare):
        top, rest = bare.split(":", 1)
        for m in re.finditer(rf"([A-Za-z][A-Za-z '-]*?)\s*₹\s*({_NUMBER})", rest):
            items.append(
                (f"{top.strip()} {m.group(1).strip()}", Decimal(m.group(2).replace(",", "")))
            )
        onwards = False
    else:
        name_part = re.sub(r"\s*(?::|--|–|—|\s-\s|,)\s*$", "", head.strip()).strip()
        if not name_part:
            name_part = label
        names = [n.strip() for n in re.split(r"\s+/\s+", name_part) if n.strip()]
        amounts = [Decimal(m.group(1).replace(",", "")) for m in prices]
        paired = re.match(r"\s*/\s*₹", after) is not None
        if len(names) > 1 and paired and len(amounts) >= len(names):
            items = list(zip(names, amounts[: len(names)], strict=True))
        else:
            items = [(n, amounts[0]) for n in names]
    pack: tuple[int, Decimal] | None = None
    m_pack = re.search(
        rf"(?:box|pack|packet)\s+of\s+(\d+)\s+(?:for|at|@)\s*₹\s*({_NUMBER})", bare, re.I
    )
    if m_pack:
        pack = (int(m_pack.group(1)), Decimal(m_pack.group(2).replace(",", "")))
    return _Priced(items, onwards, per_kg, pack)


def _menu_item(
    fact: Fact, label: str, raw_name: str, amount: Decimal, priced: _Priced
) -> MenuItem | None:
    """One catalog item from a name and its price, or None when the name is no item."""
    name, unit, unit_kg, pack_of = _name_and_unit(raw_name)
    name = name.strip(" -:,")
    if not name or len(name.split()) > 6 or _NOT_NAME_WORDS.search(name):
        return None
    if not re.search(r"[A-Za-z]", name):
        return None
    price: Decimal | None = amount
    item_pack = priced.pack
    if pack_of is not None:
        price, item_pack = None, (pack_of, amount)
    per_kg = priced.per_kg or unit == "kg"
    if per_kg and unit_kg is None:
        unit, unit_kg = "kg", Decimal(1)
    kind = _item_kind(fact.section, name, label)
    return MenuItem(
        name=name,
        display=re.sub(r"\s*\(.*?\)", "", name),
        aliases=tuple(sorted(_aliases(name, "", derived=kind == "product"))),
        price=price,
        unit=unit,
        unit_kg=unit_kg,
        per_kg=per_kg,
        pack=item_pack,
        onwards=priced.onwards,
        kind=kind,
        source=fact.source,
        section=fact.section,
        context=_context(fact),
        fact=fact,
    )


def _parse_catalog(facts: Sequence[Fact]) -> tuple[list[MenuItem], list[Extra]]:
    items: list[MenuItem] = []
    extras: list[Extra] = []
    for fact in facts:
        if "₹" not in fact.text:
            continue
        noun = _head_noun(fact.section)
        line = fact.english
        label = line.split(":", 1)[0] if ":" in line else ""
        extras += _parse_extras(fact.source, line, label)
        if fact.cells:
            items += _items_from_row(fact, noun)
            continue
        if line.lower().startswith(("minimum", "maximum")):
            continue
        for chunk in re.split(r";\s*", line):
            items += _items_from_chunk(fact, chunk, label, noun)
    # an alias said by several items belongs to the one whose full name it is, else to all
    owners: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        for a in it.aliases:
            owners.setdefault(a, []).append(i)
    cleaned: list[MenuItem] = []
    for i, it in enumerate(items):
        keep = []
        for a in it.aliases:
            who = owners[a]
            full = [
                j for j in who if singular_words(normalise(_strip_parens(items[j].name)[0])) == a
            ]
            if len(who) == 1 or i in full or (not full and len(who) <= 3):
                keep.append(a)
        cleaned.append(replace(it, aliases=tuple(keep)))
    return cleaned, extras
