"""People's names a caller gives: "my name is Priya Nair", "मेरा नाम रमेश है", "Sunita bol rahi".

Names are kept as said (Devanagari names too); compare them with
:func:`receptionist.language.hindi.transliterate`.
"""

from __future__ import annotations

import re

from .text import clean, nfc, rx, wordset

__all__ = ["answered_name", "extract_names", "extract_patient_names", "parse_name", "spelled_names"]

_NAME_WORD = r"[A-Z][a-z]+|[\u0900-\u097f]+"
_NAME_PATTERNS = [
    rx(
        rf"(?i:my name is|my name's|name is|naam hai|this is|i am|i'm|myself|it's|it is)\s+"
        rf"((?:{_NAME_WORD})(?:\s+(?:{_NAME_WORD})){{0,2}})"
    ),
    rx(
        r"(?:मेरा नाम|नाम|mera naam|naam)\s+"
        r"((?:[\u0900-\u097f]+\s+){0,2}?[\u0900-\u097f]+)\s+(?:है|हैं)"
    ),
    rx(r"(?:mera naam|naam)\s+((?:[A-Za-z]+\s+){0,2}?[A-Za-z]+)\s+hai\b", re.I),
    rx(
        rf"((?:{_NAME_WORD})(?:\s+(?:{_NAME_WORD})){{0,2}})"
        r"\s+(?:bol raha|bol rahi|बोल रहा|बोल रही)"
    ),
    # "Name as Deepa": how speech-to-text often hears "name's" or a quick "name is"
    rx(rf"\b(?i:name)\s*(?i:is|as|:)?\s+((?:{_NAME_WORD})(?:\s+(?:{_NAME_WORD})){{0,2}})"),
]
_PATIENT_PATTERNS = [
    rx(
        rf"(?:patient(?:'s)? name is|patient ka naam|patient is"
        rf"|for my (?:son|daughter|mother|father|wife|husband|mother-in-law|father-in-law"
        rf"|grandfather|grandmother|baby)|मरीज़? का नाम"
        rf"|मेरी (?:माँ|मां|मम्मी|बेटी|पत्नी)|मेरे (?:पिताजी|पापा|बेटे|पति)|beta|beti)\s*(?:is|hai|है)?\s*"
        rf"((?:{_NAME_WORD})(?:\s+(?:{_NAME_WORD})){{0,2}})"
    ),
]
# Words that are no part of a name: a name ends at the first of them ("Priya calling from").
NOT_NAME_WORDS = frozenset(
    nfc(w)
    for w in wordset("""
    a an the and or my name is it it's its this that i i'm am me yes no ok okay sure please
    thank thanks you your hello hi sorry calling from here there speaking just not for of to
    with on at in by looking interested fine good very also going trying asking wondering
    regarding about new morning evening afternoon today tomorrow tonight noon night
    monday tuesday wednesday thursday friday saturday sunday january february march april may
    june july august september october november december order cake book booking appointment
    want need would like can could delivery pickup number phone same one two three ji sir madam
    mr mrs ms dr doctor patient haan hmm um uh well so actually correct right be will call back
    if possible any anyone anybody whoever free available day after next coming week sahi hai
    theek thik achha acha nahi haa gents ladies men women kids bol
    बोल जी हूँ हूं है हैं का की के को में से और या पर भी हाँ नहीं ठीक मैं आप मुझे हम क्या""")
)


def _name_words(raw: str) -> list[str]:
    kept: list[str] = []
    for w in raw.split():
        if w.lower() in NOT_NAME_WORDS:
            break
        kept.append(w)
    return kept


def _clean_name(raw: str) -> str | None:
    return " ".join(_name_words(raw)) or None


# a name spelled out: "K-A-V-I-T-A", or after "spelled"/"spelt" also "K A V I T A", "k.a.v.i.t.a"
_SPELLED = (
    rx(r"(?<![\w-])([A-Z](?:-[A-Z]){2,})(?![\w-])"),
    rx(r"(?i:spelled|spelt|spelling is|spells)\s*[:,]?\s*([A-Za-z](?:[\s.-]+[A-Za-z]\b){2,})"),
)


def spelled_names(text: str) -> list[tuple[int, str]]:
    """``(position, name)`` for each name spelled out letter by letter ("K-A-V-I-T-A")."""
    out: dict[int, str] = {}
    for pat in _SPELLED:
        for m in pat.finditer(nfc(text)):
            letters = re.sub(r"[^A-Za-z]", "", m.group(1))
            out.setdefault(m.start(1), letters.capitalize())
    return sorted(out.items())


def extract_names(text: str, *, patient: bool = False) -> list[tuple[int, str]]:
    """``(position, name)`` for each self-introduction ("my name is X", "मेरा नाम X है" ...)
    and each name spelled out ("K-A-V-I-T-A": a correction, so later than what it corrects).

    With ``patient``, also phrases naming someone else as the patient ("for my mother X").
    """
    out: list[tuple[int, str]] = []
    text = nfc(text)
    pats = (_PATIENT_PATTERNS + _NAME_PATTERNS) if patient else _NAME_PATTERNS
    seen: set[int] = set()
    for pat in pats:
        for m in pat.finditer(text):
            name = _clean_name(m.group(1))
            if name and m.start(1) not in seen:
                seen.add(m.start(1))
                out.append((m.start(1), name))
    out += [(pos, n) for pos, n in spelled_names(text) if pos not in seen]
    out.sort()
    return out


