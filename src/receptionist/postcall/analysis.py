"""Result of analysing one call transcript, shared by the offline and the model analyzers.

An :class:`Analysis` says which of the tenant's call types a call was and which "critical
details" (the fields the tenant's schema declares for that type) were said in it. Fields that
were not said are left out of ``details``; nothing is null-filled.

:func:`validate_details` checks a ``details`` dict against the tenant's schema; both analyzers
use it, so a model's answer is held to the same rules as the offline one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from receptionist.tenants.model import Tenant

__all__ = [
    "NO_CONVERSATION",
    "Analysis",
    "validate_details",
    "validate_value",
]

#: Call type of an empty transcript: the caller hung up (or never spoke) -- no model is called.
NO_CONVERSATION = "no_conversation"


@dataclass(frozen=True)
class Analysis:
    """What a call was about.

    ``analyzer`` is ``"offline"`` for the deterministic analyzer, else the model's name.
    ``confidence`` is in [0, 1] when the analyzer has a notion of it, else None.
    """

    call_type: str
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    analyzer: str = "offline"
    confidence: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "call_type": self.call_type,
            "summary": self.summary,
            "details": dict(self.details),
            "analyzer": self.analyzer,
            "confidence": self.confidence,
        }


_PHONE_RE = re.compile(r"\+?\d{6,15}")
_TIME_RE = re.compile(r"([01]\d|2[0-3]):[0-5]\d")


def _is_iso_date(value: str) -> bool:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_iso_datetime(value: str) -> bool:
    if not re.match(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", value):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def validate_value(type_name: str, value: Any) -> str | None:
    """None if ``value`` is a valid value of field type ``type_name``, else what is wrong."""
    if type_name == "string":
        if not isinstance(value, str):
            return "must be a string"
        if not value.strip():
            return "must not be empty"
        return None
    if type_name == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return "must be an integer"
        return None
    if type_name == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "must be a number"
        return None
    if type_name == "boolean":
        return None if isinstance(value, bool) else "must be true or false"
    if type_name == "date":
        if not isinstance(value, str) or not _is_iso_date(value):
            return "must be a date as YYYY-MM-DD"
        return None
    if type_name == "time":
        if not isinstance(value, str) or not _TIME_RE.fullmatch(value):
            return "must be a time as HH:MM (24-hour)"
        try:
            time.fromisoformat(value)
        except ValueError:
            return "must be a time as HH:MM (24-hour)"
        return None
    if type_name == "datetime":
        if not isinstance(value, str) or not _is_iso_datetime(value):
            return "must be a date and time as YYYY-MM-DDTHH:MM"
        return None
    if type_name == "phone":
        if not isinstance(value, str) or not _PHONE_RE.fullmatch(value):
            return "must be digits with an optional leading +"
        return None
    if type_name == "list":
        if not isinstance(value, list):
            return "must be a list"
        if not all(isinstance(v, str) and v.strip() for v in value):
            return "must be a list of non-empty strings"
        return None
    return f"has unknown type {type_name!r}"


def validate_details(tenant: Tenant, call_type: str, details: dict[str, Any]) -> list[str]:
    """Problems with ``details`` for ``call_type`` of ``tenant`` (empty list: all fine).

    Checks: the call type exists (``no_conversation`` is always allowed and takes no details),
    every key is a field of that type, and every value has the field's type. Missing fields,
    even required ones, are not problems: a call may simply not have said them.
    """
    if not isinstance(details, dict):
        return ["details must be an object"]
    if call_type == NO_CONVERSATION:
        return [f"{NO_CONVERSATION} takes no details, got {k!r}" for k in details]
    ct = tenant.call_type(call_type)
    if ct is None:
        known = ", ".join(tenant.call_type_names)
        return [f"unknown call type {call_type!r} (known: {known})"]
    problems: list[str] = []
    for key, value in details.items():
        spec = ct.field(key)
        if spec is None:
            problems.append(f"unknown field {key!r} for call type {call_type!r}")
            continue
        err = validate_value(spec.type, value)
        if err:
            problems.append(f"field {key!r} ({spec.type}) {err}: {value!r}")
    return problems
