"""Checks of what a tenant sends after a call: WhatsApp templates and the rules
(``[[actions.<call type>]]``) that fill them, cross-checked against the call types' fields and the
declared templates."""

from __future__ import annotations

import re
from typing import Any

from .actions import (
    CALL_SOURCES,
    RECIPIENT_KINDS,
    ActionRule,
    Template,
    Variable,
    placeholder_numbers,
)
from .report import E164, Report, suggest, type_name
from .toml_lines import item_key

__all__ = ["MAX_TEMPLATE_CHARS", "MAX_VARIABLE_CHARS", "check_actions", "check_templates"]

# WhatsApp's limits: a template body and each of its variables at most 1024 characters.
MAX_TEMPLATE_CHARS = 1024
MAX_VARIABLE_CHARS = 1024
_DEFAULT_MAX_CHARS = Variable().max_chars

_WA_LANGUAGE = re.compile(r"[a-z]{2,3}(?:_[A-Z]{2})?")  # "en", "en_US", "hi", "fil"
_TEMPLATE_NAME = re.compile(r"[a-z0-9_]{1,512}")  # as WhatsApp names templates
_ANY_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}")
_NUMBER = re.compile(r"\s*\d+\s*$")


def _placeholders(count: int) -> str:
    return "{{1}}" if count == 1 else f"{{{{1}}}}..{{{{{count}}}}}"


def _declared_fields(config: dict[str, Any]) -> dict[str, dict[str, str | None]]:
    """``{call type: {field: type or None}}`` as written in tenant.toml, even if not all valid.

    Rules are checked against what the owner wrote, so a field with a mistake of its own is
    reported once (at the field), not again in every rule that uses it.
    """
    out: dict[str, dict[str, str | None]] = {}
    call_types = config.get("call_types")
    if not isinstance(call_types, dict):
        return out
    for ct_name, ct in call_types.items():
        fields = ct.get("fields") if isinstance(ct, dict) else None
        out[ct_name] = {}
        for name, spec in (fields if isinstance(fields, dict) else {}).items():
            ftype = spec.get("type") if isinstance(spec, dict) else spec
            out[ct_name][name] = ftype.strip().lower() if isinstance(ftype, str) else None
    return out


def check_templates(r: Report, config: dict[str, Any]) -> tuple[Template, ...]:
    table = r.table_value(config, "templates", ())
    if table is None:
        return ()
    out: list[Template] = []
    for name, spec in table.items():
        path = ("templates", name)
        before = len(r.problems)
        if not _TEMPLATE_NAME.fullmatch(name):
            r.add_config(
                path,
                f"template name {name!r} must be written exactly as approved at MSG91: "
                "lowercase letters, digits and '_' (e.g. order_confirmation)",
            )
        if not isinstance(spec, dict):
            r.add_config(
                path,
                f"templates.{name} must be a table ([templates.{name}] with language and "
                f"text), not {type_name(spec)}",
            )
            continue
        r.check_shape(path)
        language = r.text_value(spec, "language", path)
        if language is not None and not _WA_LANGUAGE.fullmatch(language):
            hint = ""
            lang, _, region = language.replace("-", "_").partition("_")
            fixed = lang.lower() + (f"_{region.upper()}" if region else "")
            if _WA_LANGUAGE.fullmatch(fixed):
                hint = f"; write {fixed!r}"
            r.add_config(
                (*path, "language"),
                f"templates.{name}.language {language!r} is not a WhatsApp language code "
                f'like "en", "en_US", "hi" or "kn"{hint}',
            )
        text = r.text_value(spec, "text", path)
        if text is not None:
            check_template_text(r, name, text)
        if len(r.problems) == before and language is not None and text is not None:
            out.append(Template(name=name, language=language, text=text))
    return tuple(out)


def check_template_text(r: Report, name: str, text: str) -> None:
    path = ("templates", name, "text")
    if len(text) > MAX_TEMPLATE_CHARS:
        r.add_config(
            path,
            f"templates.{name}.text is {len(text)} characters; WhatsApp allows at most "
            f"{MAX_TEMPLATE_CHARS}",
        )
    named = [m.group(0) for m in _ANY_PLACEHOLDER.finditer(text) if not _NUMBER.match(m[1])]
    if named:
        r.add_config(
            path,
            f"templates.{name}.text has {', '.join(dict.fromkeys(named))}: placeholders "
            "must be numbered {{1}}, {{2}}, ... as in the template approved at MSG91",
        )
    numbers = placeholder_numbers(text)
    if numbers != list(range(1, len(numbers) + 1)):
        wanted = set(range(1, max(numbers) + 1))
        wrong = [f"{{{{{n}}}}}" for n in sorted(wanted - set(numbers))]
        what = f"{', '.join(wrong)} is missing" if wrong else "there is no {{0}}"
        r.add_config(
            path,
            f"templates.{name}.text must number its placeholders {{{{1}}}}, {{{{2}}}}, ... "
            f"with none left out, but {what}",
        )


