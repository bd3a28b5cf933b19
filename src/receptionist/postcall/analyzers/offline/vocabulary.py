"""What a tenant's input files name: items, services, tests, doctors (the offline vocabulary).

Each bullet, table row and "native (English) --" heading of the files becomes an entry with its
aliases (Devanagari loanwords also in Latin letters) and the words of its file and section, so
a field ("flavour", "test_name") can pick the entries that belong to it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz

from receptionist.language.dates import MONTHS, WEEKDAYS
from receptionist.language.hindi import LOANWORDS, loanwords_in_latin
from receptionist.language.text import STOPWORDS, nfc, rx, stem, words
from receptionist.tenants.model import FieldSpec, Tenant

from .context import key_words

__all__ = ["VocabEntry", "field_keywords", "field_vocab", "match_vocab"]


@dataclass(frozen=True, slots=True)
class VocabEntry:
    canonical: str
    aliases: tuple[str, ...]  # lower-case forms to look for, canonical included
    context: frozenset[str]  # words of the file name and section heading
    priced: bool
    tabled: bool = False
    fname: str = ""
    head_noun: str = ""  # "cake" for entries under "## Cakes ..."


_PRICE_RE = rx(r"₹|rs\.?\s*\d|\d+\s*(?:rupees|रुपये)", re.I)


def _split_item(raw: str) -> list[str]:
    raw = re.sub(r"\*\*|`", "", raw).strip()
    parts: list[str] = []
    for chunk in re.split(r";|(?<!\w)/(?!\w)|\s/\s", raw):
        chunk = re.split(r"\s--\s|:|₹|\s-\s|,", chunk)[0]
        chunk = re.sub(r"\(.*?\)", "", chunk)
        chunk = re.sub(r"\d+\s*(?:g|kg|ml)\b.*", "", chunk)
        chunk = chunk.strip(" .-|#")
        if 2 < len(chunk) <= 40 and not re.fullmatch(r"[\d\s.,%+-]+", chunk):
            parts.append(chunk)
    return parts


def _heading_entry(fname: str, heading: str) -> VocabEntry | None:
    """A heading like "डॉ. अनिल शर्मा (Dr. Anil Sharma) -- MBBS" names an entry too."""
    m = re.match(r"(.+?)\s*\((.+?)\)\s*--", heading)
    if not m:
        return None
    canon = m.group(2).strip()
    native = m.group(1).strip().lower()
    aliases = {canon.lower(), native}
    for form in (canon.lower(), native):
        parts = form.split()
        if len(parts) >= 3:  # "dr. anil sharma" -> "anil sharma", "dr anil", ...
            aliases |= {" ".join(parts[1:]), f"{parts[0]} {parts[1]}"}
            if form.isascii():
                aliases |= {f"dr {parts[1]}", f"doctor {parts[1]} {parts[2]}"}
    return VocabEntry(
        canon, tuple(sorted(aliases)), frozenset(key_words(fname)), False, True, fname
    )


def _with_first_bullet(entry: VocabEntry, line: str) -> VocabEntry:
    """ "- बच्चों के डॉक्टर / Child specialist (paediatrician): ..." under it names it too."""
    label = line[2:].split(":")[0]
    extra = {a.lower() for a in _split_item(label)}
    extra |= {x.strip().lower() for x in re.findall(r"\(([^)]*)\)", line.split(":")[0])}
    aliases = tuple(sorted(set(entry.aliases) | extra))
    return VocabEntry(entry.canonical, aliases, entry.context, False, True, entry.fname)


def _line_candidates(s: str) -> list[str]:
    """Item names of one table row or bullet."""
    cands: list[str] = []
    if s.startswith("|"):
        cells = [c.strip() for c in s.strip("|").split("|")]
        if cells and not set(cells[0]) <= set("-: "):
            cands = _split_item(cells[0])
            if cands and cands[0].lower() in ("cake", "stylist", "area", "डॉक्टर"):
                cands = []
    elif s.startswith(("- ", "* ")):
        body = s[2:]
        # "Waxing: full arms ₹400" / "Haircut + beard trim: ₹400"
        cands = _split_item(body)
        for inner in re.findall(r"\(([^)]*)\)", body):
            if not re.search(r"\d|₹", inner) and "," not in inner:
                cands.append(inner.strip())
    return cands


def _line_entries(fname: str, heading: str, s: str) -> Iterable[VocabEntry]:
    ctx = frozenset(key_words(fname + " " + heading))
    hw = words(heading)
    noun = stem(hw[0]) if hw else ""
    priced = bool(_PRICE_RE.search(s))
    for c in _line_candidates(s):
        lowc = c.lower()
        aliases = {lowc}
        for dev, lat in LOANWORDS.items():
            if dev in lowc:
                aliases.add(lowc.replace(dev, lat))
        yield VocabEntry(c, tuple(sorted(aliases)), ctx, priced, s.startswith("|"), fname, noun)


@lru_cache(maxsize=64)
def _vocabulary(input_files: tuple[tuple[str, str], ...]) -> tuple[VocabEntry, ...]:
    out: list[VocabEntry] = []
    for fname, raw_text in input_files:
        heading = ""
        head: VocabEntry | None = None
        first_bullet = False  # a heading's first bullet names its entry too
        for line in nfc(raw_text).splitlines():
            s = line.strip()
            if s.startswith("#"):
                heading = s.strip("# ")
                head = _heading_entry(fname, heading)
                if head:
                    out.append(head)
                first_bullet = head is not None
                continue
            if first_bullet and head and s.startswith("- "):
                first_bullet = False
                out[-1] = _with_first_bullet(head, s)
                continue
            out.extend(_line_entries(fname, heading, s))
    return tuple(out)


def field_keywords(spec: FieldSpec) -> set[str]:
    desc = re.sub(r"e\.g\..*$", "", spec.description)  # examples are not what the field is about
    words = set(key_words(spec.name.replace("_", " ") + " " + desc))
    return words | {w + "s" for w in words}


def _examples(spec: FieldSpec) -> list[str]:
    m = re.search(r"e\.g\.\s*(.+)$", spec.description)
    if not m:
        return []
    out = []
    for part in re.split(r",| or ", m.group(1)):
        part = part.strip(" .'\")(")
        if part and len(part) <= 30 and not re.search(r"\d", part):
            out.append(part)
    return out


_NOT_ITEM_FILES = ("hour", "timing", "delivery", "location", "contact")


def field_vocab(tenant: Tenant, spec: FieldSpec, siblings: Iterable[str] = ()) -> list[VocabEntry]:
    vocab = _vocabulary(tenant.input_files)
    skip = {s.replace("_", " ").lower() for s in siblings}
    skip |= {f.name.replace("_", " ").lower() for ct in tenant.call_types for f in ct.fields}
    pool = [
        e
        for e in vocab
        if (e.priced or e.tabled)
        and len(e.canonical) > 2
        and e.canonical.lower() not in skip
        and not any(w in e.fname.lower() for w in _NOT_ITEM_FILES)
    ]
    fk = field_keywords(spec)
    scored = [(len(fk & set(e.context)), e) for e in pool]
    best = max((s for s, _ in scored), default=0)
    if spec.type == "list":
        chosen = pool
    elif best > 0:
        chosen = [e for s, e in scored if s == best]
    else:
        chosen = pool
    for ex in _examples(spec):
        chosen.append(VocabEntry(ex, (ex.lower(),), frozenset(), False))
    return chosen


# how alike a word heard must be to an entry's first word ("harcut" / "haircut"), or, when a
# word only that entry has follows exactly, to that first word ("balini spray" / "Volini pain
# relief spray"): speech-to-text gets names of things wrong
FUZZY_ALONE = 85.0
FUZZY_WITH_NEXT = 65.0
_TOKEN_RE = rx(r"[a-z0-9\u0900-\u097f]+")


def _alias_words(vocab: Sequence[VocabEntry]) -> dict[str, set[int]]:
    """Each word of the entries' aliases -> the entries (by index) that have it."""
    out: dict[str, set[int]] = {}
    for i, e in enumerate(vocab):
        for alias in e.aliases:
            for w in alias.split():
                out.setdefault(w, set()).add(i)
    return out