def extract_patient_names(text: str) -> list[str]:
    """Names given for someone else as the patient ("for my mother Kamla Devi")."""
    text = nfc(text)
    return [
        n for p in _PATIENT_PATTERNS for m in p.finditer(text) if (n := _clean_name(m.group(1)))
    ]


_BARE_NAME = rx(
    r"^\s*(?:(?i:my name is|name is|name as|this is|i am|i'm|it's|naam|नाम)\s+)?"
    r"((?:Mohd\.\s+)?(?:[A-Z][a-z]+|[\u0900-\u097f]+)(?:\s+(?:[A-Z][a-z]+|[\u0900-\u097f]+)){0,2})"
    r"\s*(?:[,.।]|$|\d|\+)"
)
_ANSWER_NOT_NAME = wordset(
    "hello hi haan han yes no ok okay sure sorry same mera meri mere my number phone "
    "जी हाँ नहीं मेरा मेरी मेरे बेटी बेटा sir madam beta beti"
)


def answered_name(text: str) -> str | None:
    """The name in an answer to "your name?" ("Sunita Rao, 98..."), capitalised or Devanagari."""
    m = _BARE_NAME.match(text)
    if not m:
        return None
    name = _clean_name(m.group(1))
    if name and not _ANSWER_NOT_NAME.intersection(w.lower() for w in name.split()):
        return name
    return None


# --------------------------------------------------------------------------- live speech

_NAME_INTRO = re.compile(
    r"\b(?:my name is|my name's|name is|name's|name as|the name is|under the name|name)"
    r"\s*[:,]?\s+"
    r"([a-z][a-z.'-]*(?:\s+[a-z][a-z.'-]*){0,2})",
    re.I,
)
_PATIENT_INTRO = re.compile(
    r"\b(?:patient(?:'s)? name is|patient is|for my (?:son|daughter|mother|father|wife|husband|"
    r"mom|dad|baby|grandmother|grandfather|sister|brother)|name of the patient is)\s*[:,]?\s+"
    r"([a-z][a-z.'-]*(?:\s+[a-z][a-z.'-]*){0,2})",
    re.I,
)


def _tidy_name(raw: str) -> str | None:
    kept: list[str] = []
    for w in raw.replace(",", " ").split():
        wl = w.lower().strip(".'")
        if wl in NOT_NAME_WORDS or not wl.isalpha():
            break
        kept.append(w.strip(".'"))
    if not kept:
        return None
    return " ".join(k if k[:1].isupper() and not k.isupper() else k.capitalize() for k in kept)


def _bare_clause_name(s: str, cased: bool) -> str | None:
    # "Janani, 9791 001 002" / "Book me for 4 pm. Janani." : a clause that is only a name;
    # in lower-case text only the first clause, as anything else could be a name then
    clauses = re.split(r"[,.;!?]|\s+(?:and|my number|number|phone)\b", s)
    for clause in clauses if cased else clauses[:1]:
        bare = re.sub(
            r"^(?:(?:yes|yeah|sure|ok|okay|it's|it is|this is|i am|i'm|myself|name as|name|my name|"
            r"please|ji|haan)\b[\s,.:]*)+",
            "",
            clause.strip(),
            flags=re.I,
        ).strip()
        words = bare.split()
        if not 1 <= len(words) <= 3 or not all(w.isalpha() for w in words):
            continue
        if cased and not all(w[:1].isupper() for w in words):
            continue
        name = _tidy_name(bare)
        if name:
            return name
    return None


def parse_name(text: str, *, lenient: bool = False, patient: bool = False) -> str | None:
    """A name the caller gives: "my name is Priya Nair", "this is Kavya"; with ``lenient``
    (we just asked for it) also a bare "Priya" or "It's Rohit Menon".

    When the text is properly cased (speech-to-text usually capitalises names), a name after
    "for my son" must be capitalised too, so "for my son, day after tomorrow" is no name.
    """
    s = re.sub(r"\b(Mohd|Md|Mr|Mrs|Ms|Smt|Shri|Sri)\.", r"\1", clean(text))  # "Mohd. Salim"
    cased = s != s.lower()
    intros = ([_PATIENT_INTRO] if patient else []) + [_NAME_INTRO]
    for intro in intros:
        m = intro.search(s)
        if m is None:
            continue
        # "my name is prakash tiwari" written in lower case is still a name; after a shorter
        # intro only a capitalised word is ("Name is current": a name misheard, asked again)
        explicit = re.match(r"(?i)my name(?: is|'s)\b", m.group(0)) is not None
        if (not cased or explicit or m.group(1)[:1].isupper()) and (name := _tidy_name(m.group(1))):
            return name
    found = extract_names(s)  # "This is Kavya", "I am Rohit Menon" (capitalised names)
    if found:
        name = _tidy_name(found[0][1])
        if name:
            return name
    return _bare_clause_name(s, cased) if lenient else None
