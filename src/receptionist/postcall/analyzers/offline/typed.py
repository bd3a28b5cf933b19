"""Details of a typed field (phone, date, time, name, number, yes/no) from a call's turns.

The caller's sentences that mention the field come first, then the caller's last value, then a
read-back of the agent's the caller said yes to (:mod:`.context`); anything not found is left
out, nothing is invented.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from receptionist.language.cues import is_no, is_yes
from receptionist.language.dates import extract_dates
from receptionist.language.names import (
    answered_name,
    extract_names,
    extract_patient_names,
    spelled_names,
)
from receptionist.language.numbers import number_value
from receptionist.language.phones import extract_phones
from receptionist.language.quantities import extract_quantities
from receptionist.language.text import STOPWORDS, rx, sentences, words
from receptionist.language.times import extract_times
from receptionist.tenants.model import FieldSpec

from .context import Context, key_words
from .vocabulary import field_keywords

NEG_NEAR = rx(r"\b(?:no|not|don't|dont|nahi|nahin|without|with egg|regular)\b|नहीं|नही|बिना")


def relevant_sentences(ctx: Context, spec: FieldSpec, *, caller_only: bool = True) -> list[str]:
    fk = field_keywords(spec) - {"name", "phone", "number", "date", "time"}
    out: list[tuple[int, str]] = []
    for t in ctx.turns:
        if caller_only and not t.caller:
            continue
        for s in sentences(t.text):
            words = set(key_words(s))
            score = len(words & fk)
            if score:
                out.append((score, s))
    out.sort(key=lambda x: -x[0])
    return [s for _, s in out]


def pick_by_relevance(
    ctx: Context,
    spec: FieldSpec,
    finder: Any,
) -> Any:
    """Value found by ``finder(sentence)`` in the caller's sentences that mention the field;
    else the caller's last such value; else the last of a read-back the caller confirmed."""
    fk = field_keywords(spec) - {"date", "time", "name", "phone", "number"}
    best: tuple[int, int, Any] | None = None
    last_caller: Any = None
    last_agent: Any = None
    order = 0
    for i, t in enumerate(ctx.turns):
        if not t.caller and not ctx.confirmed(i):
            continue
        for s in sentences(t.text):
            vals = finder(s)
            if not vals:
                continue
            order += 1
            if t.caller:
                last_caller = vals[-1]
                rel = len(set(key_words(s)) & fk)
                if rel and (best is None or rel >= best[0]):
                    best = (rel, order, vals[-1])
            else:
                last_agent = vals[-1]
    if best is not None and len(fk) > 0 and spec.name not in ("date", "time"):
        return best[2]
    if last_caller is not None:
        return last_caller
    return last_agent


def extract_phone(ctx: Context, spec: FieldSpec) -> str | None:
    caller = [p for t in ctx.turns if t.caller for p in extract_phones(t.text)]
    turns = ctx.turns
    last_caller_i = max((i for i, t in enumerate(turns) if t.caller and extract_phones(t.text)),
                        default=-1)  # fmt: skip
    # a confirmed read-back after the caller's last number: a correction the caller made in
    # words ("last digit six") the agent read back right
    for i in range(len(turns) - 2, max(last_caller_i, 0) - 1, -1):
        if ctx.confirmed(i) and extract_phones(turns[i].text):
            return extract_phones(turns[i].text)[-1]
    if caller:
        return caller[-1]
    return None


# a value the caller takes back: "6 pm instead, not 5 pm", "Friday instead of Thursday"
_TAKEN_BACK = rx(r"(?:\bnot|\binstead of|\brather than)\s+(?:on\s+|at\s+|the\s+)?$", re.I)


def _kept(s: str, found: list[tuple[int, Any]]) -> list[Any]:
    return [v for pos, v in found if not _TAKEN_BACK.search(s[:pos])]


def extract_date(ctx: Context, spec: FieldSpec) -> str | None:
    today = ctx.today

    def finder(s: str) -> list[date]:
        return _kept(s, extract_dates(s, today))

    d = pick_by_relevance(ctx, spec, finder)
    return d.isoformat() if d else None


def extract_time(ctx: Context, spec: FieldSpec) -> str | None:
    def finder(s: str) -> list[str]:
        return _kept(s, extract_times(s))

    return pick_by_relevance(ctx, spec, finder)


