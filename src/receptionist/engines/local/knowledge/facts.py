"""Facts: the tenant's files cut into lines a receptionist could say (a sentence, a table row)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from receptionist.language.hindi import hindi_to_english, learn_glossary
from receptionist.language.text import (
    nfc,
    stem,
)

from .speech import _RUPEE, _rupees_sub, speakable


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
