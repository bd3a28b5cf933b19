"""A tenant's files as the dashboard's settings forms show them, and back.

Pure text work, no web framework and no database: `tenant.toml` is cut into areas (its top-level
keys, then its tables grouped as call types, WhatsApp templates, rules, budget and the rest), a
form changes one area, and the files are put together again for `tenant_edit.save`, which checks
them exactly like `tenants validate`. A problem the loader reports by file and line is mapped
back to the area (and, for a structured field, the field) it concerns, so the page shows it
beside that field.

Cutting keeps every line, comments included, and is checked: if the areas put together do not
read as the same TOML as the file (an unusual layout, e.g. a `[` line inside a multi-line
string), the file is offered whole, as one box, instead.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from receptionist.tenants.bundle import ASSISTANT_PROMPT, CONFIG_FILE, INPUT_DIR
from receptionist.tenants.greeting import find_marked_greeting
from receptionist.tenants.toml_lines import KeyLines, split_key

__all__ = [
    "AREAS",
    "BUDGET_FIELDS",
    "BUSINESS_FIELDS",
    "TABLE_AREAS",
    "WHATSAPP_KEYS",
    "CallTypeRow",
    "ConfigParts",
    "FieldErrors",
    "FieldRow",
    "TemplateRow",
    "TemplatesArea",
    "call_type_rows",
    "call_types_from_form",
    "call_types_toml",
    "change_summary",
    "join_config",
    "map_problems",
    "set_active",
    "set_greeting",
    "set_scalar",
    "split_config",
    "templates_area",
    "templates_from_form",
    "templates_toml",
]

#: top-level keys edited as fields of their own (key -> required)
BUSINESS_FIELDS: dict[str, bool] = {
    "name": True,
    "owner_phone": True,
    "languages": True,
    "voice": False,
    "timezone": False,
}
BUDGET_FIELDS = ("monthly_usd_warn", "monthly_usd_limit")
#: which area a table belongs to, by the first part of its name; anything else is "other"
TABLE_AREAS = {
    "call_types": "call_types",
    "whatsapp": "templates",
    "templates": "templates",
    "actions": "rules",
    "budget": "budget",
}
#: the areas of tenant.toml, in the order they are put together
CONFIG_AREAS = ("preamble", "budget", "call_types", "templates", "rules", "other")
#: every area a form may post
AREAS = ("business", "budget", "greeting", "prompts", "files", "call_types", "templates",
         "rules", "other", "config")  # fmt: skip

_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")


@dataclass
class ConfigParts:
    """tenant.toml cut into areas (area -> its text); `whole` when it could not be cut."""

    areas: dict[str, str]
    whole: bool = False

    def text(self) -> str:
        return join_config(self.areas)


def _strip_multiline(line: str, inside: str | None) -> str | None:
    """The multi-line string delimiter still open after `line` (None: not inside one)."""
    for delim in re.findall(r'"""|\'\'\'', line):
        if inside is None:
            inside = delim
        elif delim == inside:
            inside = None
    return inside


def split_config(text: str) -> ConfigParts:
    areas: dict[str, list[str]] = {a: [] for a in CONFIG_AREAS}
    current = "preamble"
    pending: list[str] = []  # comments and blank lines: they go with the table that follows
    inside: str | None = None
    for line in text.split("\n"):
        was_inside = inside
        inside = _strip_multiline(line, inside)
        stripped = line.strip()
        header = None if was_inside else _HEADER.match(line)
        if header:
            parts = split_key(header.group(1))
            current = TABLE_AREAS.get(parts[0], "other") if parts else "other"
            areas[current].extend(pending)
            pending = []
            areas[current].append(line)
        elif not was_inside and (not stripped or stripped.startswith("#")):
            pending.append(line)
        else:
            areas[current].extend(pending)
            pending = []
            areas[current].append(line)
    areas[current].extend(pending)
    cut = ConfigParts({a: "\n".join(lines).strip("\n") for a, lines in areas.items()})
    try:
        same = tomllib.loads(cut.text()) == tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        same = False
    if not same:  # the file cannot be cut safely (or does not parse): one box
        return ConfigParts({**{a: "" for a in CONFIG_AREAS}, "preamble": text}, whole=True)
    return cut