def check_actions(
    r: Report, config: dict[str, Any], templates: tuple[Template, ...]
) -> tuple[ActionRule, ...]:
    table = r.table_value(config, "actions", ())
    if table is None:
        return ()
    fields = _declared_fields(config)
    raw_templates = config.get("templates")
    declared = tuple(raw_templates) if isinstance(raw_templates, dict) else ()
    valid = {t.name: t for t in templates}
    out: list[ActionRule] = []
    for ct_name, rules in table.items():
        path = ("actions", ct_name)
        ct_fields = fields.get(ct_name)
        if ct_fields is None:
            known = ", ".join(fields) or "none"
            r.add_config(
                path,
                f"[[actions.{ct_name}]]: {ct_name!r} is not a call type"
                f"{suggest(ct_name, fields)} (declared: {known})",
            )
        if isinstance(rules, dict):
            r.add_config(
                path,
                f"actions.{ct_name} must be written [[actions.{ct_name}]], with double "
                "brackets: one such table per message to send",
            )
            continue
        if not isinstance(rules, list):
            r.add_config(
                path,
                f"actions.{ct_name} must be [[actions.{ct_name}]] tables, not {type_name(rules)}",
            )
            continue
        seen: set[str] = set()
        for index, rule in enumerate(rules):
            built = check_rule(
                r, ct_name, (*path, item_key(index)), rule, ct_fields, declared, valid
            )
            if built is None:
                continue
            if built.key in seen:  # one message per (call, recipient, template): see actions
                r.add_config(
                    (*path, item_key(index), "to"),
                    f"[[actions.{ct_name}]]: a second message to {built.to} with template "
                    f"{built.template!r}; only one can be sent per call: merge the two",
                )
                continue
            seen.add(built.key)
            out.append(built)
    return tuple(out)


def check_rule(
    r: Report,
    ct_name: str,
    path: tuple[str, ...],
    rule: object,
    fields: dict[str, str | None] | None,
    declared: tuple[str, ...],
    templates: dict[str, Template],
) -> ActionRule | None:
    """One ``[[actions.<call type>]]`` table; ``fields`` None when the call type is unknown."""
    if not isinstance(rule, dict):
        r.add_config(
            path,
            f"each actions.{ct_name} entry must be a table ([[actions.{ct_name}]] with to, "
            f"template, variables), not {type_name(rule)}",
        )
        return None
    before = len(r.problems)
    r.check_shape(path)
    to = check_recipient(r, ct_name, path, rule)
    template_name = r.text_value(rule, "template", path)
    template: Template | None = None
    if template_name is not None:
        template = templates.get(template_name)
        if template_name not in declared:
            r.add_config(
                (*path, "template"),
                f"actions.{ct_name}.template {template_name!r} is not declared"
                f"{suggest(template_name, declared)} (add a [templates.{template_name}] "
                "table with its language and text)",
            )
    ai_written = r.bool_value(rule, "ai_written", path)
    urgent = r.bool_value(rule, "urgent", path)
    present, equals = check_when(r, ct_name, path, rule, fields)
    variables = check_variables(r, ct_name, path, rule, fields, template_name, template)
    if len(r.problems) != before or to is None or template_name is None:
        return None
    return ActionRule(
        call_type=ct_name,
        to=to,
        template=template_name,
        variables=variables,
        ai_written=ai_written,
        when_present=present,
        when_equals=equals,
        urgent=urgent,
        line=r.keys.line(*path, "to"),
    )


def check_recipient(
    r: Report, ct_name: str, path: tuple[str, ...], rule: dict[str, Any]
) -> str | None:
    value = r.text_value(rule, "to", path)
    if value is None:
        return None
    if value.lower() in RECIPIENT_KINDS:
        return value.lower()
    compact = re.sub(r"[\s\-().]", "", value)
    if E164.fullmatch(compact):
        return compact
    if compact.startswith("+"):
        hint = "write + and 8-15 digits with the country code"
    elif compact.isdigit():
        hint = "write the number with + and the country code"
    else:
        hint = (
            'write "customer" (the caller), "owner" (owner_phone) or a number'
            f"{suggest(value.lower(), RECIPIENT_KINDS)}"
        )
    r.add_config(
        (*path, "to"),
        f'actions.{ct_name}.to {value!r} is not a recipient: {hint} (e.g. "+919800000002")',
    )
    return None


