"""One call type's details from a call: each field by its type."""

from __future__ import annotations

from typing import Any

from receptionist.tenants.model import CallType, FieldSpec

from .context import Context
from .free_text import extract_items, extract_string
from .typed import (
    extract_boolean,
    extract_date,
    extract_datetime,
    extract_number,
    extract_phone,
    extract_time,
)

__all__ = ["extract_details", "extract_field"]


def extract_field(ctx: Context, spec: FieldSpec) -> Any:
    t = spec.type
    if t == "phone":
        return extract_phone(ctx, spec)
    if t == "date":
        return extract_date(ctx, spec)
    if t == "time":
        return extract_time(ctx, spec)
    if t == "datetime":
        return extract_datetime(ctx, spec)
    if t in ("number", "integer"):
        return extract_number(ctx, spec)
    if t == "boolean":
        return extract_boolean(ctx, spec)
    if t == "list":
        return extract_items(ctx, spec) or None
    return extract_string(ctx, spec)


def extract_details(ctx: Context, ct: CallType) -> dict[str, Any]:
    details: dict[str, Any] = {}
    for spec in ct.fields:
        value = extract_field(ctx, spec)
        if value is None or value == "" or value == []:
            continue
        details[spec.name] = value
    return details