def join_config(areas: Mapping[str, str]) -> str:
    texts = [areas.get(a, "").strip("\n") for a in CONFIG_AREAS]
    return "\n\n".join(t for t in texts if t) + "\n"


def area_lines(areas: Mapping[str, str]) -> list[tuple[str, int, int]]:
    """(area, first line, last line) of each area in `join_config(areas)` (1-based)."""
    out = []
    line = 1
    for a in CONFIG_AREAS:
        t = areas.get(a, "").strip("\n")
        if not t:
            continue
        n = t.count("\n") + 1
        out.append((a, line, line + n - 1))
        line += n + 1  # the blank line between areas
    return out


# --- single values ------------------------------------------------------------------------------


def toml_value(key: str, raw: str) -> str:
    """The TOML for a field's text: a list for `languages`, a number for the budget when it is
    one, else a string (the loader says what is wrong with it, beside the field)."""
    raw = raw.strip()
    if key == "languages":
        items = [x.strip() for x in raw.split(",") if x.strip()]
        return "[" + ", ".join(json.dumps(x, ensure_ascii=False) for x in items) + "]"
    if key in BUDGET_FIELDS:
        try:
            number = float(raw)
        except ValueError:
            return json.dumps(raw, ensure_ascii=False)
        if number == number and abs(number) != float("inf"):
            return repr(number)
    return json.dumps(raw, ensure_ascii=False)  # a JSON string is a TOML basic string


def set_scalar(
    text: str, table: tuple[str, ...], key: str, raw: str | None, *, literal: str | None = None
) -> str:
    """`text` (top-level keys, or the text of one table with its header) with `key` set to the
    field's value (None: the line removed, for an optional key; `literal`: TOML as given)."""
    lines = text.split("\n") if text else []
    at = _exact_line(text, (*table, key))
    value = literal if literal is not None else None if raw is None else toml_value(key, raw)
    new = None if value is None else f"{key} = {value}"
    if at is not None and _one_line(lines[at - 1]):
        if new is None:
            del lines[at - 1]
        else:
            lines[at - 1] = new
        return "\n".join(lines)
    if at is not None:  # a value over several lines: replaced whole
        end = at
        while end < len(lines) and not _parses("\n".join(lines[at - 1 : end])):
            end += 1
        del lines[at - 1 : end]
        if new is not None:
            lines.insert(at - 1, new)
        return "\n".join(lines)
    if new is None:
        return text
    if table:
        if not lines:
            lines = [f"[{'.'.join(table)}]"]
        lines.insert(_last_key_line(lines) + 1, new)
    else:
        lines.insert(_last_key_line(lines) + 1, new)
    return "\n".join(lines)


def _exact_line(text: str, path: tuple[str, ...]) -> int | None:
    """The line `path` itself was written on (not its parent's, as KeyLines.line falls back)."""
    if not text:
        return None
    keys = KeyLines(text)
    at = keys.line(*path)
    return at if at is not None and at != keys.line(*path[:-1]) else None


def _parses(text: str) -> bool:
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return False
    return True


def _one_line(line: str) -> bool:
    return _parses(line)


def _last_key_line(lines: list[str]) -> int:
    """Index of the last line that is not a comment or blank (-1: none)."""
    for i in range(len(lines) - 1, -1, -1):
        s = lines[i].strip()
        if s and not s.startswith("#"):
            return i
    return -1


def scalar_text(data: Mapping[str, Any], key: str) -> str:
    """A value as its field shows it."""
    value = data.get(key)
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def set_active(text: str, active: bool) -> str:
    """tenant.toml with `active` set (the top-level key; its areas kept)."""
    parts = split_config(text)
    literal = "true" if active else "false"
    parts.areas["preamble"] = set_scalar(parts.areas["preamble"], (), "active", "", literal=literal)
    return parts.text()