def check_field_name(
    r: Report,
    name: str,
    at: tuple[str, ...],
    what: str,
    ct_name: str,
    fields: dict[str, str | None] | None,
) -> bool:
    """True when ``name`` is a field of the call type (or the call type itself is unknown)."""
    if fields is None or name in fields:
        return True
    listed = f"its fields: {', '.join(fields)}" if fields else "it has no fields"
    r.add_config(
        at,
        f"{what}: {name!r} is not a field of call type {ct_name!r}"
        f"{suggest(name, fields)} ({listed})",
    )
    return False


def check_when(
    r: Report,
    ct_name: str,
    path: tuple[str, ...],
    rule: dict[str, Any],
    fields: dict[str, str | None] | None,
) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    if "when" not in rule:
        return (), ()
    when = rule["when"]
    wpath = (*path, "when")
    label = f"actions.{ct_name}.when"
    if not isinstance(when, dict):
        r.add_config(
            wpath,
            f'{label} must be a table like {{ present = ["name"], equals = {{ field = '
            f'"value" }} }}, not {type_name(when)}',
        )
        return (), ()
    r.check_shape(wpath)
    present: list[str] = []
    raw_present = when.get("present", [])
    if isinstance(raw_present, str):
        raw_present = [raw_present]
    if not isinstance(raw_present, list) or not all(isinstance(p, str) for p in raw_present):
        r.add_config(
            (*wpath, "present"),
            f'{label}.present must be a list of field names like ["name", "phone"]',
        )
        raw_present = []
    for raw_name in raw_present:
        name = raw_name.strip()
        at = (*wpath, "present")
        if check_field_name(r, name, at, f"{label}.present", ct_name, fields):
            present.append(name)
    equals = _when_equals(r, ct_name, wpath, when, fields)
    return tuple(present), tuple(equals)


def _when_equals(
    r: Report,
    ct_name: str,
    wpath: tuple[str, ...],
    when: dict[str, Any],
    fields: dict[str, str | None] | None,
) -> list[tuple[str, str]]:
    """``when.equals``: (field, expected value as text) pairs; booleans as "true"/"false"."""
    label = f"actions.{ct_name}.when"
    equals: list[tuple[str, str]] = []
    raw_equals = when.get("equals", {})
    if not isinstance(raw_equals, dict):
        r.add_config(
            (*wpath, "equals"),
            f'{label}.equals must be a table like {{ pickup_or_delivery = "pickup" }}, '
            f"not {type_name(raw_equals)}",
        )
        raw_equals = {}
    for name, expected in raw_equals.items():
        at = (*wpath, "equals", name)
        if not check_field_name(r, name, at, f"{label}.equals", ct_name, fields):
            continue
        if isinstance(expected, bool):
            value = "true" if expected else "false"
        elif isinstance(expected, int | float):
            value = str(expected)
        elif isinstance(expected, str) and expected.strip():
            value = expected.strip()
        else:
            r.add_config(
                at,
                f"{label}.equals.{name} must be text, a number or true/false, "
                f"not {'empty text' if isinstance(expected, str) else type_name(expected)}",
            )
            continue
        ftype = fields.get(name) if fields is not None else None
        if ftype == "boolean" and value.lower() not in ("true", "false"):
            r.add_config(
                at,
                f"{label}.equals.{name}: {name!r} is a true/false field, "
                f"so compare it with true or false, not {expected!r}",
            )
            continue
        equals.append((name, value))
    return equals


def check_variables(
    r: Report,
    ct_name: str,
    path: tuple[str, ...],
    rule: dict[str, Any],
    fields: dict[str, str | None] | None,
    template_name: str | None,
    template: Template | None,
) -> tuple[Variable, ...]:
    vpath = (*path, "variables")
    count = template.variable_count if template is not None else None
    wanted = f"template {template_name!r} has " + (
        "no placeholders" if not count else f"{count} (" + _placeholders(count) + ")"
    )
    raw = rule.get("variables")
    if raw is None:
        if count:
            r.add_config(
                path,
                f"actions.{ct_name} needs variables = [...], one per placeholder: {wanted}",
            )
        return ()
    if not isinstance(raw, list):
        r.add_config(
            vpath,
            f"actions.{ct_name}.variables must be a list [...], one entry per placeholder, "
            f"not {type_name(raw)}",
        )
        return ()
    out: list[Variable] = []
    for index, item in enumerate(raw):
        var = check_variable(r, ct_name, (*vpath, item_key(index)), index, item, fields)
        if var is not None:
            out.append(var)
    if count is not None and len(raw) != count:
        r.add_config(
            vpath,
            f"actions.{ct_name}.variables has {len(raw)} "
            f"entr{'y' if len(raw) == 1 else 'ies'} but {wanted}: give exactly one per "
            "placeholder, in order",
        )
    return tuple(out)


