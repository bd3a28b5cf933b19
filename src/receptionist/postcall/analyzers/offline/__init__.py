"""Deterministic post-call analyzer: keyword rules and regular expressions, no model.

:func:`analyze_offline` picks one of the tenant's call types and pulls out the details its
schema declares, from the transcript alone. It is the fallback when no model is configured or
reachable, and a floor to compare a model against (``bench/analyzer_accuracy.py``).

- :mod:`.call_type`: which call type (schema keywords plus a multilingual intent list).
- :mod:`.typed` and :mod:`.free_text`: details by field type -- phones, dates, times, names,
  numbers, yes/no (read by :mod:`receptionist.language`), and for other strings the caller
  sentence that mentions the field; :mod:`.items`: items matched against the tenant's input
  files (:mod:`.vocabulary`; exact, or heard a little wrong), after the caller's changes of
  mind. Anything not found is left out -- nothing is invented.
- Whose words count (:mod:`.context`): the caller's. An agent line gives a detail only as a
  read-back the caller said yes to, and only where the caller's own words gave none (or to
  confirm a phone number the caller corrected in words); for the call type it only breaks
  ties.

Known limits: no real language understanding; free-text fields are whole caller sentences, not
paraphrases; Devanagari names are kept as spoken.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from receptionist.postcall.analyzers.schema import NO_CONVERSATION, Analysis, validate_details
from receptionist.tenants.model import CallType, Tenant

from .call_type import choose_call_type
from .context import Context, read_turns
from .details import extract_details

__all__ = ["analyze_offline", "choose_call_type"]


def _summary(ct: CallType, details: dict[str, Any]) -> str:
    title = ct.name.replace("_", " ").capitalize()
    parts = []
    for spec in ct.fields:
        if spec.name not in details:
            continue
        v = details[spec.name]
        if isinstance(v, list):
            v = ", ".join(v)
        elif isinstance(v, bool):
            v = "yes" if v else "no"
        parts.append(f"{spec.name.replace('_', ' ')} {v}")
    line = f"{title}: " + "; ".join(parts) if parts else f"{title} (no details found)"
    return line[:300]


def analyze_offline(
    tenant: Tenant, transcript: Sequence[dict[str, Any]], *, now: datetime
) -> Analysis:
    """Call type, summary and details of one call, without a model.

    ``transcript`` is the stored list of turns ``{speaker, text, start_ms, end_ms}``; ``now``
    (timezone-aware, normally the call's start) anchors "tomorrow", weekdays and so on, which are
    resolved in the tenant's timezone.
    """
    turns = read_turns(transcript)
    if not any(t.caller for t in turns):
        return Analysis(
            call_type=NO_CONVERSATION,
            summary="No conversation: the caller did not speak.",
            details={},
            analyzer="offline",
            confidence=1.0,
        )
    name, conf = choose_call_type(tenant, transcript, now=now)
    ct = tenant.call_type(name)
    assert ct is not None
    ctx = Context(tenant, turns, now)
    details = extract_details(ctx, ct)
    # never hand on something the schema would reject
    for problem_key in [k for k in details if validate_details(tenant, name, {k: details[k]})]:
        details.pop(problem_key)
    return Analysis(
        call_type=name,
        summary=_summary(ct, details),
        details=details,
        analyzer="offline",
        confidence=conf,
    )
