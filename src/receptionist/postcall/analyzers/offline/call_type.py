"""Which of the tenant's call types a call is: keywords from the schema and a multilingual list.

Each call type gets keywords from its own schema (name, description, field names/descriptions)
plus a small built-in intent list (English, Hindi in Devanagari, romanised Hinglish); caller
words weigh 1, agent words only break ties (the local engine asks "eggless?" of any cake).
Typed details a type requires (date, phone ...), said by the caller, add to it; questions add
to the enquiry-like type; ties go to the type whose required fields were found
most; no match at all goes to the enquiry-like type.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from receptionist.language.cues import is_wrong_number
from receptionist.language.text import nfc, rx, sentences, stem, words
from receptionist.tenants.model import CallType, FieldSpec, Tenant

from .context import Context, Turn, key_words, read_turns
from .details import extract_details, extract_field

__all__ = ["choose_call_type"]

# the agent's words say what the agent asked or offered, not what the caller wanted; they only
# break a tie between types the caller's words weigh the same
AGENT_WEIGHT = 0.05

# concept -> (words that name the concept in a call type's name/description,
#             words a caller uses for it: English, Devanagari Hindi, romanised Hinglish)
_INTENTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "order": (
        ("order", "buy", "purchase"),
        ("order", "ordering", "buy", "deliver", "delivery", "pickup", "pick up", "parcel", "send",
         "keep it ready", "keep ready",
         "ऑर्डर", "आर्डर", "chahiye", "चाहिए", "bhej", "भेज", "mangwana", "मंगवाना", "loaf",
         "pastries", "pastry", "brownies", "cookies", "puffs", "pack"),
    ),
    "custom": (
        ("custom", "birthday", "anniversary", "theme", "made to order"),
        ("birthday", "anniversary", "theme", "photo cake", "fondant", "custom", "write on",
         "written", "message on", "likhna", "लिखना", "जन्मदिन", "janamdin", "tier", "tiered",
         "eggless", "design", "cartoon", "unicorn"),
    ),
    "appointment": (
        ("appointment", "book", "consultation", "booking"),
        ("appointment", "book", "booking", "slot", "consultation", "consult", "show to the doctor",
         "टीका", "tika", "teeka", "vaccination", "vaccine", "लगवाना",
         "अपॉइंटमेंट", "अपोइंटमेंट", "बुक", "dikhana", "दिखाना", "milna", "मिलना", "haircut",
         "facial", "come in", "visit", "checkup", "check up", "चेकअप", "नंबर लगा", "number laga"),
    ),
    "cancel": (
        ("cancel", "cancels", "reschedule", "move"),
        ("cancel", "cancelled", "can't come", "cannot come", "won't be able", "reschedule",
         "won't make it", "can't make it", "drop it", "not coming", "booked", "my booking",
         "move it", "shift it", "change the date", "change the time",
         "postpone", "prepone", "shift my", "move my", "change my appointment", "कैंसल", "रद्द",
         "nahi aa paunga", "nahi aa paungi", "नहीं आ पाऊंगा", "नहीं आ पाऊँगी"),
    ),
    "complaint": (
        ("complaint", "unhappy", "wrong", "problem"),
        ("complaint", "complain", "unhappy", "wrong", "late", "stale", "spoiled", "bad", "rude",
         "not fresh", "disappointed", "refund", "शिकायत", "shikayat", "kharab", "खराब", "ख़राब",
         "galat", "गलत", "ग़लत", "burnt", "melted", "broken", "hair in", "never arrived",
         "didn't come", "not delivered", "expired", "damaged", "leaking", "missing", "bought",
         "gave me", "sent me", "instead of", "you delivered", "you sent", "you gave",
         "overcharged", "charged me"),
    ),
    "price": (
        ("price", "prices", "enquiry", "question", "fees"),
        ("price", "cost", "how much", "rate", "charges", "charge", "kitna", "kitne", "कितना",
         "कितने", "दाम", "कीमत", "फ़ीस", "फीस", "fees", "fee", "rupees"),
    ),
    "info": (
        ("enquiry", "question", "timings", "general", "location"),
        ("timing", "timings", "open", "close", "closed", "address", "where", "location", "kab",
         "कब", "कहाँ", "kahan", "do you", "is there", "sunday", "parking", "available",
         "समय", "टाइम", "khule", "खुला", "खुले", "wrong number"),
    ),
    "refill": (
        ("refill", "prescription", "medicine", "repeat"),
        ("refill", "repeat", "medicine", "medicines", "tablet", "tablets", "prescription",
         "दवा", "दवाई", "dawa", "dawai", "dava", "गोली", "goli", "पर्चा", "parcha", "khatam",
         "खत्म", "ख़त्म", "mg"),
    ),
    "report": (
        ("report", "lab", "test"),
        ("report", "रिपोर्ट", "test", "टेस्ट", "जाँच", "जांच", "janch", "jaanch", "sample",
         "सैंपल", "cbc", "thyroid", "थायराइड", "hba1c", "lipid", "sugar test", "blood test",
         "urine", "vitamin", "ecg"),
    ),
}  # fmt: skip
_INTENTS = {
    k: (tuple(nfc(w) for w in a), tuple(nfc(w) for w in b)) for k, (a, b) in _INTENTS.items()
}
_ENQUIRY_WORDS = ("enquiry", "inquiry", "question", "general", "info", "other")


@dataclass(frozen=True)
class _TypeKeywords:
    call_type: CallType
    phrases: dict[str, float]  # lower-case word or phrase -> weight


def _type_keywords(tenant: Tenant) -> list[_TypeKeywords]:
    n = len(tenant.call_types)
    df: dict[str, int] = {}
    own: list[dict[str, float]] = []
    for ct in tenant.call_types:
        kw: dict[str, float] = {}
        for w in key_words(ct.name.replace("_", " ")):
            kw[w] = max(kw.get(w, 0), 1.5)
        for w in key_words(ct.description):
            kw[w] = max(kw.get(w, 0), 1.0)
        for f in ct.fields:
            # a field's examples ("e.g. pineapple, red velvet") are what any type's caller
            # names, not what makes this type
            desc = re.sub(r"\be\.g\..*$", "", f.description)
            for w in key_words(f.name.replace("_", " ") + " " + desc):
                kw[w] = max(kw.get(w, 0), 0.2)
        own.append(kw)
        for w in kw:
            df[w] = df.get(w, 0) + 1
    for kw in own:  # a word shared by several types is no name-word of any of them
        for w, v in kw.items():
            if df[w] > 1 and v > 1.0:
                kw[w] = 1.0
    owners = _concept_owners(tenant)
    out = []
    for ct, kw in zip(tenant.call_types, own, strict=True):
        # words every type has ("name", "phone") tell nothing
        phrases = {w: v * (1.0 - (df[w] - 1) / n) for w, v in kw.items() if df[w] < n}
        for concept, (_, caller_words) in _INTENTS.items():
            weight = owners[concept].get(ct.name, 0.0)
            for cw in caller_words if weight else ():
                phrases[cw] = max(phrases.get(cw, 0.0), weight)
        out.append(_TypeKeywords(ct, phrases))
    return out


def _names_concept(text: str, triggers: tuple[str, ...]) -> bool:
    dwords = set(words(text)) | {stem(w) for w in words(text)}
    return any((t in dwords) if " " not in t else (t in text) for t in triggers)


def _concept_owners(tenant: Tenant) -> dict[str, dict[str, float]]:
    """Which call types a concept's caller words speak for, and how much (type -> weight).

    The types whose name names the concept ("order", "cancellation") fully; a type whose
    description names it in passing ("unhappy with an order", "made to order") half as much: a
    caller complaining speaks of the order too, but an order's words must not make it a
    complaint. "without booking" names no booking.
    """
    out: dict[str, dict[str, float]] = {}
    for concept, (triggers, _) in _INTENTS.items():
        by_name = {
            ct.name
            for ct in tenant.call_types
            if _names_concept(ct.name.replace("_", " "), triggers)
        }
        by_desc = {
            ct.name
            for ct in tenant.call_types
            if _names_concept(" ".join(words(_WITHOUT.sub(" ", ct.description))), triggers)
        }
        if by_name:
            out[concept] = {name: NAMED if name in by_name else NAMED / 2 for name in by_desc}
            out[concept].update(dict.fromkeys(by_name, NAMED))
        else:
            out[concept] = dict.fromkeys(by_desc, NAMED)
    return out


NAMED = 2.0


_WITHOUT = rx(r"\b(?:without|not|no)\s+\w+", re.I)


def _phrase_hits(text_low: str, words: set[str], phrase: str) -> int:
    if " " in phrase or not phrase.isascii():
        if phrase.isascii():
            return len(re.findall(r"\b" + re.escape(phrase) + r"\b", text_low))
        return text_low.count(phrase)
    return 1 if (phrase in words) else 0


_TYPED = ("phone", "date", "time", "datetime", "list", "number", "integer", "boolean")
QUESTION_WEIGHT = 1.0
_BOOKING_VERBS = rx(
    r"\b(?:book|order|cancel|reschedule|want|need|get|chahiye|karna|karwana)\b|चाहिए|बुक|कैंसल", re.I
)
REQUIRED_BONUS = 0.75


def _score_types(tenant: Tenant, turns: Sequence[Turn]) -> dict[str, float]:
    kws = _type_keywords(tenant)
    scores = {k.call_type.name: 0.0 for k in kws}
    for turn in turns:
        low = turn.text.lower()
        said = set(words(low)) | {stem(w) for w in words(low)}
        weight = 1.0 if turn.caller else AGENT_WEIGHT
        for k in kws:
            s = 0.0
            for phrase, v in k.phrases.items():
                hits = _phrase_hits(low, said, phrase)
                if hits:
                    s += v * min(hits, 2)
            scores[k.call_type.name] += weight * s
    return scores


def _enquiry_type(tenant: Tenant) -> CallType:
    for ct in tenant.call_types:
        if any(w in ct.name.lower() for w in _ENQUIRY_WORDS):
            return ct
    for ct in tenant.call_types:
        if any(w in ct.description.lower() for w in _ENQUIRY_WORDS):
            return ct
    return tenant.call_types[0]


def _typed_bonus(ctx: Context, scores: dict[str, float]) -> None:
    """A caller who gives the typed details a booking needs (date, time, phone ...) is booking.

    Only the caller's own words count: a yes to the agent's "Should the cake be eggless?" says
    nothing about what the caller called for.
    """
    ctx = Context(ctx.tenant, [t for t in ctx.turns if t.caller], ctx.now)
    # "Can I get a pedicure tomorrow at 11?": no word of any type, but a booking all the same
    asks_for = any(_BOOKING_VERBS.search(t.text) for t in ctx.turns)
    for ct in ctx.tenant.call_types:
        if scores[ct.name] <= 0 and not asks_for:
            continue
        typed = [f for f in ct.fields if f.required and f.type in _TYPED]
        found = sum(1 for f in typed if _booking_value(ctx, f, extract_field(ctx, f)))
        scores[ct.name] += REQUIRED_BONUS * found


def _booking_value(ctx: Context, spec: FieldSpec, value: Any) -> bool:
    """A value found that speaks for a booking: a date already past ("the cake I picked up
    yesterday") is what a complaint is about, not when something is wanted."""
    if value in (None, [], ""):
        return False
    return not (spec.type == "date" and str(value) < ctx.today.isoformat())


def _questions(turns: Sequence[Turn]) -> int:
    """Questions the caller asked without booking words (a caller who asks is enquiring)."""
    return sum(
        1
        for t in turns
        if t.caller
        for s in sentences(t.text)
        if s.endswith("?") and not _BOOKING_VERBS.search(s)
    )


def _found_required(ctx: Context, name: str) -> int:
    ct = ctx.tenant.call_type(name)
    assert ct is not None
    det = extract_details(ctx, ct)
    return sum(1 for f in ct.required_fields if f in det)


def choose_call_type(
    tenant: Tenant, transcript: Sequence[dict[str, Any]], *, now: datetime | None = None
) -> tuple[str, float]:
    """(call type, confidence in [0, 1]) for a non-empty transcript."""
    turns = read_turns(transcript)
    if any(t.caller and is_wrong_number(t.text) for t in turns):
        return _enquiry_type(tenant).name, 0.6
    scores = _score_types(tenant, turns)
    ctx = Context(tenant, turns, now or datetime.now(ZoneInfo(tenant.timezone)))
    _typed_bonus(ctx, scores)
    enquiry = _enquiry_type(tenant).name
    scores[enquiry] = scores.get(enquiry, 0.0) + QUESTION_WEIGHT * min(_questions(turns), 2)
    best = max(scores.values(), default=0.0)
    if best <= 0:
        return enquiry, 0.2
    top = [name for name, s in scores.items() if s >= best - 1e-9]
    if len(top) > 1:  # a tie goes to the type whose required details were found most
        top.sort(key=lambda name: _found_required(ctx, name), reverse=True)
    total = sum(s for s in scores.values() if s > 0)
    conf = best / total if total else 0.0
    return top[0], round(min(1.0, conf), 2)
