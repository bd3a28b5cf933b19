"""Split a reply into pieces that text-to-speech can say one after the other.

Streaming TTS speaks the first piece while the rest is still being synthesized, so pieces should
be whole sentences (natural intonation) but not too long (the caller waits for the whole first
piece). The rules are tuned for a receptionist's replies, not for prose in general:

* a sentence ends at ``.``, ``!``, ``?`` (or ``…``) followed by white space, and at a line break;
* a full stop does not end a sentence after a title or abbreviation that is followed by more of
  the same sentence: "Dr. Rao", "e.g. cakes", initials ("J. K. Rowling"); "Rs." and "No." only
  when a digit follows ("Rs. 450", "No. 5", but "No. We are closed."); "etc." and
  "a.m."/"p.m." end one only when a capital letter follows;
* numbers such as "10.30 am" or "2.5 kg" are never split (no white space after the dot);
* a sentence longer than ``max_chars`` is cut at ``;`` or ``:``, then at commas, then between
  words, into pieces of at most ``max_chars`` where possible;
* empty pieces (stray punctuation, blank lines) are dropped.

Pure functions, no state: safe to call from anywhere.
"""

from __future__ import annotations

import re

__all__ = ["DEFAULT_MAX_CHARS", "lead_clause", "split_sentences"]

#: Pieces longer than this are cut at ``;``, ``:``, commas, then spaces.
DEFAULT_MAX_CHARS = 120

# Titles and abbreviations that are (almost) always followed by more of the same sentence.
_NEVER_FINAL = frozenset(
    {
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "sr",
        "jr",
        "st",
        "vs",
        "approx",
        "dept",
        "mt",
        "ft",
        "e.g",
        "i.e",
        "eg",
        "ie",
        "viz",
        "cf",
    }
)
# Abbreviations used before a number ("Rs. 450", "No. 5"); the same words end sentences too.
_BEFORE_NUMBER = frozenset({"rs", "no", "nos"})
# Abbreviations that often end a sentence too: final only when a capital letter follows.
_MAYBE_FINAL = frozenset({"etc", "a.m", "p.m", "ltd", "inc", "co", "pvt", "am", "pm"})

# Candidate sentence end: terminal punctuation, optional closing quotes/brackets, white space.
_END = re.compile(r"([.!?…]+)([\"'”’)\]]*)(\s+)")
# The word just before a full stop (letters and inner dots, e.g. "e.g", "Rs", "a.m").
_WORD_BEFORE = re.compile(r"(?<!\w)([A-Za-z](?:[A-Za-z.]*[A-Za-z])?)$")
_HAS_WORDS = re.compile(r"\w")
_SOFT_BREAKS = (re.compile(r"(?<=[;:])\s+"), re.compile(r"(?<=,)\s+"), re.compile(r"\s+"))


def _is_final_stop(text: str, dot: int, next_char: str) -> bool:
    """Whether the full stop at ``text[dot]`` (followed by white space) ends the sentence."""
    m = _WORD_BEFORE.search(text, 0, dot)
    if m is None:
        return True  # after a number, a quote, ...
    word = m.group(1)
    low = word.lower()
    if low in _NEVER_FINAL:
        return False
    if low in _BEFORE_NUMBER:
        return not next_char.isdigit()
    if len(word) == 1 and word.isupper():
        return False  # an initial: "J. K. Rowling"
    if low in _MAYBE_FINAL:
        return next_char.isupper()
    return True


def _sentences(line: str) -> list[str]:
    out: list[str] = []
    start = 0
    for m in _END.finditer(line):
        punct = m.group(1)
        after = m.end()
        next_char = line[after] if after < len(line) else ""
        if punct == "." and not _is_final_stop(line, m.start(1), next_char):
            continue
        out.append(line[start : m.end(2)])
        start = after
    out.append(line[start:])
    return out


def _pack(parts: list[str], max_chars: int) -> list[str]:
    """Join consecutive parts greedily while the result stays within ``max_chars``."""
    out: list[str] = []
    for part in parts:
        if out and len(out[-1]) + 1 + len(part) <= max_chars:
            out[-1] = f"{out[-1]} {part}"
        else:
            out.append(part)
    return out


def _shorten(piece: str, max_chars: int, level: int = 0) -> list[str]:
    """Cut a long piece at the softest break that exists: ``;``/``:``, commas, then spaces."""
    if len(piece) <= max_chars or level >= len(_SOFT_BREAKS):
        return [piece]
    parts = [p for p in _SOFT_BREAKS[level].split(piece) if p]
    if len(parts) == 1:
        return _shorten(piece, max_chars, level + 1)
    out: list[str] = []
    for part in _pack(parts, max_chars):
        out.extend(_shorten(part, max_chars, level + 1))
    return out


def split_sentences(text: str, max_chars: int = DEFAULT_MAX_CHARS) -> list[str]:
    """Split ``text`` into speakable pieces, in order, stripped, none empty.

    Joining the result with single spaces gives back ``text`` with its white space collapsed
    (line breaks become spaces), less any word-less run at the very start ("... Hello" loses
    "..."); word-less runs elsewhere stay with the piece before them.
    """
    if max_chars < 1:
        raise ValueError("max_chars must be positive")
    pieces: list[str] = []
    for raw_line in text.splitlines():
        line = " ".join(raw_line.split())
        if not line:
            continue
        for sentence in _sentences(line):
            sentence = sentence.strip()
            if not sentence:
                continue
            for piece in _shorten(sentence, max_chars):
                piece = piece.strip()
                if piece and _HAS_WORDS.search(piece):
                    pieces.append(piece)
                elif piece and pieces:
                    # stray punctuation ("...", "!") belongs to the piece before it
                    pieces[-1] = f"{pieces[-1]} {piece}"
    return pieces


_CLAUSE_END = re.compile(r"[,;:](?=\s)")


def lead_clause(piece: str, min_chars: int = 15, max_chars: int = 50) -> list[str]:
    """``piece`` as [its first clause, the rest] when it is longer than ``max_chars`` and a
    clause ends (``,``, ``;`` or ``:`` before a space) between ``min_chars`` and ``max_chars``;
    else ``[piece]``.

    For the first piece of a reply: the caller hears nothing until it is synthesized, so a
    short first clause ("Address: 14, 5th Cross,") starts the answer sooner; ``min_chars``
    keeps it long enough to play while the rest is made. Cut at a clause end, the voice's
    intonation still sounds natural."""
    if len(piece) <= max_chars:
        return [piece]
    for match in _CLAUSE_END.finditer(piece, max(0, min_chars - 1), max_chars):
        head, rest = piece[: match.end()], piece[match.end() :].strip()
        return [head, rest] if rest else [piece]
    return [piece]