# --- the greeting -----------------------------------------------------------------------------

_MARKED_LINE = re.compile(r"^(\s*[-*]?\s*\**\s*greeting\s*\**\s*[:=]).*$", re.IGNORECASE)


def set_greeting(prompt: str, greeting: str) -> str:
    """The assistant prompt with its marked greeting line (tenants/greeting.py) set to
    `greeting`: the first `Greeting:` line replaced, or one added at the top."""
    greeting = " ".join(greeting.split()).replace('"', "'")
    lines = prompt.split("\n")
    for i, line in enumerate(lines):
        m = _MARKED_LINE.match(line)
        if m and find_marked_greeting(line):
            lines[i] = f'{m.group(1)} "{greeting}"'
            return "\n".join(lines)
    if not greeting:
        return prompt
    return f'GREETING: "{greeting}"\n\n' + prompt


# --- problems beside their fields ---------------------------------------------------------------


@dataclass
class FieldErrors:
    """Problems by form field (`area` or `area.field`); `general` for what has no place."""

    by_field: dict[str, list[str]] = field(default_factory=dict)

    def add(self, where: str, message: str) -> None:
        self.by_field.setdefault(where, []).append(message)

    def get(self, where: str) -> list[str]:
        return self.by_field.get(where, [])

    def __bool__(self) -> bool:
        return bool(self.by_field)


def map_problems(
    problems: list[dict[str, Any]],
    areas: Mapping[str, str],
    whole: bool,
    places: Mapping[tuple[str, ...], str] | None = None,
    row_areas: frozenset[str] = frozenset(),
) -> FieldErrors:
    """Each problem (`file`, `line`, `message`, as tenant_edit.save reports them) placed on the
    form: tenant.toml by the area its line falls in (a business or budget key on its field,
    with the line inside a box named), a prompt or an input file on its box."""
    errors = FieldErrors()
    text = join_config(areas)
    # the line of each key that has a field of its own (business, budget, rows of call types
    # and templates) -> that field
    own: dict[tuple[str, ...], str] = {(k,): f"business.{k}" for k in (*BUSINESS_FIELDS, "active")}
    own |= {("budget", k): f"budget.{k}" for k in BUDGET_FIELDS}
    own_lines = place_of_line(text, {**(places or {}), **own})
    spans = area_lines(areas)
    for p in problems:
        file, line, message = str(p.get("file") or ""), p.get("line"), str(p.get("message"))
        if file == CONFIG_FILE:
            if whole:
                where = "config"
            elif isinstance(line, int) and line in own_lines:
                where = own_lines[line]
            else:
                where = "general"
                for area, first, last in spans:
                    if isinstance(line, int) and first <= line <= last:
                        where = "business" if area == "preamble" else area
                        if where not in row_areas:  # a box: the line inside it
                            message = f"line {line - first + 1}: {message}"
                        break
            errors.add(where, message)
        elif file.startswith("prompts/"):
            errors.add(f"prompts.{file}", message)
        elif file.startswith(INPUT_DIR + "/"):
            errors.add(f"files.{file}", message)
        else:
            errors.add("general", message)
    return errors


# --- who changed what ---------------------------------------------------------------------------


