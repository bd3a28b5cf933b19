"""Details of free-text fields: items from the tenant's files, medicines, choices, sentences."""

from __future__ import annotations

import re

from receptionist.language.names import extract_names
from receptionist.language.phones import extract_phones
from receptionist.language.text import rx, sentences, words
from receptionist.tenants.model import FieldSpec

from .context import Context
from .items import extract_items
from .typed import extract_name, relevant_sentences
from .vocabulary import field_vocab

__all__ = ["extract_items", "extract_string"]

_QUOTED_OPTIONS = rx(r"'([^']+)'\s+or\s+'([^']+)'")
_NAME_FIELD = rx(r"(?:^|_)name$")
_ITEM_FIELD_WORDS = {"service", "flavour", "flavor", "test", "doctor", "stylist", "item", "items",
                     "product"}  # fmt: skip
_QUESTION_START = rx(r"(?i)(what|when|where|how|do|is|are|can|kya|क्या|कब|कहाँ)\b")


def _choice(ctx: Context, choices: list[str]) -> str | None:
    """The quoted option ("'pickup' or 'delivery'") the caller named last, by its first four
    letters or, for these two, the way callers say them ("send it to my home")."""
    last: tuple[int, str] | None = None
    for i, t in enumerate(ctx.turns):
        if not t.caller:
            continue
        low = t.text.lower()
        for c in choices:
            at = [low.rfind(c.lower()[:4])]
            cue = _CHOICE_CUES.get(c.lower())
            if cue:
                at += [m.start() for m in cue.finditer(low)]
            if max(at) >= 0:
                pos = i * 10000 + max(at)
                if last is None or pos > last[0]:
                    last = (pos, c)
    return last[1] if last else None


# how callers say the two choices shops offer without naming them
_CHOICE_CUES = {
    "delivery": rx(r"\bdeliver|\bsend\b|\bto my (?:home|house|place|office|flat)\b"),
    "pickup": rx(r"\bpick|\bcollect\b|\bcome and (?:take|get)\b|\bkeep\b.{0,40}\bready\b"),
}


def _message(ctx: Context) -> str | None:
    """Words to write: quoted, or after "write" / "likhna" (the caller's last)."""
    for t in reversed(ctx.turns):
        if not t.caller:
            continue
        m = re.search(r"(?<![A-Za-z])[\"“']([^\"”']{2,40})[\"”'](?![A-Za-z])", t.text) or re.search(
            r"(?:write|likhna|likhiye|लिखना|लिखिए)\s*[:,]?\s*(.{2,40}?)\s*(?:on (?:it|the cake)"
            r"|$|\.|,)",
            t.text,
            re.I,
        )
        if m:
            return m.group(1).strip()
    return None


def _catalog_value(ctx: Context, spec: FieldSpec) -> str | None:
    found = extract_items(ctx, spec)
    if found:
        return " and ".join(found)
    if "stylist" in spec.name and re.search(r"\b(?:any|anyone|anybody)\b", ctx.caller_text(), re.I):
        return "any"
    return None


def _first_question(ctx: Context) -> str | None:
    for t in ctx.turns:
        if t.caller:
            for s in sentences(t.text):
                if "?" in s or _QUESTION_START.match(s):
                    return s.strip()[:200]
    return None


def _sentence_value(ctx: Context, spec: FieldSpec) -> str | None:
    """The caller sentence most about the field (an address: one with address words)."""
    sents = relevant_sentences(ctx, spec)
    if "address" in spec.name:
        sents = [s for s in sents if _ADDRESS_CUES.search(s) and "?" not in s]
        if not sents:
            for t in ctx.turns:
                if t.caller:
                    sents += [s for s in sentences(t.text) if _ADDRESS_CUES.search(s)
                              and re.search(r"\d", s) and "?" not in s]  # fmt: skip
    if not sents and spec.required and _IN_THEIR_WORDS.search(spec.description):
        return _opening(ctx)
    return sents[0].strip()[:200] if sents else None


# a field to be noted "in the customer's words" ("What went wrong, in the customer's words")
_IN_THEIR_WORDS = rx(r"\bin the (?:customer|caller|patient)'?s'? (?:own )?words\b", re.I)


def _opening(ctx: Context) -> str | None:
    """What the caller called about: their first sentence of substance (not a greeting, a
    name or a number), the way callers open with it ("The cake I picked up was stale.")."""
    for t in ctx.turns:
        if not t.caller:
            continue
        for s in sentences(t.text):
            if len(words(s)) >= 4 and not extract_phones(s) and not extract_names(s):
                return s.strip()[:200]
    return None


def extract_string(ctx: Context, spec: FieldSpec) -> str | None:
    if (
        _NAME_FIELD.search(spec.name)
        and "name" in spec.description.lower()
        and not (set(words(spec.description)) & {"test", "item", "service"})
    ):
        return extract_name(ctx, spec)
    opts = _QUOTED_OPTIONS.search(spec.description)
    if opts:
        return _choice(ctx, [opts.group(1), opts.group(2)])
    if "message" in spec.name or "write" in spec.description.lower():
        return _message(ctx)
    if set(words(spec.name.replace("_", " "))) & _ITEM_FIELD_WORDS and field_vocab(
        ctx.tenant, spec
    ):
        return _catalog_value(ctx, spec)
    if spec.required and spec.name in ("question",):
        question = _first_question(ctx)
        if question:
            return question
    return _sentence_value(ctx, spec)


_ADDRESS_CUES = rx(
    r"\b(?:flat|house|door|no\.|apartments?|cross|main|road|block|layout|nagar|colony|sector"
    r"|street|near|opposite|floor)\b",
    re.I,
)
