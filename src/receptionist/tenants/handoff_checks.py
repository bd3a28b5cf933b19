"""Checks of tenant.toml's `[handoff]` and `[callbacks]` tables (see handoff.py)."""

from __future__ import annotations

import re
from typing import Any

from .actions import Template
from .handoff import NOTICE_VARIABLES, CallbackRules, Handoff
from .hours import hours_value
from .report import E164, Report, suggest

__all__ = ["check_callbacks", "check_handoff"]

MAX_NUMBERS = 5  # Exotel's Connect applet rings at most a handful; more is a mistake
MAX_WHISPER_CHARS = 200  # spoken to the person picking up while the caller waits
MAX_SAY_CHARS = 300
# ExoPhones are written as Exotel shows them: 0 + 10 digits, or E.164.
_EXOPHONE = re.compile(r"0\d{9,11}|\+[1-9]\d{7,14}")


def _compact(value: str) -> str:
    return re.sub(r"[\s\-().]", "", value)


def _text(r: Report, table: dict[str, Any], key: str, path: tuple[str, ...], limit: int) -> str:
    text = r.text_value(table, key, path) if key in table else None
    if text is not None and len(text) > limit:
        r.add_config(
            (*path, key), f"{path[0]}.{key} is too long ({len(text)} > {limit} characters)"
        )
        return ""
    return text or ""


def _caller_id(r: Report, table: dict[str, Any], path: tuple[str, ...]) -> str:
    value = r.text_value(table, "caller_id", path) if "caller_id" in table else None
    if value is None:
        return ""
    compact = _compact(value)
    if not _EXOPHONE.fullmatch(compact):
        r.add_config(
            (*path, "caller_id"),
            f'{path[0]}.caller_id must be your ExoPhone, e.g. "08047112233" or "+918047112233"',
        )
        return ""
    return compact


def _notify_template(
    r: Report, table: dict[str, Any], path: tuple[str, ...], templates: tuple[Template, ...]
) -> str:
    name = r.text_value(table, "notify_template", path) if "notify_template" in table else None
    if name is None:
        return ""
    template = next((t for t in templates if t.name == name), None)
    if template is None:
        known = [t.name for t in templates]
        r.add_config(
            (*path, "notify_template"),
            f"handoff.notify_template {name!r} is not declared in [templates]"
            f"{suggest(name, known)}",
        )
        return ""
    if template.variable_count != len(NOTICE_VARIABLES):
        r.add_config(
            (*path, "notify_template"),
            f"handoff.notify_template {name!r} must have {len(NOTICE_VARIABLES)} placeholders "
            f"({', '.join(NOTICE_VARIABLES)}), not {template.variable_count}",
        )
        return ""
    return name


def check_handoff(
    r: Report, config: dict[str, Any], tz: str, templates: tuple[Template, ...] = ()
) -> Handoff | None:
    table = r.table_value(config, "handoff", ())
    if table is None:
        return None
    path = ("handoff",)
    r.check_shape(path)
    before = len(r.problems)
    raw = table.get("numbers")
    numbers: list[str] = []
    if not isinstance(raw, list) or not raw or not all(isinstance(x, str) for x in raw):
        r.add_config(
            (*path, "numbers"),
            'handoff.numbers must list the numbers to ring in order, e.g. ["+919800000001"]',
        )
    elif len(raw) > MAX_NUMBERS:
        r.add_config((*path, "numbers"), f"handoff.numbers: at most {MAX_NUMBERS} numbers")
    else:
        for number in raw:
            compact = _compact(number)
            if not E164.fullmatch(compact):
                r.add_config(
                    (*path, "numbers"),
                    f"handoff.numbers: {number!r} is not E.164 (+ and 8-15 digits)",
                )
            elif compact not in numbers:
                numbers.append(compact)
    hours = hours_value(r, table, path, tz)
    ring = r.int_value(table, "ring_seconds", path, 5, 120, 30)
    max_minutes = r.int_value(table, "max_minutes", path, 1, 240, 60)
    record = r.bool_value(table, "record", path)
    whisper = _text(r, table, "whisper", path, MAX_WHISPER_CHARS)
    say = _text(r, table, "say", path, MAX_SAY_CHARS)
    unavailable = _text(r, table, "unavailable", path, MAX_SAY_CHARS)
    caller_id = _caller_id(r, table, path)
    notify_template = _notify_template(r, table, path, templates)
    if len(r.problems) != before or hours is None:
        return None
    return Handoff(
        numbers=tuple(numbers),
        hours=hours,
        ring_seconds=ring,
        record=record,
        whisper=whisper,
        say=say,
        unavailable=unavailable,
        caller_id=caller_id,
        max_minutes=max_minutes,
        notify_template=notify_template,
    )


def check_callbacks(
    r: Report, config: dict[str, Any], tz: str, handoff: Handoff | None
) -> CallbackRules | None:
    table = r.table_value(config, "callbacks", ())
    if table is None:
        return None
    path = ("callbacks",)
    r.check_shape(path)
    before = len(r.problems)
    caller_id = _caller_id(r, table, path)
    if not caller_id and "caller_id" not in table:
        r.add_config(
            (*path, "caller_id"),
            'callbacks.caller_id is missing: the ExoPhone the caller sees, e.g. "08047112233"',
        )
    # without hours of its own: the hours a person answers are the hours to call back in
    if "hours" in table:
        hours = hours_value(r, table, path, tz)
    elif handoff is not None:
        hours = handoff.hours
    elif "handoff" in config:  # [handoff] is wrong (reported there): nothing more to say
        return None
    else:
        hours = hours_value(r, table, path, tz)  # reports the missing hours
    per_day = r.int_value(table, "per_number_per_day", path, 1, 10, 2)
    ring = r.int_value(table, "ring_seconds", path, 5, 120, 30)
    if len(r.problems) != before or hours is None or not caller_id:
        return None
    return CallbackRules(caller_id, hours, per_number_per_day=per_day, ring_seconds=ring)