def _keys(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return {}
    flat: dict[str, Any] = {}
    for k, v in data.items():
        if isinstance(v, dict) and k in ("call_types", "templates", "actions"):
            for sub, value in v.items():
                flat[f"{k}.{sub}"] = value
        else:
            flat[k] = v
    return flat


def change_summary(old: Mapping[str, str], new: Mapping[str, str], limit: int = 200) -> str:
    """What a save changed, for the versions list: the files added, removed or changed, and for
    tenant.toml the keys (`tenant.toml: name, call_types.order; +input_files/offers.md`)."""
    parts: list[str] = []
    for path in sorted({*old, *new}):
        if path not in old:
            parts.append(f"+{path}")
        elif path not in new:
            parts.append(f"-{path}")
        elif old[path] != new[path]:
            if path == CONFIG_FILE:
                a, b = _keys(old[path]), _keys(new[path])
                changed = [k for k in sorted({*a, *b}) if a.get(k) != b.get(k)]
                parts.append(f"{path}: {', '.join(changed)}" if changed else f"{path} (comments)")
            else:
                parts.append(path)
    text = "; ".join(parts) or "no change"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def prompt_of(files: Mapping[str, str]) -> str:
    return files.get(ASSISTANT_PROMPT, "")


# --- call types and templates as rows of fields -------------------------------------------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ROW_KEY = re.compile(r"^(ct|tpl)\.(\d{1,3})\.")


def _key(name: str) -> str:
    return name if _BARE_KEY.fullmatch(name) else json.dumps(name, ensure_ascii=False)


def _str(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


@dataclass
class FieldRow:
    name: str
    type: str = "string"
    required: bool = False
    description: str = ""


@dataclass
class CallTypeRow:
    name: str
    description: str = ""
    fields: list[FieldRow] = field(default_factory=list)
    callback: bool = False  # unresolved or dropped: the AI calls the caller back ([callbacks])


@dataclass
class TemplateRow:
    name: str
    language: str = "en"
    text: str = ""


@dataclass
class TemplatesArea:
    sender: dict[str, str]  # the [whatsapp] table: integrated_number, namespace, auth_key_env
    rows: list[TemplateRow]


WHATSAPP_KEYS = ("integrated_number", "namespace", "auth_key_env")


def _only(data: Any, keys: set[str]) -> bool:
    return isinstance(data, dict) and set(data) <= keys


def call_type_rows(text: str) -> list[CallTypeRow] | None:
    """The call types area as rows, or None when it holds more than rows can show (then it is
    edited as TOML)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None
    if not _only(data, {"call_types"}):
        return None
    rows = []
    for name, table in data.get("call_types", {}).items():
        if not _only(table, {"description", "fields", "callback"}):
            return None
        description = table.get("description", "")
        fields = table.get("fields", {})
        callback = table.get("callback", False)
        if not isinstance(description, str) or not isinstance(fields, dict):
            return None
        if not isinstance(callback, bool):
            return None
        row = CallTypeRow(name, description, callback=callback)
        for fname, spec in fields.items():
            if isinstance(spec, str):
                spec = {"type": spec}
            if not _only(spec, {"type", "required", "description"}):
                return None
            ftype, required = spec.get("type", ""), spec.get("required", False)
            fdesc = spec.get("description", "")
            if not (isinstance(ftype, str) and isinstance(fdesc, str)):
                return None
            if not isinstance(required, bool):
                return None
            row.fields.append(FieldRow(fname, ftype, required, fdesc))
        rows.append(row)
    return rows


def call_types_toml(rows: list[CallTypeRow]) -> str:
    out: list[str] = []
    for row in rows:
        head = f"call_types.{_key(row.name)}"
        out += [f"[{head}]", f"description = {_str(row.description)}"]
        out += ["callback = true", ""] if row.callback else [""]
        if row.fields:
            out.append(f"[{head}.fields]")
            for f in row.fields:
                required = "true" if f.required else "false"
                out.append(
                    f"{_key(f.name)} = {{ type = {_str(f.type)}, required = {required}, "
                    f"description = {_str(f.description)} }}"
                )
            out.append("")
    return "\n".join(out).strip("\n")


def templates_area(text: str) -> TemplatesArea | None:
    """The WhatsApp area (sender and templates) as fields, or None (then edited as TOML)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None
    if not _only(data, {"whatsapp", "templates"}):
        return None
    sender = data.get("whatsapp", {})
    if not _only(sender, set(WHATSAPP_KEYS)):
        return None
    rows = []
    for name, table in data.get("templates", {}).items():
        if not _only(table, {"language", "text"}):
            return None
        language, body = table.get("language", ""), table.get("text", "")
        if not (isinstance(language, str) and isinstance(body, str)):
            return None
        rows.append(TemplateRow(name, language, body))
    return TemplatesArea({k: str(sender.get(k, "")) for k in WHATSAPP_KEYS if k in sender}, rows)


def templates_toml(area: TemplatesArea) -> str:
    out: list[str] = []
    sender = {k: v for k, v in area.sender.items() if v.strip()}
    if sender:
        out.append("[whatsapp]")
        out += [f"{k} = {_str(v.strip())}" for k, v in sender.items()]
        out.append("")
    for row in area.rows:
        out += [f"[templates.{_key(row.name)}]", f"language = {_str(row.language)}"]
        out += [f"text = {_str(row.text)}", ""]
    return "\n".join(out).strip("\n")


def _indexes(form: Mapping[str, str], kind: str) -> list[int]:
    found = set()
    for name in form:
        m = _ROW_KEY.match(name)
        if m and m.group(1) == kind:
            found.add(int(m.group(2)))
    return sorted(found)


def call_types_from_form(
    form: Mapping[str, str], errors: FieldErrors
) -> tuple[list[CallTypeRow], dict[tuple[str, ...], str]]:
    """The rows a call types form posted (`ct.I.name`, `ct.I.f.J.type`, ...; blank rows and
    those marked for removal left out), and where each row's problems go: `call_types.NAME` or
    `call_types.NAME.fields.FIELD` -> the form's place (`ct.I`, `ct.I.f.J`)."""
    rows: list[CallTypeRow] = []
    places: dict[tuple[str, ...], str] = {}
    for i in _indexes(form, "ct"):
        p = f"ct.{i}"
        name = form.get(f"{p}.name", "").strip()
        description = form.get(f"{p}.description", "").strip()
        if form.get(f"{p}.delete"):
            continue
        fields: list[FieldRow] = []
        j = 0
        while f"{p}.f.{j}.name" in form and j < 200:
            q = f"{p}.f.{j}"
            fname = form.get(f"{q}.name", "").strip()
            fdesc = form.get(f"{q}.description", "").strip()
            if not form.get(f"{q}.delete") and (fname or fdesc):
                if not fname:
                    errors.add(f"{q}.name", "a field needs a name")
                required = bool(form.get(f"{q}.required"))
                fields.append(FieldRow(fname, form.get(f"{q}.type", "string"), required, fdesc))
                places[("call_types", name, "fields", fname)] = q
            j += 1
        if not name and not description and not fields:
            continue  # the blank row for a new call type
        if not name:
            errors.add(f"{p}.name", "a call type needs a name")
        places[("call_types", name)] = p
        places[("call_types", name, "description")] = f"{p}.description"
        callback = bool(form.get(f"{p}.callback"))
        rows.append(CallTypeRow(name, description, fields, callback=callback))
    return rows, places


def templates_from_form(
    form: Mapping[str, str], errors: FieldErrors
) -> tuple[TemplatesArea, dict[tuple[str, ...], str]]:
    sender = {k: form.get(f"wa.{k}", "") for k in WHATSAPP_KEYS}
    rows: list[TemplateRow] = []
    places: dict[tuple[str, ...], str] = {("whatsapp", k): f"wa.{k}" for k in WHATSAPP_KEYS}
    for i in _indexes(form, "tpl"):
        p = f"tpl.{i}"
        name = form.get(f"{p}.name", "").strip()
        text = form.get(f"{p}.text", "").replace("\r\n", "\n").strip()
        language = form.get(f"{p}.language", "").strip()
        if form.get(f"{p}.delete") or (not name and not text):
            continue
        if not name:
            errors.add(f"{p}.name", "a template needs its name as approved at MSG91")
        places[("templates", name)] = p
        places[("templates", name, "language")] = f"{p}.language"
        places[("templates", name, "text")] = f"{p}.text"
        rows.append(TemplateRow(name, language, text))
    return TemplatesArea(sender, rows), places


def place_of_line(text: str, places: Mapping[tuple[str, ...], str]) -> dict[int, str]:
    """line -> form place, for the key paths in `places` written in `text`."""
    out: dict[int, str] = {}
    for path, where in places.items():
        at = _exact_line(text, path)
        if at is not None:
            out.setdefault(at, where)
    return out