def _fuzzy_hits(low: str, vocab: Sequence[VocabEntry]) -> list[tuple[int, int, VocabEntry]]:
    """Entries heard a little wrong, scored with ``rapidfuzz``, or named by a first word only
    they have ("the Benadryl"); a word that is itself a word of some entry was heard right and
    is no candidate for another."""
    owners = _alias_words(vocab)
    toks = [(m.start(), m.end(), m.group(0)) for m in _TOKEN_RE.finditer(low)]
    hits: list[tuple[float, int, int, VocabEntry]] = []
    for k, e in enumerate(vocab):
        for alias in e.aliases:
            aw = alias.split()
            if not aw or len(aw[0]) < 4 or not aw[0].isalpha() or not aw[0].isascii():
                continue
            own = {w for w in aw[1:] if w.isalpha() and len(w) > 3 and owners.get(w) == {k}}
            alone = owners.get(aw[0]) == {k}
            # "Benadryl" names "Benadryl cough syrup"; a note ("Saturday and Sunday only") or a
            # choice ("Theme or fondant cakes (cartoon ...") is named by no first word
            named_by_first = (
                alone
                and len(aw) > 1
                and all(w.isalnum() for w in aw)
                and not {"and", "or", "only"} & set(aw)
                and aw[0] not in WEEKDAYS
                and aw[0] not in MONTHS
            )
            for i, (start, end, tok) in enumerate(toks):
                if named_by_first and tok == aw[0]:
                    hits.append((100.0, start, end, e))  # "the Benadryl": its own first word
                    continue
                if len(tok) < 4 or tok in STOPWORDS or tok in owners or not tok.isalpha():
                    continue
                score = fuzz.ratio(tok, aw[0])
                nxt = [j for j in range(i + 1, min(i + 3, len(toks))) if toks[j][2] in own]
                if alone and score >= FUZZY_ALONE and len(tok) >= 5 and tok[0] == aw[0][0]:
                    hits.append((score, start, end, e))
                elif score >= FUZZY_WITH_NEXT and nxt:
                    hits.append((score, start, toks[nxt[0]][1], e))
    hits.sort(key=lambda h: -h[0])
    return [(a, b, e) for _, a, b, e in hits]


def match_vocab(
    text: str, vocab: Sequence[VocabEntry], *, fuzzy: bool = True
) -> list[tuple[int, int, VocabEntry]]:
    """Non-overlapping vocabulary matches in ``text``, exact ones first (longest first), then
    with ``fuzzy`` entries heard a little wrong where nothing exact matched."""
    low = loanwords_in_latin(text.lower())
    hits: list[tuple[int, int, VocabEntry]] = []
    for e in vocab:
        for alias in e.aliases:
            pat = re.escape(alias)
            if alias[:1].isascii() and alias[:1].isalnum():
                pat = r"(?<![a-z0-9])" + pat
            if alias[-1:].isascii() and alias[-1:].isalnum():
                pat += r"(?:s|es)?(?![a-z0-9])"
            for m in re.finditer(pat, low):
                hits.append((m.start(), m.end(), e))
    hits.sort(key=lambda h: (-(h[1] - h[0]), h[0]))
    if fuzzy:
        hits += _fuzzy_hits(low, vocab)
    taken: list[tuple[int, int, VocabEntry]] = []
    for h in hits:
        if all(h[1] <= t[0] or h[0] >= t[1] for t in taken):
            taken.append(h)
    taken.sort(key=lambda h: h[0])
    return taken
