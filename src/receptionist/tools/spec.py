"""What each tool is called, does and takes (JSON schema), as the model is told."""

from __future__ import annotations

from typing import Any

from receptionist.engines.base import ToolSpec

_DATE = {"type": "string", "description": "The day, as YYYY-MM-DD (or 'today', 'tomorrow')."}
_TIME = {"type": "string", "description": "The start time, 24-hour HH:MM, e.g. 16:00."}
_RESOURCE = {
    "type": "string",
    "description": "The staff member or chair asked for; leave out for anyone free.",
}
_ITEMS: dict[str, Any] = {
    "type": "array",
    "description": "The order's lines from the price list.",
    "items": {
        "type": "object",
        "properties": {
            "item": {"type": "string", "description": "The item as on the price list."},
            "count": {"type": "integer", "description": "How many pieces or services."},
            "kg": {"type": "number", "description": "Weight in kg, for items sold by weight."},
            "packs": {"type": "integer", "description": "How many packs, for items sold in packs."},
            "section": {
                "type": "string",
                "description": "The price list's section, when the name is in several.",
            },
            "options": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Options the caller chose for this line, in the price list's"
                " words; an extra charge the price list states for one is added.",
            },
        },
        "required": ["item"],
    },
}

SPECS: dict[str, ToolSpec] = {
    "check_slot": ToolSpec(
        "check_slot",
        "Check whether an appointment slot is free (opening hours, slot length, staff, bookings"
        " already held). If it is taken, the answer lists the next free slots to offer.",
        {
            "type": "object",
            "properties": {"date": _DATE, "time": _TIME, "resource": _RESOURCE},
            "required": ["date", "time"],
        },
    ),
    "book": ToolSpec(
        "book",
        "Hold an appointment slot (date and time) or an order (items) for the caller. It is held"
        " while the call goes on and confirmed when the call ends. If the slot was just taken,"
        " the answer offers the next free ones.",
        {
            "type": "object",
            "properties": {
                "date": _DATE,
                "time": _TIME,
                "resource": _RESOURCE,
                "items": _ITEMS,
                "name": {"type": "string", "description": "The caller's name."},
                "phone": {"type": "string", "description": "A phone number, if not this one."},
                "service": {"type": "string", "description": "The service booked."},
            },
            "required": ["name"],
        },
    ),
    "quote": ToolSpec(
        "quote",
        "Work out an order's total from the price list. Always use this for totals; never add"
        " prices up yourself.",
        {"type": "object", "properties": {"items": _ITEMS}, "required": ["items"]},
    ),
    "order_status": ToolSpec(
        "order_status",
        "Look up the caller's own earlier order or booking: those made from the number they are"
        " calling from (narrowed by reference or name), or, when their number is withheld, by"
        " its reference together with the name it was made under.",
        {
            "type": "object",
            "properties": {
                "reference": {"type": "string", "description": "The booking reference."},
                "name": {"type": "string", "description": "The name it was made under."},
                "phone": {
                    "type": "string",
                    "description": "Only the number the caller is calling from.",
                },
            },
        },
        # the model can say "let me check" meanwhile; the answer is told when it is idle
        blocking=False,
    ),
    "handoff": ToolSpec(
        "handoff",
        "Put the caller through to a person: when the caller asks for one, or you cannot help.",
        {
            "type": "object",
            "properties": {
                "reason": {"type": "string", "description": "Why, in a few words."},
                "who": {"type": "string", "description": "Who the caller asked for, if anyone."},
            },
            "required": ["reason"],
        },
    ),
}


def specs_for(enabled: tuple[str, ...]) -> tuple[ToolSpec, ...]:
    return tuple(SPECS[name] for name in enabled if name in SPECS)
