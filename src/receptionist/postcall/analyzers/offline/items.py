"""Items a caller names: the tenant's menu, services, doctors (exact or heard a little wrong)
and medicines, with sizes, and with the caller's change of mind.

A sentence with a change cue ("instead", "actually", "make that ...") replaces what was named
earlier of the same kind (a cake for a cake, a doctor for a doctor); an item right after "instead
of", "not" or "cancel" is dropped, not added.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from receptionist.language.quantities import count_before, quantity_near
from receptionist.language.text import rx, stem, words
from receptionist.tenants.model import FieldSpec

from .context import Context
from .vocabulary import VocabEntry, field_vocab, match_vocab

__all__ = ["extract_items"]

# Common Indian brand/generic names of regular (chronic) medicines, for callers who name one
# without a strength. Names said with a strength ("Telma 40") are found without this list.
_MEDICINES = (
    "pan d", "pan 40", "pantocid", "shelcal", "dolo", "crocin", "calpol", "telma", "telmisartan",
    "metformin", "glycomet", "ecosprin", "thyronorm", "eltroxin", "amlodipine", "amlong",
    "stamlo", "atorva", "atorvastatin", "rosuvas", "januvia", "galvus", "istamet", "jalra",
    "becosules", "limcee", "montair", "allegra", "omez", "razo", "rantac", "losar", "cilacar",
    "glimepiride", "amaryl", "gemer", "volini", "combiflam", "uprise", "folvite", "thyrox",
)  # fmt: skip
_MED_WITH_DOSE = rx(r"\b([A-Z][A-Za-z]+(?:[ -][A-Z][A-Za-z]*)?)\s+(\d{1,4}(?:\.\d+)?)(\s*mg)?\b")
# words of a capitalised "Name 12" that make it an address, a title or a number, no medicine
_NOT_MEDICINE = frozenset(
    ["dr", "doctor", "sir", "madam", "number", "phone", "flat", "room", "address", "addresses",
     "lane", "road", "street", "block", "sector", "wing", "society", "main", "cross", "floor",
     "plot", "house", "no", "apartment", "building", "tower"]
)  # fmt: skip
_CHANGE = rx(
    r"\b(?:instead|actually|make (?:that|it)|change (?:it|that) to|rather|no wait)\b", re.I
)
_DROPPED_BEFORE = rx(
    r"(?:\binstead of|\bnot|\brather than|\bwithout)\s+(?:(?:the|that|a|an|my)\s+)?$", re.I
)
# "cancel the syrup, send the spray" drops the syrup; "cancel my pedicure" alone names what a
# cancellation is about, and keeps it
_CANCELLED_BEFORE = rx(r"\bcancel\s+(?:(?:the|that|a|an|my)\s+)?$", re.I)
_MEDICINE_WORDS = {"medicine", "medicines", "drug", "drugs"}


@dataclass(frozen=True, slots=True)
class _Found:
    start: int
    end: int
    kind: str  # what replaces what on a change of mind: the entry's file and section
    text: str


# a syllable speech-to-text wrote apart: "Telm-a-40" is "Telma 40" (same length, so positions
# stay those of the text)
_SPLIT_SYLLABLE = rx(r"\b([A-Za-z]{3,})-([a-z])-(?=\d)")


def _medicines_in(text: str) -> list[_Found]:
    text = _SPLIT_SYLLABLE.sub(lambda m: m.group(1) + m.group(2) + "  ", text)
    spans: list[_Found] = []
    for m in _MED_WITH_DOSE.finditer(text):
        name = m.group(1)
        if {w.lower() for w in name.split()} & _NOT_MEDICINE or m.group(2).startswith("0"):
            continue
        if len(re.sub(r"\D", "", text[m.start(2) :])) >= 10 and not m.group(3):
            continue  # start of a phone number
        label = f"{name} {m.group(2)}{' mg' if m.group(3) else ''}"
        spans.append(_Found(m.start(), m.end(), "medicine", label))
    low = text.lower()
    for med in _MEDICINES:
        for m in re.finditer(r"(?<![a-z])" + re.escape(med) + r"(?![a-z])", low):
            if not any(f.start <= m.start() < f.end for f in spans):
                spans.append(_Found(m.start(), m.end(), "medicine", text[m.start() : m.end()]))
    return spans


def _with_size(text: str, start: int, end: int, e: VocabEntry, with_sizes: bool) -> str:
    item = e.canonical
    nxt = re.match(r"\s+([a-z]+)", text[end:].lower())
    if (
        nxt
        and e.head_noun
        and stem(nxt.group(1)) == e.head_noun
        and e.head_noun not in item.lower()
    ):
        item += " " + stem(nxt.group(1))
        end += nxt.end()
    if with_sizes:
        qty = quantity_near(text, start, end)
        if qty:
            item += " " + qty
        else:
            n = count_before(text, start)
            if n is not None and n > 1:
                item = f"{n} {item}"
    return item


def _items_in(
    sentence: str, vocab: list[VocabEntry], with_sizes: bool, medicines: bool
) -> list[_Found]:
    found = [
        _Found(
            a,
            b,
            e.fname + "|" + " ".join(sorted(e.context)),
            _with_size(sentence, a, b, e, with_sizes),
        )
        for a, b, e in match_vocab(sentence, vocab)
    ]
    if medicines:  # the catalogue's name wins over the same words read as a medicine
        found += [
            f
            for f in _medicines_in(sentence)
            if not any(f.start < g.end and g.start < f.end for g in found)
        ]
    return sorted(found, key=lambda f: f.start)


_SENTENCE_END = rx(r"(?<![Dd]r\.)(?<![MmSs]t\.)(?<![Mm]rs\.)(?<![Mm][rs]\.)(?<=[.?!।])\s+|\n+")


def _sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence; "Dr. Sunita" stays one."""
    out, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        out.append((start, m.start()))
        start = m.end()
    out.append((start, len(text)))
    return out