def extract_datetime(ctx: Context, spec: FieldSpec) -> str | None:
    d = extract_date(ctx, spec)
    t = extract_time(ctx, spec)
    return f"{d}T{t}" if d and t else None


_ASKS_NAME = rx(r"\bname\b|\bnaam\b|नाम", re.I)


def _answered_names(ctx: Context) -> list[str]:
    """Names the caller gave right after the agent asked ("Name?" -- "Sunita Rao, 98...")."""
    out: list[str] = []
    turns = ctx.turns
    for i in range(1, len(turns)):
        t, prev = turns[i], turns[i - 1]
        if t.caller and not prev.caller and _ASKS_NAME.search(prev.text):
            name = answered_name(t.text)
            if name:
                out.append(name)
    return out


def extract_name(ctx: Context, spec: FieldSpec) -> str | None:
    patient = "patient" in spec.name or "patient" in spec.description.lower()
    names: list[str] = []
    for t in ctx.turns:
        if t.caller:
            names += [n for _, n in extract_names(t.text, patient=patient)]
    if not names:
        names = _answered_names(ctx)
    if patient:
        # a named patient ("for my mother Kamla Devi") wins over the caller's own name, unless
        # spelled out later ("... K-A-V-I-T-A"), which corrects it
        pats = [(i, n) for i, t in enumerate(ctx.turns) if t.caller
                for n in extract_patient_names(t.text)]  # fmt: skip
        spelled = [(i, n) for i, t in enumerate(ctx.turns) if t.caller
                   for _, n in spelled_names(t.text)]  # fmt: skip
        if pats:
            return spelled[-1][1] if spelled and spelled[-1][0] >= pats[-1][0] else pats[-1][1]
    return names[-1] if names else None


def extract_number(ctx: Context, spec: FieldSpec) -> float | int | None:
    text_words = set(words(spec.name.replace("_", " ") + " " + spec.description))
    if text_words & {"kg", "weight", "kilo", "kilos"}:
        vals = [v for t in ctx.turns if t.caller for _, v in extract_quantities(t.text)]
        if not vals:
            vals = [
                v
                for i, t in enumerate(ctx.turns)
                if ctx.confirmed(i)
                for _, v in extract_quantities(t.text)
            ]
        if not vals:
            return None
        v = vals[-1]
        if spec.type == "integer":
            return int(v) if v == int(v) else None
        return v
    fk = field_keywords(spec)
    for s in reversed(relevant_sentences(ctx, spec)):
        for tok in words(s):
            n = number_value(tok)
            if n is not None and tok not in fk:
                return int(n) if spec.type == "integer" or n == int(n) else n
    return None


def extract_boolean(ctx: Context, spec: FieldSpec) -> bool | None:
    desc = spec.description.lower()
    key = {w for w in words(spec.name.replace("_", " ")) if w not in STOPWORDS and len(w) > 2}
    if "never" in desc or "first" in desc or "new" in spec.name:
        key |= {"first time", "pehli baar", "पहली बार", "new patient", "never", "before",
                "pehle", "पहले", "already", "earlier"}  # fmt: skip
    invert_words = ("before", "pehle", "पहले", "already", "earlier", "visited")
    turns = ctx.turns
    result: bool | None = None
    for i, t in enumerate(turns):
        low = t.text.lower()
        hit = [k for k in key if (k in low if (" " in k or not k.isascii()) else k in words(low))]
        if not hit:
            continue
        if t.caller:
            for s in sentences(t.text):
                sl = s.lower()
                if not any(k in sl for k in hit):
                    continue
                neg = bool(NEG_NEAR.search(sl))
                inv = any(w in sl for w in invert_words) and not any(
                    w in sl for w in ("first", "pehli", "पहली", "never", "new")
                )
                result = (not neg) != inv
        elif t.text.rstrip().endswith("?") and i + 1 < len(turns) and turns[i + 1].caller:
            ans = turns[i + 1].text
            inv = any(w in low for w in invert_words) and "never" not in low
            if is_yes(ans) and not NEG_NEAR.search(ans.lower()):
                result = not inv
            elif is_no(ans):
                result = inv
    return result