def check_variable(
    r: Report,
    ct_name: str,
    path: tuple[str, ...],
    index: int,
    item: object,
    fields: dict[str, str | None] | None,
) -> Variable | None:
    label = f"actions.{ct_name} variable {{{{{index + 1}}}}}"
    if isinstance(item, str):
        source = check_source(r, item.strip(), path, label, ct_name, fields)
        return Variable(source=source) if source is not None else None
    if not isinstance(item, dict):
        r.add_config(
            path,
            f'{label} must be "details.<field>", one of {", ".join(CALL_SOURCES)}, or a '
            f"table with 'from' or 'write'; not {type_name(item)}",
        )
        return None
    before = len(r.problems)
    r.check_shape(path)
    max_chars = item.get("max_chars", _DEFAULT_MAX_CHARS)
    if (
        isinstance(max_chars, bool)
        or not isinstance(max_chars, int)
        or not (1 <= max_chars <= MAX_VARIABLE_CHARS)
    ):
        r.add_config(
            (*path, "max_chars"),
            f"{label}: max_chars must be a whole number from 1 to {MAX_VARIABLE_CHARS}",
        )
        max_chars = MAX_VARIABLE_CHARS
    has_from, has_write = "from" in item, "write" in item
    if has_from and has_write:
        r.add_config(
            path,
            f"{label}: give either 'from' (a fact from the call) or 'write' (text the AI "
            "writes), not both",
        )
        return None
    if not has_from and not has_write:
        r.add_config(
            path,
            f"{label} needs 'from' (e.g. \"details.name\") or 'write' (an instruction for "
            "the AI, with a 'fallback' text)",
        )
        return None
    if has_from:
        return _from_variable(r, label, path, item, max_chars, before, (ct_name, fields))
    return _write_variable(r, label, path, item, max_chars, before)


def _from_variable(
    r: Report,
    label: str,
    path: tuple[str, ...],
    item: dict[str, Any],
    max_chars: int,
    before: int,
    call_type: tuple[str, dict[str, str | None] | None],
) -> Variable | None:
    """A variable filled with a fact from the call (``from``, optional ``default``)."""
    ct_name, fields = call_type
    source = r.text_value(item, "from", path)
    if source is not None:
        source = check_source(r, source, (*path, "from"), label, ct_name, fields)
    if "fallback" in item:
        r.add_config(
            (*path, "fallback"),
            f"{label}: 'fallback' goes with 'write'; with 'from' use 'default'",
        )
    default = r.text_value(item, "default", path)
    check_length(r, label, "default", default, max_chars, path)
    if len(r.problems) != before or source is None:
        return None
    return Variable(source=source, default=default, max_chars=max_chars)


def _write_variable(
    r: Report, label: str, path: tuple[str, ...], item: dict[str, Any], max_chars: int, before: int
) -> Variable | None:
    """A variable the AI writes (``write``), with the ``fallback`` sent when it cannot."""
    write = r.text_value(item, "write", path)
    if "default" in item:
        r.add_config(
            (*path, "default"),
            f"{label}: 'default' goes with 'from'; with 'write' use 'fallback'",
        )
    fallback = r.text_value(item, "fallback", path)
    if "fallback" not in item:
        r.add_config(
            path,
            f"{label}: 'write' needs a 'fallback' text, sent as it is when the AI is unavailable",
        )
    check_length(r, label, "fallback", fallback, max_chars, path)
    if len(r.problems) != before or write is None or fallback is None:
        return None
    return Variable(write=write, fallback=fallback, max_chars=max_chars)


def check_length(
    r: Report, label: str, key: str, text: str | None, max_chars: int, path: tuple[str, ...]
) -> None:
    if text is not None and len(text) > max_chars:
        r.add_config(
            (*path, key),
            f"{label}: {key} is {len(text)} characters, more than max_chars ({max_chars}); "
            "shorten it or raise max_chars",
        )


def check_source(
    r: Report,
    source: str,
    at: tuple[str, ...],
    label: str,
    ct_name: str,
    fields: dict[str, str | None] | None,
) -> str | None:
    if source in CALL_SOURCES:
        return source
    if source.startswith("details."):
        name = source.removeprefix("details.")
        if check_field_name(r, name, at, label, ct_name, fields):
            return source
        return None
    choices = [*(f"details.{f}" for f in fields or ()), *CALL_SOURCES]
    r.add_config(
        at,
        f'{label}: {source!r} is not a source{suggest(source, choices)} (use "details.'
        f'<field>" or one of {", ".join(CALL_SOURCES)})',
    )
    return None
