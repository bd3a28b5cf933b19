"""What the caller's words mean to a receptionist: why they call and the values they give.

The grounded brain gets one English utterance at a time from speech-to-text. This module turns it
into the few things a rule-based receptionist acts on:

- **call type**: which of the tenant's call types the caller wants, scored from generic cue words
  (order, book, cancel, complaint, refill, report ...) mapped onto the tenant's own call-type names
  and descriptions, plus words shared with those descriptions. Nothing is hard-coded per tenant.
- **values**: dates, times, names, phone numbers and weights are read by
  :mod:`receptionist.language` (shared with the post-call analyzer), and conversation acts
  (yes / no, goodbye ...) by :mod:`receptionist.language.cues`.
- **field plans**: for each field of each call type, how to ask for it ("Would you like pickup or
  delivery?", from the field's type and description) and how to recognise its value (a date, a
  name, one of the quoted options, items from the menu, a stylist named in the files ...).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from receptionist.language.text import lower_clean, normalise, singular_words, stem, wordset
from receptionist.tenants.model import CallType, FieldSpec

from .knowledge import Knowledge, MenuItem, tokens

__all__ = [
    "MESSAGE_FIELD",
    "Entity",
    "FieldPlan",
    "IntentScore",
    "has_action_cue",
    "is_enquiry_type",
    "join_or",
    "name_entities",
    "plan_fields",
    "score_call_types",
]


# --------------------------------------------------------------------------- call types

# concept -> (words in a call type's name/description that mean the call type handles it,
#             what a caller says for it, weight)
_CONCEPTS: dict[str, tuple[tuple[str, ...], tuple[str, ...], float]] = {
    "order": (
        ("order", "buy", "purchase"),
        ("order", "ordering", "buy", "purchase", "deliver", "delivery", "pickup", "pick up",
         "send me", "get me", "parcel", "takeaway", "take away", "pick it up", "pick them up",
         "collect it", "collect them", "keep ready", "ready for me", "send it", "send them",
         # romanised Hindi: "bhej do" (send), "chahiye" (I want), "mangwana" (to have it brought)
         "bhej do", "bhej dijiye", "bhejna", "chahiye", "mangwana", "le jaunga", "pickup karunga"),
        2.0,
    ),
    "book": (
        ("appointment", "book", "booking", "consultation", "visit"),
        ("appointment", "book", "booking", "slot", "schedule", "reserve", "come in", "visit",
         "consultation", "consult", "see the doctor", "see dr", "see doctor", "check up",
         "see him", "see her", "see me", "see my", "examine", "show him", "show her",
         "checkup", "show to the doctor", "get a", "come for",
         "book karna", "book kar do", "book kijiye", "dikhana hai", "milna hai"),
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
         "you sent", "sent me", "was delivered", "i received", "we received", "i got the",
         "sour", "expired", "rotten", "smelled", "smells bad", "fungus", "mould", "mold",
         "gone off", "leaking", "torn"),
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
NAMED_ONLY_IN_PASSING = 0.75
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
    r"please (?:book|order|send|cancel|repeat|keep)|keep (?:a|an|one|two|three|\d+) |"
    r"want to (?:order|book|cancel|place)|"
    r"(?:place|make) an? (?:order|booking|appointment)|order (?:a|an|one|two|some|\d)|"
    r"cancel|reschedule|postpone|complain|complaint|refill)\b"
)


def has_action_cue(text: str) -> bool:
    """Says they want something done (order, book, cancel, complain ...), not only asking.

    "Do you deliver to HSR?" names delivery but asks; "can I order ..." and "I want ..." act.
    """
    return bool(_ACTION.search(lower_clean(text)))


def handles_concept(ct: CallType, concept: str) -> bool:
    """The call type's name or description speaks of ``concept``."""
    described = f"{ct.name.replace('_', ' ')} {ct.description}".lower()
    dstems = _stems(described)
    triggers = _CONCEPTS[concept][0]
    return any((stem(t) in dstems) if " " not in t else (t in described) for t in triggers)


