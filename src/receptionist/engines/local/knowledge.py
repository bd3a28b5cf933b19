"""What a tenant's own files say, in a form a rule-based receptionist can use.

The grounded brain may only say what the business wrote down, so everything it knows comes from
here, built once per set of input files (:func:`knowledge_for`):

- **facts**: every bullet, sentence and table row of the input files, with its section heading,
  the text as written and a short English sentence to speak on the phone. Lines written in Hindi
  (Devanagari) are rendered into rough English: the file's own bilingual glosses first
  ("डॉ. अनिल शर्मा (Dr. Anil Sharma)", "लैब टेस्ट / Lab tests"), then a small glossary, then
  transliteration, because the local engine's voice speaks English only.
- **retrieval**: Okapi BM25 over the facts, with light stemming and a synonym table
  (timing/hours/open/close, cost/price/rate/how much ...), weekday ranges expanded ("Monday to
  Saturday" also matches "Wednesday") and a coverage score so the brain can tell "I found it"
  from "nothing here is about that".
- **catalog**: priced items parsed from menus and price lists (per piece, per kg, per 250 g,
  packs of 6, "onwards" prices, paired "A / B: ₹x / ₹y" lists, extras such as "₹50 extra per kg"
  for eggless), item mentions with quantities found in what the caller said, and order totals.

No model and no network: plain dictionaries and regular expressions, so it is fast, testable and
never makes anything up.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

from receptionist.language.dates import WEEKDAY_NAMES
from receptionist.language.hindi import hindi_to_english, learn_glossary
from receptionist.language.numbers import NUMBER_WORDS, parse_count
from receptionist.language.quantities import extract_quantities
from receptionist.language.text import (
    STOPWORDS,
    nfc,
    normalise,
    singular,
    singular_words,
    stem,
    wordset,
)

from .dialogue.fuzzy import fuzzy_spans, spoken_variants

__all__ = [
    "Extra",
    "Fact",
    "Hit",
    "Knowledge",
    "Mention",
    "MenuItem",
    "OrderLine",
    "format_rupees",
    "knowledge_for",
    "line_amount",
    "order_total",
    "speakable",
    "tokens",
]


# --------------------------------------------------------------------------- search tokens

_NUMBER = r"\d+(?:,\d{2,3})*(?:\.\d+)?"  # 1,200 and 1,00,000 but not the comma after "40,"


# word (after stemming) -> canonical token, so questions and files meet on the same word
_SYNONYMS: dict[str, str] = {}


def _syn(canonical: str, words: str) -> None:
    for w in words.split():
        _SYNONYMS[w] = canonical


_syn("hours", "hour time timing open opening close closing closed shut timings sit sits")
_syn("price", "cost price rate charge fee rupee rupees expensive cheap amount pricing costing")
_syn("deliver", "delivery deliver delivering home courier")
_syn("address", "address where located location locate direction situated reach")
_syn("payment", "pay payment paying upi card cash gpay paytm online")
_syn("eggless", "eggless egg-free eggfree")
_syn("park", "park parking")
_syn("appointment", "appointment booking book slot")
_syn("doctor", "doctor dr doc physician")
_syn("child", "kid child children baby son daughter paediatrician pediatrician paediatric")
_syn("ladies", "lady ladies woman women female girl")
_syn("gents", "gent gents man men male gentleman boy")
_syn("colour", "colour color")
_syn("report", "report result")
_syn("medicine", "medicine medical pharmacy chemist tablet dawai dawa")
_syn("discount", "discount concession")
_syn("monday", "monday mon")
_syn("tuesday", "tuesday tue tues")
_syn("wednesday", "wednesday wed")
_syn("thursday", "thursday thu thur thurs")
_syn("friday", "friday fri")
_syn("saturday", "saturday sat")
_syn("sunday", "sunday sun")
_syn("festival", "festival holiday diwali deepavali pongal")

_TOKEN_RE = re.compile(r"[a-z0-9]+")
_CLOCK_TIME = re.compile(r"\b\d{1,2}(?::\d{2})?\s*(?:am|pm|a\.m\.|p\.m\.|o'clock)(?![a-z])")


def _prep(text: str) -> str:
    low = nfc(text).lower().replace("₹", " rupees ").replace("’", "'")
    low = re.sub(r"'s\b|'re\b|'ll\b|'d\b|'ve\b|'m\b", "", low)
    low = re.sub(r"how\s+much|how\s+many\s+rupees", " price ", low)
    low = re.sub(r"\b(\d+)\s*(?:hours?|hrs?)\b", r"\1 duration", low)  # "48 hours" is no timing
    low = _CLOCK_TIME.sub(" hours ", low)  # "8:00 am", "10 pm": a clock time is about timings
    low = re.sub(r"\bwhat\s+time\b|\bwhen\s+do\s+you\s+(?:open|close)\b", " hours ", low)
    low = re.sub(r"\b(sugar|gluten|egg)[-\s]+free\b", r"\1 free", low)
    low = re.sub(r"\bweek\s*ends?\b", " saturday sunday ", low)
    low = re.sub(r"\bweek\s*days?\b", " monday tuesday wednesday thursday friday ", low)
    return low


def tokens(text: str, *, keep_stopwords: bool = False) -> list[str]:
    """Search tokens of English text: lower-cased, stemmed, synonyms folded, stopwords dropped."""
    out: list[str] = []
    for raw in _TOKEN_RE.findall(_prep(text)):
        if raw in _SYNONYMS:
            out.append(_SYNONYMS[raw])
            continue
        if not keep_stopwords and raw in STOPWORDS:
            continue
        if raw in NUMBER_WORDS:
            out.append(str(NUMBER_WORDS[raw]))
            continue
        w = _SYNONYMS.get(raw) or _SYNONYMS.get(stem(raw)) or stem(raw)
        out.append(w)
    return out


# --------------------------------------------------------------------------- speaking


def format_rupees(amount: Decimal | int | float) -> str:
    """'1500 rupees' (no thousands separators: text-to-speech reads plain numbers well)."""
    value = Decimal(str(amount)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    if value == value.to_integral_value():
        return f"{int(value)} rupees"
    return f"{value} rupees"


_RUPEE = re.compile(rf"(?:₹|\brs\.?|\binr)\s*({_NUMBER})", re.I)


def _rupees_sub(m: re.Match[str]) -> str:
    return format_rupees(Decimal(m.group(1).replace(",", "")))


def speakable(text: str, legends: dict[str, str] | None = None) -> str:
    """One line of a file as a short sentence for text-to-speech (English, no markdown)."""
    s = nfc(text).strip()
    s = re.sub(r"^\s*(?:[-*+•>#]+|\d{1,2}[.)])\s*", "", s)
    s = s.replace("**", "").replace("__", "").replace("`", "")
    if "marked" not in s:
        for mark, meaning in (legends or {}).items():
            s = s.replace(mark, f"({meaning})")
    # "Vitamin D / Vitamin B12: ₹1,200 / ₹900" -> "Vitamin D: ₹1,200; Vitamin B12: ₹900"
    s = re.sub(
        rf"^([^:/]+?)\s+/\s+([^:/]+?):\s*(₹\s*{_NUMBER})\s*/\s*(₹\s*{_NUMBER})",
        r"\1: \3; \2: \4",
        s,
    )
    s = _RUPEE.sub(_rupees_sub, s)
    s = re.sub(
        rf"({_NUMBER})\s*(?:rupees|रुपये)", lambda m: m.group(1).replace(",", "") + " rupees", s
    )
    s = re.sub(r"\s+--\s+|\s+—\s+|\s+–\s+", ", ", s)
    s = re.sub(r"(\d)\s*-\s*(\d)(?!\d*\s*(?:am|pm))", r"\1 to \2", s)
    s = re.sub(r"\s*\+\s*(?=\d)", " plus ", s)
    s = re.sub(r"\s*[+&]\s*", " and ", s)
    s = re.sub(r"\be\.g\.", "for example", s, flags=re.I)
    s = re.sub(r"\b(\d+)\s*min\b", r"\1 minutes", s)
    s = re.sub(r"\bDr\.\s*", "Doctor ", s)
    s = s.replace("|", ",").replace(" / ", " or ").replace("\u200d", "")
    s = re.sub(r"\s+", " ", s).strip(" ,;")
    s = re.sub(r"\s+([,.;:])", r"\1", s)
    if s and s[-1] not in ".?!":
        s += "."
    return s[:1].upper() + s[1:]


# --------------------------------------------------------------------------- facts


@dataclass(frozen=True, slots=True)
class Fact:
    """One retrievable piece of a tenant file: a bullet, a sentence or a table row."""

    source: str  # file name, e.g. "menu.md"
    section: str  # nearest heading, in English where the file gives it
    text: str  # the line as written (markdown bullet removed)
    english: str  # the line in English (same as text for English files)
    spoken: str  # what to say on the phone
    cells: tuple[tuple[str, str], ...] = ()  # table rows: (column header, value), English
    topic: str = ""  # the name its heading gives it ("Dr. Anil Sharma"), if any


@dataclass(slots=True)
class _Block:
    kind: str  # "bullet" | "para" | "row" | "heading"
    text: str
    section: str
    h1: str
    header: tuple[str, ...] = ()


def _split_row(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _blocks(text: str) -> list[_Block]:
    """Markdown-ish text as bullets (continuations joined), paragraph sentences and table rows."""
    out: list[_Block] = []
    section = h1 = ""
    header: tuple[str, ...] = ()
    current: _Block | None = None
    for raw in nfc(text).splitlines():
        line = raw.rstrip()
        stripped = line.strip()
        if not stripped:
            current = None
            header = ()
            continue
        if stripped.startswith("#"):
            level = len(stripped) - len(stripped.lstrip("#"))
            section = stripped.lstrip("#").strip()
            if level == 1:
                h1 = section
            out.append(_Block("heading", section, section, h1))
            current = None
            continue
        if stripped.startswith("|"):
            cells = _split_row(stripped)
            if all(re.fullmatch(r":?-{2,}:?", c) for c in cells if c):
                continue
            if not header:
                header = tuple(cells)
                continue
            out.append(_Block("row", stripped, section, h1, header))
            current = None
            continue
        if re.match(r"^(?:[-*+•]|\d{1,2}[.)])\s+", stripped):
            current = _Block("bullet", stripped, section, h1)
            out.append(current)
            continue
        if current is not None and (raw[:1] in (" ", "\t") or current.kind == "para"):
            current.text += " " + stripped
            continue
        current = _Block("para", stripped, section, h1)
        out.append(current)
    return out


def _sentences(text: str) -> list[str]:
    return [
        s.strip() for s in re.split(r"(?<=[.!?।])\s+(?=[A-Z\u0900-\u097f₹])", text) if s.strip()
    ]


def _short_heading(heading: str) -> str:
    """'Cakes (price per kg; ...)' -> 'Cakes'; 'Hair -- gents' stays."""
    return re.split(r"\s*\(", heading, maxsplit=1)[0].strip()


def entity_heading(heading: str) -> str | None:
    """The name a heading gives its lines ("Dr. Anil Sharma -- MBBS, MD" -> "Dr. Anil Sharma")."""
    short = re.split(r"\s+--\s+|\s*\(|\s*:", heading, maxsplit=1)[0].strip()
    if re.fullmatch(
        r"(?:Dr\.?\s+|Mr\.?\s+|Ms\.?\s+|Mrs\.?\s+)?[A-Z][a-z]+(?:\s+[A-Z][a-z]+)+", short
    ):
        return short
    return None


def _head_noun(heading: str) -> str:
    """The noun a one-word plural heading gives its items: 'Cakes (...)' -> 'cake'."""
    short = _short_heading(heading)
    if re.fullmatch(r"[A-Za-z]+", short) and short.lower().endswith("s"):
        return stem(short.lower())
    return ""


def _legends(texts: Iterable[str]) -> dict[str, str]:
    """Markers the files explain, e.g. 'Items marked (E) are available eggless'."""
    out: dict[str, str] = {}
    for text in texts:
        for m in re.finditer(r"marked\s+(\(\w{1,3}\)|\*)\s+(?:are|is|means)\s+([^.;]+)", text):
            out[m.group(1)] = m.group(2).strip()
    return out


def _row_spoken(name: str, cells: Sequence[tuple[str, str]], legends: dict[str, str]) -> str:
    parts: list[str] = []
    for head, value in cells:
        v = value.strip()
        if not v or v in ("-", "--"):
            continue
        h = head.strip().lower()
        if v in legends:
            parts.append(legends[v])
            continue
        price = _RUPEE.search(v)
        per = re.match(r"price\s+(per\s+.+)", h)
        if price and per:
            parts.append(f"{_RUPEE.sub(_rupees_sub, v)} {per.group(1)}")
        elif price and h in ("price", "rate", "cost"):
            parts.append(_RUPEE.sub(_rupees_sub, v))
        else:
            parts.append(f"{h} {v}" if h else v)
    return speakable(f"{name}: " + ", ".join(parts))


def _parse_facts(input_files: tuple[tuple[str, str], ...]) -> tuple[list[Fact], dict[str, str]]:
    texts = [t for _, t in input_files]
    learned = learn_glossary(texts)
    legends = _legends(texts)
    facts: list[Fact] = []
    for fname, text in input_files:
        for block in _blocks(text):
            section_en = hindi_to_english(block.section, learned)
            if block.kind == "heading":
                if re.search(r"\d", block.text) and "(" in block.text:
                    english = hindi_to_english(block.text, learned)
                    facts.append(
                        Fact(fname, section_en, block.text, english, speakable(english, legends))
                    )
                continue
            if block.kind == "row":
                cells = _split_row(block.text)
                header_en = [hindi_to_english(h, learned) for h in block.header]
                cells_en = [hindi_to_english(c, learned) for c in cells]
                name = cells_en[0] if cells_en else ""
                noun = _head_noun(block.section)
                if noun and noun not in name.lower():
                    name = f"{name} {noun}"
                pairs = tuple(zip(header_en[1:], cells_en[1:], strict=False))
                english = f"{name}: " + ", ".join(f"{h}: {v}" for h, v in pairs)
                facts.append(
                    Fact(
                        fname,
                        section_en,
                        " | ".join(cells),
                        english,
                        _row_spoken(name, pairs, legends),
                        cells=((header_en[0] if header_en else "", cells_en[0]), *pairs),
                    )
                )
                continue
            body = re.sub(r"^(?:[-*+•]|\d{1,2}[.)])\s+", "", block.text).strip()
            pieces = [body] if block.kind == "bullet" else _sentences(body)
            # a sub-heading naming someone ("Dr. Anil Sharma -- MBBS") is what its lines are about
            entity = entity_heading(section_en) if block.section != block.h1 else None
            for piece in pieces:
                english = hindi_to_english(piece, learned)
                spoken = speakable(english, legends)
                if entity and entity.lower() not in english.lower():
                    spoken = speakable(f"{entity}: {english}", legends)
                facts.append(Fact(fname, section_en, piece, english, spoken, topic=entity or ""))
    return facts, learned


# --------------------------------------------------------------------------- retrieval

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


# --------------------------------------------------------------------------- catalog


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


def _items_from_chunk(fact: Fact, chunk: str, label: str, noun: str) -> list[MenuItem]:
    bare, _notes = _strip_parens(chunk)
    prices = list(_PRICE_TOKEN.finditer(bare))
    if not prices:
        return []
    first = prices[0]
    after = bare[first.end() :]
    if re.match(r"\s+extra\b", after):
        return []
    head = bare[: first.start()]
    onwards = bool(re.match(r"\s*(?:per\s+\w+\s*)?(?:onwards?|upwards|and above)", after, re.I))
    if re.search(r"\bfrom\s*$", head, re.I):  # "Dressing: from ₹150"
        head, onwards = re.sub(r"\bfrom\s*$", "", head, flags=re.I), True
    per_kg_after = bool(re.match(r"\s*(?:per|/)\s*kg", after, re.I))
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
    out: list[MenuItem] = []
    for raw_name, amount in items:
        name, unit, unit_kg, pack_of = _name_and_unit(raw_name)
        name = name.strip(" -:,")
        if not name or len(name.split()) > 6 or _NOT_NAME_WORDS.search(name):
            continue
        if not re.search(r"[A-Za-z]", name):
            continue
        price: Decimal | None = amount
        item_pack = pack
        if pack_of is not None:
            price, item_pack = None, (pack_of, amount)
        per_kg = per_kg_after or unit == "kg"
        if per_kg and unit_kg is None:
            unit, unit_kg = "kg", Decimal(1)
        kind = _item_kind(fact.section, name, label)
        out.append(
            MenuItem(
                name=name,
                display=re.sub(r"\s*\(.*?\)", "", name),
                aliases=tuple(sorted(_aliases(name, "", derived=kind == "product"))),
                price=price,
                unit=unit,
                unit_kg=unit_kg,
                per_kg=per_kg,
                pack=item_pack,
                onwards=onwards,
                kind=kind,
                source=fact.source,
                section=fact.section,
                context=_context(fact),
                fact=fact,
            )
        )
    return out


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


# --------------------------------------------------------------------------- mentions & totals


_COUNT_WORD = r"(\d+|a dozen|dozen|an|a|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|couple|a couple)"  # noqa: E501
_PACK_WORDS = r"(?:boxes|box|packs|pack|packets|packet)"
# what one of an item is sold as ("two strips of Dolo": a strip is the priced unit): a count
_UNIT_WORDS = (
    r"(?:pieces?|pcs|nos|numbers?|slices?|strips?|bottles?|tubes?|jars?|sachets?|tins?|cans?)"
)
_COUNT_BEFORE = re.compile(
    rf"\b{_COUNT_WORD}\s+(?:({_PACK_WORDS})\s+(?:of\s+)?)?(?:{_UNIT_WORDS}\s+(?:of\s+)?)?$"
)


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


def line_amount(line: OrderLine, half_kg_surcharge: Decimal | None = None) -> Decimal | None:
    """Price of one order line from the files, or None when it cannot be computed."""
    it = line.item
    amount: Decimal | None = None
    if line.kg is not None and it.unit_kg:
        if it.price is None:
            return None
        amount = it.price * line.kg / it.unit_kg
        if it.per_kg and half_kg_surcharge is not None and line.kg < 1:
            amount += half_kg_surcharge
        for e in line.extras:
            amount += e.amount * (line.kg if e.per_kg else 1)
        return amount
    if line.kg is not None and it.unit_kg is None:
        return None  # a weight for something sold by the piece: do not guess
    if it.per_kg:
        return None  # by weight but no weight said yet
    pieces = line.count if line.count is not None else 1
    if line.packs is not None:
        if it.pack is None:
            if it.price is None:
                return None
            amount = it.price * line.packs
        else:
            amount = it.pack[1] * line.packs
    elif (
        it.pack is not None
        and pieces % it.pack[0] == 0
        and (it.price is None or it.pack[1] < it.price * it.pack[0])
    ):
        amount = it.pack[1] * (pieces // it.pack[0])
    elif it.price is not None:
        amount = it.price * pieces
    else:
        return None
    for e in line.extras:
        amount += e.amount * (1 if not e.per_kg else 0)
    return amount


def order_total(
    lines: Sequence[OrderLine], half_kg_surcharge: dict[str, Decimal] | None = None
) -> Decimal | None:
    """Sum of the lines, or None if any line cannot be priced from the files."""
    total = Decimal(0)
    for line in lines:
        extra = (half_kg_surcharge or {}).get(line.item.section)
        amount = line_amount(line, extra)
        if amount is None:
            return None
        total += amount
    return total


# --------------------------------------------------------------------------- the knowledge


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
        out: list[Mention] = []
        for i, (start, end, alias, cands) in enumerate(spans):
            prev_end = spans[i - 1][1] if i else 0
            nxt_start = spans[i + 1][0] if i + 1 < len(spans) else len(low)
            count, kg, packs = _quantity_around(low, start, end, prev_end, nxt_start)
            cands = _prefer(cands, kg, count, low)
            out.append(Mention(start, end, alias, cands, count, kg, packs))
        return out

    def total(self, lines: Sequence[OrderLine]) -> Decimal | None:
        return order_total(lines, self.half_kg_surcharge)

    def amount(self, line: OrderLine) -> Decimal | None:
        return line_amount(line, self.half_kg_surcharge.get(line.item.section))


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
    if m:
        n = parse_count(m.group(1))
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


@lru_cache(maxsize=64)
def knowledge_for(input_files: tuple[tuple[str, str], ...]) -> Knowledge:
    """The Knowledge of a set of input files, built once and shared by every call."""
    return Knowledge(input_files)