def extract_items(ctx: Context, spec: FieldSpec) -> list[str]:
    """What the caller named for ``spec``, in order, after their changes of mind."""
    said = set(words(spec.name + " " + spec.description))
    medicines = bool(said & _MEDICINE_WORDS)
    # a medicines field that also takes store items ("Medicines or items") reads the catalogue
    vocab = field_vocab(ctx.tenant, spec) if not medicines or said & {"item", "items"} else []
    with_sizes = bool(said & {"size", "weight", "quantity"})
    chosen: list[_Found] = []
    for t in ctx.turns:
        if not t.caller:
            continue
        found_in_turn = _items_in(t.text, vocab, with_sizes, medicines)
        for a, b in _sentence_spans(t.text):
            s = t.text[a:b]
            found = [f for f in found_in_turn if a <= f.start < b]
            dropped = [f for f in found if _DROPPED_BEFORE.search(t.text[a : f.start])]
            cancelled = [f for f in found if _CANCELLED_BEFORE.search(t.text[a : f.start])]
            if any(f not in dropped and f not in cancelled for f in found):
                dropped += cancelled
            kept = [f for f in found if f not in dropped]
            gone = {f.text.lower() for f in dropped}
            if _CHANGE.search(s) and not dropped:  # "X instead of Y" replaces only Y
                gone |= {c.text.lower() for c in chosen if c.kind in {f.kind for f in kept}}
            chosen = [c for c in chosen if c.text.lower() not in gone]
            for f in kept:
                if f.text.lower() not in {c.text.lower() for c in chosen}:
                    chosen.append(f)
    # one entry per medicine said twice ("Dolo", later "Dolo 650") or also found in the
    # catalogue ("Volini" and "Volini pain relief spray"): the catalogue's name wins
    listed = {c.text.lower().split()[0] for c in chosen if c.kind != "medicine"}
    out: list[str] = []
    for c in chosen:
        first = c.text.lower().split()[0]
        if c.kind == "medicine" and (
            first in listed or any(o.lower().split()[0] == first for o in out)
        ):
            continue
        out.append(c.text)
    return out
