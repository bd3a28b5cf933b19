"""The words a call is found by, and how a search box's text becomes a safe index query.

A call's `search_text` is its words (transcript turns, summary, call type) normalised once in
Python: NFC, case-folded, every run of characters that are not letters, digits or combining
marks turned into one space, each distinct word kept once. The same function cuts the search
box's text, so a document and a query always agree on what a word is, on both databases and
whatever the server's locale:

- PostgreSQL indexes `array_to_tsvector(string_to_array(search_text, ' '))` (GIN): no text
  parser and no dictionary is involved (a locale's parser may split Devanagari words at their
  vowel signs), and the query is a `tsquery` literal of quoted lexemes, never parsed as syntax.
- SQLite keeps an FTS5 table (`call_search`) whose tokenizer treats letters, digits and marks
  as word characters, so it cuts `search_text` exactly at its spaces; the query is quoted FTS5
  strings, so AND, NEAR, `*`, `-` or quotes typed by a person are words, not operators.

Combining marks stay inside words on purpose: a Hindi or Tamil word is letters plus vowel signs
(U+093F ि is a mark), and cutting there would leave fragments. Format characters (zero-width
joiner and non-joiner, common in Indic text) are dropped without splitting the word.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Any

MAX_WORD_CHARS = 64  # longer "words" (a pasted token, noise) are cut: same cut for documents
MAX_DOCUMENT_WORDS = 4000  # a transcript's distinct words; bounds the index entry per call
MAX_QUERY_WORDS = 16

_KEEP = ("L", "N", "M")  # letters, digits, marks (vowel signs, viramas, nuktas)


def words(text: str | None) -> list[str]:
    """The words of `text`, normalised as the index stores them, in order (repeats kept)."""
    if not text:
        return []
    out: list[str] = []
    chars: list[str] = []
    for ch in unicodedata.normalize("NFC", text).casefold():
        cat = unicodedata.category(ch)
        if cat[0] in _KEEP:
            chars.append(ch)
        elif cat == "Cf":
            continue  # ZWJ/ZWNJ and friends: part of the word's spelling, not a break
        elif chars:
            out.append("".join(chars)[:MAX_WORD_CHARS])
            chars = []
    if chars:
        out.append("".join(chars)[:MAX_WORD_CHARS])
    return out


def _distinct(parts: Iterable[str | None], limit: int) -> list[str]:
    seen: dict[str, None] = {}
    for part in parts:
        for w in words(part):
            if w not in seen:
                seen[w] = None
                if len(seen) >= limit:
                    return list(seen)
    return list(seen)


def search_document(
    transcript: Any, summary: str | None = None, call_type: str | None = None
) -> str:
    """The `search_text` of a call: its distinct words, space-separated."""
    texts: list[str | None] = [call_type, summary]
    if isinstance(transcript, list):
        texts += [str(t.get("text") or "") for t in transcript if isinstance(t, dict)]
    return " ".join(_distinct(texts, MAX_DOCUMENT_WORDS))


def query_words(q: str | None) -> list[str]:
    """The distinct words of a search box's text (at most MAX_QUERY_WORDS)."""
    return _distinct([q], MAX_QUERY_WORDS)


def pg_tsquery(terms: list[str]) -> str:
    """A `tsquery` literal: every word as a prefix (`'word':*`), all required. Words hold only
    letters, digits and marks, but the quoting would keep a quote or backslash literal too."""
    quoted = (w.replace("\\", "\\\\").replace("'", "''") for w in terms)
    return " & ".join(f"'{w}':*" for w in quoted)


def fts5_query(terms: list[str]) -> str:
    """An FTS5 MATCH expression: every word a quoted prefix string, all required."""
    return " ".join('"' + w.replace('"', '""') + '"*' for w in terms)


def caller_key(number: str | None) -> str | None:
    """The digits of a caller's number, reversed: "numbers ending in these digits" becomes a
    prefix range an ordinary index answers."""
    digits = "".join(ch for ch in number or "" if ch.isdigit() and ch.isascii())
    return digits[::-1] or None


#: The digits a number is matched by when more are given: the national number. "+91 98xxx",
#: "098xxx" and "98xxx" are one caller; country code and trunk prefix are left aside.
NATIONAL_DIGITS = 10


def caller_prefix(digits: str) -> tuple[str, str]:
    """The [low, high) range of `caller_key` values of numbers ending in `digits` (ASCII)."""
    key = digits[-NATIONAL_DIGITS:][::-1]
    return key, key + ":"  # ':' sorts right after '9': every longer key of this prefix is below


def response_times(transcript: Any) -> list[float]:
    """Caller's end → agent's start (ms), for each agent turn that answers a caller turn."""
    times, caller_end = [], None
    for turn in transcript if isinstance(transcript, list) else []:
        if not isinstance(turn, dict):
            continue
        if turn.get("speaker") == "caller":
            caller_end = turn.get("end_ms")
        elif turn.get("speaker") == "agent" and isinstance(caller_end, int | float):
            start = turn.get("start_ms")
            if isinstance(start, int | float) and start >= caller_end:
                times.append(float(start - caller_end))
            caller_end = None
    return times


__all__ = [
    "MAX_QUERY_WORDS",
    "NATIONAL_DIGITS",
    "caller_key",
    "caller_prefix",
    "fts5_query",
    "pg_tsquery",
    "query_words",
    "response_times",
    "search_document",
    "words",
]