def score_call_types(
    call_types: Sequence[CallType], text: str, item_bonus: dict[str, float] | None = None
) -> list[IntentScore]:
    """Each call type's score for one utterance, best first (0 = no sign of it).

    A concept (order, book, cancel ...) the caller's words show counts for every call type whose
    name or description speaks of it; words shared with a call type's name count too; and
    ``item_bonus`` adds what the brain found in the catalog (a menu item for an order type).
    """
    low = lower_clean(text)
    said = _stems(low)
    out: list[IntentScore] = []
    for ct in call_types:
        described = f"{ct.name.replace('_', ' ')} {ct.description}".lower()
        dstems = _stems(described)
        score = 0.0
        cues: list[str] = []
        nstems = _stems(ct.name.replace("_", " "))
        for concept, (triggers, phrases, weight) in _CONCEPTS.items():
            if not any((stem(t) in dstems) if " " not in t else (t in described) for t in triggers):
                continue
            hits = sum(1 for p in phrases if _has_phrase(low, p))
            if hits:
                # a concept the call type is named for counts in full; one its description
                # only mentions ("a cake made to order") counts less: "deliver a cake" is an
                # order before it is a custom cake
                named = any(stem(t) in nstems for t in triggers)
                score += weight * min(hits, 2) * (1.0 if named else NAMED_ONLY_IN_PASSING)
                cues.append(concept)
        name_words = _stems(ct.name.replace("_", " ")) - _GENERIC
        score += 1.0 * len(name_words & said)
        desc_words = _stems(ct.description) - _GENERIC - name_words
        score += 0.25 * len(desc_words & said)
        score += (item_bonus or {}).get(ct.name, 0.0)
        out.append(IntentScore(ct.name, score, tuple(cues)))
    out.sort(key=lambda s: (-s.score, -len(s.cues)))  # a tie goes to the one the caller named
    return out


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
    return [_plan_field(spec, kb, names) for spec in ct.fields]


def _plan_field(spec: FieldSpec, kb: Knowledge, names: list[Entity]) -> FieldPlan:
    desc = spec.description
    examples = _examples(spec)
    role, options, pool, ents = _field_role(spec, kb, names)
    if role == "entity" and not examples:
        examples = [p.display for p in pool[:3]] or [e.name for e in ents[:3]]
    return FieldPlan(
        spec=spec,
        role=role,
        question=_question(spec, role, options, examples),
        options=options,
        pool=pool,
        entities=ents,
        patient="patient" in f"{spec.name} {desc}".lower(),
        keyword=spec.name.replace("_", " ") if role == "yesno" else "",
    )


_Role = tuple[str, tuple[str, ...], tuple[MenuItem, ...], tuple[Entity, ...]]


def _field_role(spec: FieldSpec, kb: Knowledge, names: list[Entity]) -> _Role:
    """The field's role, with its options (a choice), catalog pool and named entities."""
    desc, t = spec.description, spec.type
    words = _field_words(spec)
    if t == "phone":
        return "phone", (), (), ()
    if t in ("date", "time", "datetime"):
        return t, (), (), ()
    if t == "boolean":
        return "yesno", (), (), ()
    if t in ("number", "integer"):
        kg = re.search(r"\bkg\b|weight|kilo", f"{spec.name} {desc}", re.I)
        return ("kg" if kg else "number"), (), (), ()
    if spec.name == "question":
        return "question", (), (), ()
    if (m := _QUOTED.search(desc)) is not None:
        return "choice", (m.group(1), m.group(2)), (), ()
    if (
        re.search(r"(?:^|_)name$", spec.name)
        and "name" in desc.lower()
        and not (words & {"test", "item", "service", "product"})
    ):
        return "name", (), (), ()
    if t == "list" and re.search(r"\bitems?\b|\bproducts?\b|order", f"{spec.name} {desc}", re.I):
        return "items", (), tuple(kb.products()), ()
    if "address" in spec.name or MESSAGE_FIELD.search(f"{spec.name} {desc}"):
        return "text", (), (), ()
    pool = tuple(it for it in kb.products() if it.context & words)
    known = {a for p in pool for a in (*p.aliases, normalise(p.display), normalise(p.name))}
    ents = tuple(
        e
        for e in names
        if e.context & words
        and singular_words(normalise(e.name)) not in known
        and normalise(e.name) not in known
    )
    role = "entity" if pool or (ents and t == "string") else ("list" if t == "list" else "text")
    return role, (), pool, ents
