"""What the caller's words mean to a receptionist: why they call and the values they give.

The grounded brain gets one English utterance at a time from speech-to-text. This module turns it
into the few things a rule-based receptionist acts on:

- **call type**: which of the tenant's call types the caller wants, scored from generic cue words
  (order, book, cancel, complaint, refill, report ...) mapped onto the tenant's own call-type names
  and descriptions, plus words shared with those descriptions. Nothing is hard-coded per tenant.
- **conversation acts**: yes / no, goodbye, thanks, greeting, asking for a human, a question, noise.
- **values**: dates, times, names, phone numbers and weights. The pure extractors of the post-call
  analyzer (:mod:`receptionist.postcall.offline_analyzer`) are reused; what a live dialogue needs
  on top (a bare "11" as a time after "what time?", "Priya" alone after "your name?", lower-case
  speech-to-text output) is added here.
- **field plans**: for each field of each call type, how to ask for it ("Would you like pickup or
  delivery?", from the field's type and description) and how to recognise its value (a date, a
  name, one of the quoted options, items from the menu, a stylist named in the files ...).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from receptionist.postcall.offline_analyzer import (
    extract_dates,
    extract_names,
    extract_phones,
    extract_quantities,
    extract_times,
)
from receptionist.tenants.model import CallType, FieldSpec

from .knowledge import (
    Knowledge,
    MenuItem,
    nfc,
    normalise,
    parse_count,
    singular_words,
    stem,
    tokens,
    weights_said_plainly,
    wordset,
)

__all__ = [
    "MESSAGE_FIELD",
    "Entity",
    "FieldPlan",
    "IntentScore",
    "clean",
    "has_action_cue",
    "is_enquiry_type",
    "is_goodbye",
    "is_greeting",
    "is_no",
    "is_noise",
    "is_question",
    "is_thanks",
    "is_yes",
    "join_or",
    "name_entities",
    "parse_date",
    "parse_kg",
    "parse_name",
    "parse_number",
    "parse_phone",
    "parse_time",
    "plan_fields",
    "question_strength",
    "score_call_types",
    "wants_human",
]


# --------------------------------------------------------------------------- basics


def clean(text: str) -> str:
    """Speech-to-text output tidied: one line, single spaces, no stray punctuation runs."""
    s = nfc(text or "").replace("\n", " ")
    s = re.sub(r"\[[^\]]*\]|\([^)]*noise[^)]*\)", " ", s)  # "[noise]", "(background noise)"
    s = re.sub(r"\s+", " ", s)
    return s.strip(" \t-–—")


def _low(text: str) -> str:
    return clean(text).lower().replace("’", "'")


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", _low(text))


_NOISE_WORDS = wordset(
    "um umm uh uhh hmm hm mm mmm er erm ah ahh oh eh huh noise music static beep"
)


def is_noise(text: str) -> bool:
    """Nothing a receptionist could act on: empty, punctuation, or only um/uh/hmm."""
    words = _words(text)
    return not words or all(w in _NOISE_WORDS for w in words)


_YES = re.compile(
    r"^(?:yes|yeah|yep|yup|ya|yah|haan|han|ha ji|ji haan|ji|sure|correct|right|that's right|"
    r"that is right|exactly|perfect|ok|okay|fine|alright|all right|of course|absolutely|"
    r"confirm|confirmed|go ahead|please do|do it|sounds good|that's correct|thats right|"
    r"yes please|correct yes|that's it|thats it|it is|it's right|done)\b",
    re.I,
)
_NO = re.compile(
    r"^(?:no|nope|nah|nahi|nahin|not really|not|wrong|incorrect|that's wrong|"
    r"that is wrong|that's not right|not right|wait|hold on|actually no)\b",
    re.I,
)


def _strip_lead(text: str) -> str:
    return re.sub(r"^(?:um+|uh+|hmm+|er+|ah+|oh|well|so)\b[\s,.!]*", "", _low(text)).strip()


def is_yes(text: str) -> bool:
    s = _strip_lead(text)
    return bool(_YES.match(s)) and not _NO.match(s)


def is_no(text: str) -> bool:
    return bool(_NO.match(_strip_lead(text)))


_BYE = re.compile(
    r"\b(?:bye|goodbye|good bye|bye bye|see you|good night|that's all|that is all|thats all|"
    r"that's it for now|nothing else|no thanks|no thank you|nothing more|i'll call (?:you )?back|"
    r"i will call (?:you )?back|call (?:you )?later|let me think|i'll think|i will think|"
    r"i'll get back|i will get back|i'll discuss|i will discuss|hang up|i'll walk in|"
    r"i will walk in)\b",
    re.I,
)


def is_goodbye(text: str) -> bool:
    """The caller is ending the call ("thank you, bye", "that's all", "I'll call back later")."""
    return bool(_BYE.search(_low(text)))


_THANKS = re.compile(
    r"^(?:(?:ok(?:ay)?|great|good|fine|alright|cool|perfect|nice|achha|"
    r"theek hai)[\s,.!]*)*(?:thank you|thanks|thank u|thankyou|dhanyavaad|"
    r"dhanyavad|shukriya)(?: (?:so much|very much|a lot))?[\s,.!]*$",
    re.I,
)


def is_thanks(text: str) -> bool:
    """Only thanks ("great, thank you"): after an answer that closes an enquiry."""
    return bool(_THANKS.match(_low(text)))


_GREETING_WORDS = re.compile(
    r"\b(?:hello|hi|hey|hai|good (?:morning|afternoon|evening)|namaste|namaskar|vanakkam|"
    r"how are you(?: doing)?|there|madam|sir|ji|can you hear me|am i audible)\b",
    re.I,
)


def is_greeting(text: str) -> bool:
    """A greeting and nothing else ("Hello?", "Hi, good morning")."""
    low = _low(text)
    rest = _GREETING_WORDS.sub(" ", low)
    return bool(_GREETING_WORDS.search(low)) and not re.sub(r"[\s,.!?]+", "", rest)


_HUMAN = re.compile(
    r"\b(?:(?:speak|talk)\s+(?:to|with)\s+(?:a\s+|the\s+|some\s*one|some\s+body)?\s*"
    r"(?:human|person|real person|owner|manager|someone|somebody|staff|doctor|proprietor|boss|"
    r"receptionist)|human being|real person|connect me|transfer me|call me back|callback|"
    r"call back to me|have (?:the owner|someone|somebody) call)\b",
    re.I,
)


def wants_human(text: str) -> bool:
    return bool(_HUMAN.search(_low(text)))


_QUESTION_START = re.compile(
    r"^(?:what|what's|whats|when|where|which|who|whom|why|how|do|does|did|is|are|can|could|"
    r"will|would|should|may|is there|are there|tell me|i want to know|i wanted to know|"
    r"i'd like to know|could you tell|can you tell|kya|kitna|kitne|kab|kahan)\b",
    re.I,
)


def question_strength(text: str) -> int:
    """2: clearly asks (question word first, "how much"); 1: only a '?' (speech-to-text adds
    one to a rising "Saturday?"); 0: no question."""
    s = _strip_lead(text)
    s = re.sub(r"^(?:and|also|then|but|hi|hello|sorry|excuse me|ok|okay)\b[\s,]*", "", s)
    if _QUESTION_START.match(s):
        return 2
    if re.search(
        r"\bhow much\b|\bprice of\b|\bcost of\b|\bwhat time\b|\btimings?\b|"
        r"\bdo you\b|\bis there\b|\bare you\b|\bcan i\b|\bcan you\b",
        s,
    ):
        return 2
    return 1 if "?" in s else 0


def is_question(text: str) -> bool:
    """Asks something: a '?', a question word first, or 'how much' / 'price of' anywhere."""
    return question_strength(text) > 0


# --------------------------------------------------------------------------- call types

# concept -> (words in a call type's name/description that mean the call type handles it,
#             what a caller says for it, weight)
_CONCEPTS: dict[str, tuple[tuple[str, ...], tuple[str, ...], float]] = {
    "order": (
        ("order", "buy", "purchase"),
        ("order", "ordering", "buy", "purchase", "deliver", "delivery", "pickup", "pick up",
         "send me", "get me", "parcel", "takeaway", "take away"),
        2.0,
    ),
    "book": (
        ("appointment", "book", "booking", "consultation", "visit"),
        ("appointment", "book", "booking", "slot", "schedule", "reserve", "come in", "visit",
         "consultation", "consult", "see the doctor", "see dr", "see doctor", "check up",
         "see him", "see her", "see me", "see my", "examine", "show him", "show her",
         "checkup", "show to the doctor", "get a", "come for"),
        2.0,
    ),
    "cancel": (
        ("cancel", "cancels", "cancellation", "reschedule", "move"),
        ("cancel", "cancellation", "reschedule", "postpone", "prepone", "move my", "shift my",
         "move it", "shift it", "had booked", "have booked", "i booked", "already booked",
         "booked for", "is booked",
         "change my appointment", "change the appointment", "can't come", "cannot come",
         "can't make it", "won't be able", "not able to come", "not coming", "call off"),
        3.0,
    ),
    "complaint": (
        ("complaint", "unhappy", "wrong", "problem"),
        ("complaint", "complain", "unhappy", "not happy", "wrong", "late", "stale", "rude",
         "not fresh", "disappointed", "refund", "burnt", "melted", "broken", "hair in",
         "never arrived", "not delivered", "didn't come", "did not come", "spoiled", "spoilt",
         "bad quality", "terrible", "awful", "not acceptable", "unacceptable", "worst",
         "problem with", "issue with", "missing", "damaged", "instead of", "cold", "hard",
         "you sent", "sent me", "was delivered", "i received", "we received", "i got the"),
        2.5,
    ),
    "custom": (
        ("custom", "birthday", "anniversary", "theme", "made to order"),
        ("custom", "birthday", "anniversary", "theme", "photo cake", "fondant", "write on",
         "written on", "message on", "tier", "tiered", "design", "cartoon", "unicorn",
         "personalised", "personalized", "made to order", "wedding cake", "number cake"),
        2.5,
    ),
    "refill": (
        ("refill", "prescription", "medicine", "repeat"),
        ("refill", "repeat", "prescription", "medicine", "medicines", "tablet", "tablets",
         "ran out", "run out", "finished my", "dawai", "dawa", "goli"),
        2.5,
    ),
    "report": (
        ("report", "lab", "test"),
        ("report", "reports", "lab", "test", "tests", "sample", "result", "results",
         "blood test"),
        2.0,
    ),
}  # fmt: skip
_GENERIC = wordset(
    "customer caller patient wants want asks ask general question questions e g eg without "
    "their own one more any other something about name phone number date time"
)
_ENQUIRY_WORDS = ("enquiry", "inquiry", "question", "general", "info")


def _has_phrase(low: str, phrase: str) -> bool:
    return re.search(r"(?<![a-z])" + re.escape(phrase) + r"(?![a-z])", low) is not None


def _stems(text: str) -> set[str]:
    return {stem(w) for w in re.findall(r"[a-z]+", text.lower()) if len(w) > 2}


@dataclass(frozen=True, slots=True)
class IntentScore:
    name: str
    score: float
    cues: tuple[str, ...]  # the concepts that fired


def is_enquiry_type(ct: CallType) -> bool:
    """A call type for questions only ("enquiry", "price_enquiry", "General question ...")."""
    text = f"{ct.name} {ct.description}".lower()
    return any(w in text for w in _ENQUIRY_WORDS)


_ACTION = re.compile(
    r"\b(?:i want|i wanna|i'd like|i would like|i need|i'll take|i will take|i'll have|give me|"
    r"(?:can|could|may) i (?:get|have|order|book|place|make)|(?:please )?book (?:me|a|an|it|my)|"
    r"please (?:book|order|send|cancel|repeat)|want to (?:order|book|cancel|place)|"
    r"(?:place|make) an? (?:order|booking|appointment)|order (?:a|an|one|two|some|\d)|"
    r"cancel|reschedule|postpone|complain|complaint|refill)\b"
)


def has_action_cue(text: str) -> bool:
    """Says they want something done (order, book, cancel, complain ...), not only asking.

    "Do you deliver to HSR?" names delivery but asks; "can I order ..." and "I want ..." act.
    """
    return bool(_ACTION.search(_low(text)))


def score_call_types(
    call_types: Sequence[CallType], text: str, item_bonus: dict[str, float] | None = None
) -> list[IntentScore]:
    """Each call type's score for one utterance, best first (0 = no sign of it).

    A concept (order, book, cancel ...) the caller's words show counts for every call type whose
    name or description speaks of it; words shared with a call type's name count too; and
    ``item_bonus`` adds what the brain found in the catalog (a menu item for an order type).
    """
    low = _low(text)
    said = _stems(low)
    out: list[IntentScore] = []
    for ct in call_types:
        described = f"{ct.name.replace('_', ' ')} {ct.description}".lower()
        dstems = _stems(described)
        score = 0.0
        cues: list[str] = []
        for concept, (triggers, phrases, weight) in _CONCEPTS.items():
            if not any((stem(t) in dstems) if " " not in t else (t in described) for t in triggers):
                continue
            hits = sum(1 for p in phrases if _has_phrase(low, p))
            if hits:
                score += weight * min(hits, 2)
                cues.append(concept)
        name_words = _stems(ct.name.replace("_", " ")) - _GENERIC
        score += 1.0 * len(name_words & said)
        desc_words = _stems(ct.description) - _GENERIC - name_words
        score += 0.25 * len(desc_words & said)
        score += (item_bonus or {}).get(ct.name, 0.0)
        out.append(IntentScore(ct.name, score, tuple(cues)))
    out.sort(key=lambda s: (-s.score, -len(s.cues)))  # a tie goes to the one the caller named
    return out


# --------------------------------------------------------------------------- values


def parse_date(text: str, today: date, *, lenient: bool = False) -> date | None:
    """First date said ("tomorrow", "Saturday", "25th November", "25/11"), from ``today``.

    A bare "the 28th" counts when we just asked for a date (``lenient``) or after on/for/by;
    otherwise "9th block, 22nd cross" in an address would be a date.
    """
    found = [d for _, d in extract_dates(clean(text), today)]
    if found:
        # "fever since yesterday, can he come tomorrow?": the day asked for is ahead
        return next((d for d in found if d >= today), found[0])
    low = _low(text)
    lead = r"\b" if lenient else r"\b(?:on|for|by|before|till|until)\s+"
    m = re.search(
        lead + r"(?:the\s+)?(\d{1,2})(?:st|nd|rd|th)\b(?!\s*(?:block|cross|main|floor|"
        r"street|road|stage|phase|sector))",
        low,
    )
    if m:
        day = int(m.group(1))
        year, month = today.year, today.month
        if day < today.day:
            month, year = (1, year + 1) if month == 12 else (month + 1, year)
        try:
            return date(year, month, day)
        except ValueError:
            return None
    return None


_HOUR_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
}  # fmt: skip


def _shop_hour(h: int) -> int:
    """An hour said without am/pm: 1-7 means afternoon/evening for a shop or clinic."""
    return h + 12 if 1 <= h <= 7 else h


def parse_time(text: str, *, lenient: bool = False) -> str | None:
    """'HH:MM' for "4 pm", "half past ten", "evening 6", "noon"; with ``lenient`` (we just
    asked for a time) also a bare "11" or "around five"."""
    low = _low(text)
    if re.search(r"\bnoon\b|\bmid ?day\b", low):
        return "12:00"
    if re.search(r"\bmidnight\b", low):
        return "00:00"
    found = extract_times(clean(text))
    if found:
        return found[0][1]
    m = re.search(r"\b(morning|afternoon|evening|night)\b", low)
    bare = re.search(
        r"(?:^|\b(?:at|around|by|about|after|before|say)\s+)(\d{1,2}|"
        + "|".join(_HOUR_WORDS)
        + r")(?:\s*(?:o'?clock|ish))?(?:\s*(?:in the\s+)?(morning|afternoon|evening|night))?\b"
        r"(?!\s*(?:kg|kilo|g\b|gram|people|person|pieces|days?|hours?|minutes?|mins?))",
        low,
    )
    if bare and (lenient or re.search(r"\b(?:at|around|by|o'?clock)\b", bare.group(0))):
        word = bare.group(1)
        h = int(word) if word.isdigit() else _HOUR_WORDS[word]
        if not 0 <= h <= 23:
            return None
        part = bare.group(2) or (m.group(1) if m else None)
        if part in ("afternoon", "evening", "night") and h < 12:
            h += 12
        elif part is None and h <= 12:
            h = _shop_hour(h)
        return f"{h:02d}:00"
    return None


def parse_phone(text: str) -> str | None:
    found = extract_phones(clean(text))
    return found[-1] if found else None


def parse_kg(text: str, *, lenient: bool = False) -> Decimal | None:
    """A weight in kg ("2 kg", "one and a half kilo", "500 grams"); a bare "2" if ``lenient``."""
    found = extract_quantities(weights_said_plainly(clean(text)))
    if found:
        return Decimal(str(found[0][1]))
    if lenient:
        n = parse_number(text)
        if n is not None and 0 < n <= 50:
            return n
    return None


def parse_number(text: str) -> Decimal | None:
    low = _low(text)
    if re.search(r"\bone and a half\b|\bone point five\b", low):
        return Decimal("1.5")
    if re.search(r"\b(?:half|a half)\b", low) and not re.search(r"\bhalf past\b", low):
        return Decimal("0.5")
    m = re.search(r"\b(\d+(?:\.\d+)?)\b", low)
    if m:
        return Decimal(m.group(1))
    for w in _words(low):
        n = parse_count(w)
        if n is not None and w not in ("a", "an"):
            return Decimal(n)
    return None


_NAME_STOP = wordset("""
    a an the and or my name is it it's its this that i i'm am me yes no ok okay sure please
    thank thanks you your hello hi sorry calling from here speaking just not for of to with on
    at in by morning evening afternoon today tomorrow sunday monday tuesday wednesday thursday
    friday saturday order cake book booking appointment want need would like can could
    delivery pickup number phone same one two three ji sir madam mr mrs ms dr doctor patient
    haan hmm um uh well so actually correct right fine good great be will call back if possible
    any anyone anybody whoever free available there day after next this coming week tonight
    noon night sahi hai theek thik achha acha nahi haa gents ladies men women kids""")
_NAME_INTRO = re.compile(
    r"\b(?:my name is|my name's|name is|name's|the name is|under the name|name)\s*[:,]?\s+"
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
        if wl in _NAME_STOP or not wl.isalpha():
            break
        kept.append(w.strip(".'"))
    if not kept:
        return None
    return " ".join(k if k[:1].isupper() and not k.isupper() else k.capitalize() for k in kept)


def parse_name(text: str, *, lenient: bool = False, patient: bool = False) -> str | None:
    """A name the caller gives: "my name is Priya Nair", "this is Kavya"; with ``lenient``
    (we just asked for it) also a bare "Priya" or "It's Rohit Menon".

    When the text is properly cased (speech-to-text usually capitalises names), a name after
    "for my son" must be capitalised too, so "for my son, day after tomorrow" is no name.
    """
    s = re.sub(r"\b(Mohd|Md|Mr|Mrs|Ms|Smt|Shri|Sri)\.", r"\1", clean(text))  # "Mohd. Salim"
    cased = s != s.lower()
    intros = ([_PATIENT_INTRO] if patient else []) + [_NAME_INTRO]
    for rx in intros:
        m = rx.search(s)
        if m and (not cased or m.group(1)[:1].isupper()) and (name := _tidy_name(m.group(1))):
            return name
    found = extract_names(s)  # "This is Kavya", "I am Rohit Menon" (capitalised names)
    if found:
        name = _tidy_name(found[0][1])
        if name:
            return name
    if not lenient:
        return None
    # "Janani, 9791 001 002" / "Book me for 4 pm. Janani." : a clause that is only a name;
    # in lower-case text only the first clause, as anything else could be a name then
    clauses = re.split(r"[,.;!?]|\s+(?:and|my number|number|phone)\b", s)
    for clause in clauses if cased else clauses[:1]:
        bare = re.sub(
            r"^(?:(?:yes|yeah|sure|ok|okay|it's|it is|this is|i am|i'm|myself|name|my name|"
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


# --------------------------------------------------------------------------- field plans

# a field holding words to write or print ("message_on_cake": "Exact words to write on the cake")
MESSAGE_FIELD = re.compile(r"message|\bwrite\b|\bwritten\b|\bprint\b", re.I)


@dataclass(frozen=True, slots=True)
class Entity:
    """A name in the files that is no priced item: a stylist, a doctor."""

    name: str
    aliases: tuple[str, ...]
    context: frozenset[str]


@dataclass(frozen=True, slots=True)
class FieldPlan:
    """How to ask for and recognise one field of a call type."""

    spec: FieldSpec
    # name phone date time datetime yesno kg number choice items entity list text question
    role: str
    question: str
    options: tuple[str, ...] = ()  # choice: the quoted values of the description
    pool: tuple[MenuItem, ...] = ()  # items / entity: catalog items it can hold
    entities: tuple[Entity, ...] = ()  # entity: other names it can hold
    patient: bool = False  # name: someone else's name (the patient)
    keyword: str = ""  # yesno: the words that mean "yes" when said ("eggless")

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def short(self) -> bool:
        """Quick to answer, so it can be asked together with another one."""
        return self.role in ("name", "date", "time", "choice", "yesno", "kg")


_GENERIC_FIELD_WORDS = wordset(
    "customer caller patient name phone number want wanted asked prefer preferred e g eg the "
    "or and of for if any"
)
_QUOTED = re.compile(r"'([^']+)'\s+or\s+'([^']+)'")


def _field_words(spec: FieldSpec) -> set[str]:
    desc = re.split(r",?\s*\be\.?g\.?", spec.description, maxsplit=1)[0]
    desc = re.sub(r"\(.*?\)", " ", desc)
    return set(tokens(f"{spec.name.replace('_', ' ')} {desc}")) - _GENERIC_FIELD_WORDS


def _examples(spec: FieldSpec) -> list[str]:
    m = re.search(r"\be\.?g\.?,?\s*(.+?)\)?$", spec.description)
    if not m:
        return []
    parts = [p.strip(" '\".") for p in re.split(r",|\bor\b", m.group(1)) if p.strip(" '\".")]
    return parts[:3]


def _you(text: str) -> str:
    """Rewrite a field description so it can be said to the caller."""
    s = re.sub(r"\b(?:customer|caller)'s\b", "your", text, flags=re.I)
    s = re.sub(r"\bthe (?:customer|caller)\b|\b(?:customer|caller)\b", "you", s, flags=re.I)
    s = re.sub(r"\bpatient's\b", "the patient's", s, flags=re.I)
    s = re.sub(r"\bthe the\b", "the", s)
    s = re.sub(r"\byou wants\b", "you want", s)
    return s


def join_or(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]


def _question(spec: FieldSpec, role: str, options: tuple[str, ...], examples: list[str]) -> str:
    desc = spec.description.strip().rstrip(".")
    core = re.split(r",?\s*\be\.?g\.?|\s*\(", desc, maxsplit=1)[0].strip(" ,")
    label = spec.name.replace("_", " ")
    hint = f" For example {join_or(examples)}." if examples else ""
    paren = re.search(r"\(([^)]*)\)", desc)
    note = ""
    if paren and re.search(r"\d", paren.group(1)):
        note = " " + paren.group(1).strip().capitalize().replace("Minimum", "The minimum is") + "."
    if role == "name":
        if re.search(r"patient", desc, re.I):
            return "May I have the patient's full name, please?"
        return "May I have your name, please?"
    if role == "date":
        if spec.name == "date":
            return "For which date would you like it?"
        return re.sub(
            r"\bthe (your|the)\b", r"\1", f"What is the {_you(core[0].lower() + core[1:])}?"
        )
    if role == "time":
        return "And at what time?"
    if role == "datetime":
        return "For which date and time?"
    if role == "choice":
        return f"Would you like {join_or(list(options))}?"
    if role == "yesno":
        m = re.match(
            r"whether\s+(.+?)\s+(?:must|should|needs? to|has to|will)\s+be\s+(.+)$", desc, re.I
        )
        if m:
            return f"Should {_you(m.group(1))} be {m.group(2)}?"
        m = re.match(r"true if\s+(.+)$", desc, re.I)
        if m:
            return f"Is it true that {_you(m.group(1))}?"
        return f"{_you(core)}?"
    if role == "kg":
        return f"How many kilos would you like?{note}"
    if role == "items":
        size = ", and what size or weight" if re.search(r"size|weight", desc, re.I) else ""
        return f"What would you like to order{size}?"
    if role == "entity":
        return f"Which {label.replace(' name', '')} would you like?{hint}"
    core = re.sub(r",\s*(?:for|in|to|if|as)\b.*$", "", core)  # ", for delivery orders"
    lowered = _you(core[0].lower() + core[1:]) if core else label
    if re.match(r"(?:what|which|who|when|where|how|why|your|the)\b", lowered):
        return f"Could you tell me {lowered}?{hint}"
    return f"Could you tell me the {lowered}?{hint}"


def name_entities(kb: Knowledge) -> list[Entity]:
    """Names the files give: first cells of table rows and people named by headings."""
    seen: dict[str, Entity] = {}

    def add(name: str, context: set[str], extra: tuple[str, ...] = ()) -> None:
        name = re.sub(r"\s*\(.*?\)", "", name).strip()
        if not name or len(name) > 40 or not re.search(r"[A-Za-z]", name):
            return
        aliases = {normalise(name), *(normalise(a) for a in extra if a)}
        words = normalise(name).split()
        if words and words[0] == "dr" and len(words) >= 3:  # Dr. Rohit Verma
            aliases |= {" ".join(words[1:]), f"dr {words[-1]}", words[1]}
        key = normalise(name)
        old = seen.get(key)
        if old:
            context |= set(old.context)
            aliases |= set(old.aliases)
        seen[key] = Entity(
            name, tuple(sorted(a for a in aliases if len(a) > 2)), frozenset(context)
        )

    for fact in kb.facts:
        src = set(tokens(re.sub(r"\.\w+$", "", fact.source).replace("_", " ")))
        section = set(tokens(_short_section(fact.section)))
        if fact.cells:
            head, value = fact.cells[0]
            add(value, src | set(tokens(head)) | section)
        if fact.topic:
            # "Child specialist (paediatrician): ..." under "Dr. Rohit Verma": what he is called
            label = re.match(r"^([A-Za-z][A-Za-z ]{4,40}?)\s*(?:\(([A-Za-z ]+)\))?:", fact.english)
            roles: tuple[str, ...] = ()
            if label and not _NOT_ROLE.search(label.group(0)):
                roles = (label.group(1).strip(), label.group(2) or "")
            add(fact.topic, src | section, roles)
    # an alias several entities share ("dr sharma") names none of them
    owners: dict[str, int] = {}
    for e in seen.values():
        for a in e.aliases:
            owners[a] = owners.get(a, 0) + 1
    return [
        Entity(e.name, tuple(a for a in e.aliases if owners[a] == 1), e.context)
        for e in seen.values()
    ]


_NOT_ROLE = re.compile(
    r"monday|tuesday|wednesday|thursday|friday|saturday|sunday|timing|hours|address|payment|fee",
    re.I,
)


def _short_section(section: str) -> str:
    return re.split(r"\s+--\s+|\s*\(", section, maxsplit=1)[0]


def plan_fields(
    ct: CallType, kb: Knowledge, entities: list[Entity] | None = None
) -> list[FieldPlan]:
    """How each field of ``ct`` is asked for and recognised, from its type and description."""
    names = name_entities(kb) if entities is None else entities
    plans: list[FieldPlan] = []
    for spec in ct.fields:
        desc = spec.description
        words = _field_words(spec)
        examples = _examples(spec)
        options: tuple[str, ...] = ()
        pool: tuple[MenuItem, ...] = ()
        ents: tuple[Entity, ...] = ()
        keyword = ""
        t = spec.type
        if t == "phone":
            role = "phone"
        elif t in ("date", "time", "datetime"):
            role = t
        elif t == "boolean":
            role = "yesno"
            keyword = spec.name.replace("_", " ")
        elif t in ("number", "integer"):
            role = (
                "kg" if re.search(r"\bkg\b|weight|kilo", f"{spec.name} {desc}", re.I) else "number"
            )
        elif spec.name == "question":
            role = "question"
        elif (m := _QUOTED.search(desc)) is not None:
            role, options = "choice", (m.group(1), m.group(2))
        elif (
            re.search(r"(?:^|_)name$", spec.name)
            and "name" in desc.lower()
            and not (words & {"test", "item", "service", "product"})
        ):
            role = "name"
        elif t == "list" and re.search(
            r"\bitems?\b|\bproducts?\b|order", f"{spec.name} {desc}", re.I
        ):
            role, pool = "items", tuple(kb.products())
        elif "address" in spec.name or MESSAGE_FIELD.search(f"{spec.name} {desc}"):
            role = "text"
        else:
            pool = tuple(it for it in kb.products() if it.context & words)
            known = {a for p in pool for a in (*p.aliases, normalise(p.display), normalise(p.name))}
            ents = tuple(
                e
                for e in names
                if e.context & words
                and singular_words(normalise(e.name)) not in known
                and normalise(e.name) not in known
            )
            role = (
                "entity"
                if pool or (ents and t == "string")
                else ("list" if t == "list" else "text")
            )
        if role == "entity" and not examples:
            examples = [p.display for p in pool[:3]] or [e.name for e in ents[:3]]
        plans.append(
            FieldPlan(
                spec=spec,
                role=role,
                question=_question(spec, role, options, examples),
                options=options,
                pool=pool,
                entities=ents,
                patient="patient" in f"{spec.name} {desc}".lower(),
                keyword=keyword,
            )
        )
    return plans
