"""Check a tenant folder and build a :class:`~receptionist.tenants.model.Tenant` from it.

One pass does both, so the loader and ``receptionist tenants validate`` can never disagree: every
problem found is reported (with the file, and the line where there is one), and a tenant is built
only when there are none. A small-business owner edits these files by hand, so messages say what
to change, and unknown keys get a "did you mean" instead of being silently ignored.
"""

from __future__ import annotations

import bisect
import difflib
import hashlib
import json
import re
import tomllib
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from .actions import (
    CALL_SOURCES,
    RECIPIENT_KINDS,
    ActionRule,
    Template,
    Variable,
    WhatsAppSender,
    placeholder_numbers,
)
from .greeting import cached_greeting
from .messages import MESSAGE_KEYS, resolve_messages
from .model import ENGINES, FIELD_TYPES, CallType, FieldSpec, Tenant

__all__ = [
    "GEMINI_VOICES",
    "MAX_INPUT_BYTES_TOTAL",
    "MAX_INPUT_FILE_BYTES",
    "MAX_TEMPLATE_CHARS",
    "MAX_VARIABLE_CHARS",
    "TENANT_ID_PATTERN",
    "Problem",
    "is_valid_tenant_id",
    "load_tenant",
    "tenant_files",
    "validate_all",
    "validate_tenant",
]

TENANT_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
CONFIG_FILE = "tenant.toml"
ASSISTANT_PROMPT = "prompts/assistant.txt"
ANALYZER_PROMPT = "prompts/analyzer.txt"
INPUT_DIR = "input_files"

# Everything in input_files/ goes into every call's system instruction: keep it phone-sized.
MAX_INPUT_FILE_BYTES = 256 * 1024
MAX_INPUT_BYTES_TOTAL = 512 * 1024

# WhatsApp's limits: a template body and each of its variables at most 1024 characters.
MAX_TEMPLATE_CHARS = 1024
MAX_VARIABLE_CHARS = 1024
_DEFAULT_MAX_CHARS = Variable().max_chars

# Prebuilt voices of the Gemini Live API (checked unless the tenant uses the local engine).
GEMINI_VOICES: tuple[str, ...] = (
    "Achernar", "Achird", "Algenib", "Algieba", "Alnilam", "Aoede", "Autonoe", "Callirrhoe",
    "Charon", "Despina", "Enceladus", "Erinome", "Fenrir", "Gacrux", "Iapetus", "Kore",
    "Laomedeia", "Leda", "Orus", "Puck", "Pulcherrima", "Rasalgethi", "Sadachbia",
    "Sadaltager", "Schedar", "Sulafat", "Umbriel", "Vindemiatrix", "Zephyr", "Zubenelgenubi",
)  # fmt: skip

_TOP_KEYS = (
    "name",
    "owner_phone",
    "languages",
    "voice",
    "active",
    "timezone",
    "engine",
    "model",
    "exotel",
    "messages",
    "budget",
    "call_types",
    "whatsapp",
    "templates",
    "actions",
)
_REQUIRED_TOP = ("name", "owner_phone", "languages", "call_types")
_EXOTEL_KEYS = ("auth_user_env", "auth_token_env")
_BUDGET_KEYS = ("monthly_usd_warn", "monthly_usd_limit")
_CALL_TYPE_KEYS = ("description", "fields")
_FIELD_KEYS = ("type", "required", "description")
_WHATSAPP_KEYS = ("integrated_number", "namespace", "auth_key_env")
_TEMPLATE_KEYS = ("language", "text")
_RULE_KEYS = ("to", "template", "ai_written", "urgent", "when", "variables")
_WHEN_KEYS = ("present", "equals")
_VARIABLE_KEYS = ("from", "default", "write", "fallback", "max_chars")

_E164 = re.compile(r"\+[1-9]\d{7,14}")
_BCP47 = re.compile(r"([a-zA-Z]{2,3})(?:-([a-zA-Z]{4}))?(?:-([a-zA-Z]{2}|\d{3}))?")
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,127}")
_SCHEMA_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}")
_WA_NUMBER = re.compile(r"[1-9]\d{9,14}")  # MSG91's integrated_number: country code, no "+"
_WA_LANGUAGE = re.compile(r"[a-z]{2,3}(?:_[A-Z]{2})?")  # "en", "en_US", "hi", "fil"
_TEMPLATE_NAME = re.compile(r"[a-z0-9_]{1,512}")  # as WhatsApp names templates
_NAMESPACE = re.compile(r"[A-Za-z0-9_-]{1,100}")
_ANY_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}")
_NUMBER = re.compile(r"\s*\d+\s*$")
_TOML_POS = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_TOML_END = re.compile(r"\s*\(at end of document\)\s*$")


def is_valid_tenant_id(tenant_id: object) -> bool:
    """True for a safe folder slug: ``[a-z0-9][a-z0-9_-]{0,62}`` (no dots, slashes, capitals)."""
    return isinstance(tenant_id, str) and TENANT_ID_PATTERN.fullmatch(tenant_id) is not None


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a tenant folder; ``file`` is relative to the tenants root."""

    tenant_id: str
    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.message}"


# --------------------------------------------------------------------------- TOML key lines

_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_HEADER_LINE = re.compile(r"^\s*\[\[?\s*(" + _KEY_PART + r"(?:\s*\.\s*" + _KEY_PART + r")*)\s*\]")
_KEY_LINE = re.compile(r"^\s*(" + _KEY_PART + r"(?:\s*\.\s*" + _KEY_PART + r")*)\s*=\s*(.*)$")
_KEY_AT = re.compile(r"[ \t]*(" + _KEY_PART + r"(?:[ \t]*\.[ \t]*" + _KEY_PART + r")*)[ \t]*=")
_SPLIT_PARTS = re.compile(_KEY_PART)


def _split_key(dotted: str) -> tuple[str, ...]:
    parts = []
    for raw in _SPLIT_PARTS.findall(dotted):
        if raw[:1] in "\"'":
            raw = raw[1:-1]
        parts.append(raw)
    return tuple(parts)


def _item(index: int) -> str:
    """Path part for the ``index``-th (0-based) element of an array or array of tables."""
    return f"[{index}]"


def _dotted(path: Iterable[str]) -> str:
    """A key path as the owner wrote it: ``actions.order.to`` (element positions left out)."""
    return ".".join(part for part in path if not (part.startswith("[") and part.endswith("]")))


class _KeyLines:
    """Where each key path was written in a TOML text (approximate, for messages only).

    Elements of arrays get a path part ``[i]`` (see :func:`_item`), both in arrays of tables
    (``[[actions.order]]``: the second one is ``("actions", "order", "[1]")``) and in arrays
    written as values, even across lines (``variables = [ ... ]``), so each can be pointed at.
    """

    def __init__(self, text: str) -> None:
        self._lines: dict[tuple[str, ...], int] = {}
        self._text = text
        self._starts = [0] + [m.end() for m in re.finditer("\n", text)]
        arrays: dict[tuple[str, ...], int] = {}  # array of tables -> index of its last element
        table: tuple[str, ...] = ()
        skip_to = 0  # lines before this one belong to a value that spans lines
        for index, line in enumerate(text.split("\n")):
            if index < skip_to:
                continue
            number = index + 1
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            header = _HEADER_LINE.match(line)
            if header and not _KEY_LINE.match(line):
                parts = _split_key(header.group(1))
                if stripped.startswith("[[") and parts:
                    plain = (*self._resolve(parts[:-1], arrays), parts[-1])
                    self._lines.setdefault(plain, number)
                    arrays[plain] = arrays.get(plain, -1) + 1
                    table = (*plain, _item(arrays[plain]))
                else:
                    table = self._resolve(parts, arrays)
                self._lines.setdefault(table, number)
                continue
            key = _KEY_LINE.match(line)
            if not key:
                continue
            path = table + _split_key(key.group(1))
            self._lines.setdefault(path, number)
            end = self._value(self._starts[index] + key.start(2), path)
            skip_to = max(index + 1, self._line_index(end) + 1)

    @staticmethod
    def _resolve(parts: tuple[str, ...], arrays: dict[tuple[str, ...], int]) -> tuple[str, ...]:
        """A table header's path, with the current element of each array of tables in it."""
        out: tuple[str, ...] = ()
        for part in parts:
            out = (*out, part)
            if out in arrays:
                out = (*out, _item(arrays[out]))
        return out

    def _line_index(self, pos: int) -> int:
        return bisect.bisect_right(self._starts, pos) - 1

    def _note(self, path: tuple[str, ...], pos: int) -> None:
        self._lines.setdefault(path, self._line_index(pos) + 1)

    def _skip(self, pos: int, *, newlines: bool) -> int:
        """Past blanks (and, inside arrays and tables, new lines and comments)."""
        text = self._text
        while pos < len(text):
            ch = text[pos]
            if ch in " \t" or (newlines and ch == "\n"):
                pos += 1
            elif newlines and ch == "#":
                end = text.find("\n", pos)
                pos = len(text) if end < 0 else end
            else:
                break
        return pos

    def _value(self, pos: int, path: tuple[str, ...]) -> int:
        """Note the lines inside the value starting at ``pos``; returns the position after it."""
        text = self._text
        pos = self._skip(pos, newlines=False)
        if pos >= len(text):
            return pos
        ch = text[pos]
        if ch == "[":
            return self._array(pos + 1, path)
        if ch == "{":
            return self._inline_table(pos + 1, path)
        if ch in "\"'":
            return self._string(pos)
        while pos < len(text) and text[pos] not in ",]}\n#":
            pos += 1
        return pos

    def _string(self, pos: int) -> int:
        text = self._text
        quote = text[pos]
        multi = text.startswith(quote * 3, pos)
        pos += 3 if multi else 1
        while pos < len(text):
            ch = text[pos]
            if ch == "\\" and quote == '"':
                pos += 2
            elif multi and text.startswith(quote * 3, pos):
                pos += 3
                while pos < len(text) and text[pos] == quote:  # """a""""" ends with quotes
                    pos += 1
                return pos
            elif not multi and ch == quote:
                return pos + 1
            elif not multi and ch == "\n":
                return pos
            else:
                pos += 1
        return pos

    def _array(self, pos: int, path: tuple[str, ...]) -> int:
        text = self._text
        index = 0
        while True:
            pos = self._skip(pos, newlines=True)
            if pos >= len(text):
                return pos
            if text[pos] == "]":
                return pos + 1
            if text[pos] == ",":
                pos += 1
                continue
            element = (*path, _item(index))
            self._note(element, pos)
            index += 1
            end = self._value(pos, element)
            pos = end if end > pos else pos + 1

    def _inline_table(self, pos: int, path: tuple[str, ...]) -> int:
        text = self._text
        while True:
            pos = self._skip(pos, newlines=True)
            if pos >= len(text):
                return pos
            if text[pos] == "}":
                return pos + 1
            if text[pos] == ",":
                pos += 1
                continue
            key = _KEY_AT.match(text, pos)
            if key is None:  # not TOML; tomllib reports it
                end = self._value(pos, path)
                pos = end if end > pos else pos + 1
                continue
            inner = (*path, *_split_key(key.group(1)))
            self._note(inner, pos)
            pos = max(self._value(key.end(), inner), key.end())

    def line(self, *path: str) -> int | None:
        """Line of ``path``, else of its nearest written parent, else None."""
        while path:
            found = self._lines.get(tuple(path))
            if found is not None:
                return found
            path = path[:-1]
        return None


# --------------------------------------------------------------------------- helpers


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _decode(data: bytes) -> tuple[str | None, str | None]:
    """(text, None) for UTF-8 text (BOM dropped, CRLF -> LF), else (None, what is wrong)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        offset = exc.start + (3 if data.startswith(b"\xef\xbb\xbf") else 0)
        line = data.count(b"\n", 0, offset) + 1
        return None, (
            f"is not UTF-8 text: bad byte 0x{data[offset]:02x} at byte offset {offset} "
            f"(line {line}); save it as UTF-8 text"
        )
    if "\x00" in text:
        return None, f"looks like a binary file (NUL byte at character {text.index(chr(0))})"
    return text.replace("\r\n", "\n").replace("\r", "\n"), None


def _is_env_name(value: str) -> bool:
    """An environment variable's NAME in capitals, not something that looks like a secret key.

    Keys and tokens are long runs of letters and digits; names have words joined by "_".
    """
    if not _ENV_NAME.fullmatch(value):
        return False
    return "_" in value or len(value) < 16 or sum(c.isdigit() for c in value) < 4


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


def _canonical_language(code: str) -> str:
    m = _BCP47.fullmatch(code)
    assert m is not None
    lang, script, region = m.groups()
    out = lang.lower()
    if script:
        out += "-" + script.title()
    if region:
        out += "-" + region.upper()
    return out


def tenant_files(tenant_dir: Path) -> list[Path]:
    """Every file whose change should reload the tenant: config, prompts and input files."""
    found = [tenant_dir / CONFIG_FILE]
    prompts = tenant_dir / "prompts"
    if prompts.is_dir():
        found.extend(sorted(p for p in prompts.iterdir() if not p.name.startswith(".")))
    found.extend(path for _, path in _input_files(tenant_dir))
    return found


def _input_files(tenant_dir: Path) -> list[tuple[str, Path]]:
    """(name relative to input_files/, path) of every visible regular file, sorted by name."""
    base = tenant_dir / INPUT_DIR
    if not base.is_dir():
        return []
    out: list[tuple[str, Path]] = []
    for path in base.rglob("*"):
        rel = path.relative_to(base)
        if any(part.startswith(".") for part in rel.parts) or path.name.endswith("~"):
            continue
        if path.is_file():
            out.append((rel.as_posix(), path))
    out.sort(key=lambda item: item[0])
    return out


# --------------------------------------------------------------------------- the loader


class _Loader:
    def __init__(self, root: Path, tenant_id: str) -> None:
        self.root = root
        self.tenant_id = tenant_id
        self.dir = root / tenant_id
        self.problems: list[Problem] = []
        self.keys = _KeyLines("")
        self.config_rel = f"{tenant_id}/{CONFIG_FILE}"

    # -- reporting
    def add(self, rel: str, line: int | None, message: str) -> None:
        self.problems.append(Problem(self.tenant_id, rel, line, message))

    def add_config(self, path: tuple[str, ...], message: str) -> None:
        self.add(self.config_rel, self.keys.line(*path) if path else None, message)

    # -- files
    def read_text(self, rel_in_tenant: str, *, required: bool) -> str | None:
        rel = f"{self.tenant_id}/{rel_in_tenant}"
        path = self.dir / rel_in_tenant
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            if required:
                hint = ""
                if rel_in_tenant.startswith("prompts/"):
                    stem = Path(rel_in_tenant).stem
                    near = sorted(p.name for p in (self.dir / "prompts").glob(f"{stem}*"))
                    if near:
                        hint = f" (found {near[0]}: rename it to {Path(rel_in_tenant).name})"
                self.add(rel, None, f"file is missing{hint}")
            return None
        except IsADirectoryError:
            self.add(rel, None, "is a folder, expected a file")
            return None
        except OSError as exc:
            self.add(rel, None, f"cannot be read: {exc.strerror or exc}")
            return None
        text, error = _decode(data)
        if error:
            self.add(rel, None, error)
        return text

    # -- the whole folder
    def run(self) -> Tenant | None:
        if not is_valid_tenant_id(self.tenant_id):
            self.add(
                self.tenant_id,
                None,
                "folder name is not a valid tenant id: use 1-63 lowercase letters, digits, "
                "'-' or '_', starting with a letter or digit",
            )
            return None
        if not self.dir.is_dir():
            self.add(self.tenant_id, None, "no such tenant folder")
            return None

        config = self.load_config()
        cfg = self.check_config(config) if config is not None else None
        assistant = self.read_prompt(ASSISTANT_PROMPT)
        analyzer = self.read_prompt(ANALYZER_PROMPT)
        inputs = self.read_inputs()
        if self.problems or cfg is None or assistant is None or analyzer is None:
            return None
        return self.build(config or {}, cfg, assistant, analyzer, inputs)

    def load_config(self) -> dict[str, Any] | None:
        text = self.read_text(CONFIG_FILE, required=True)
        if text is None:
            return None
        self.keys = _KeyLines(text)
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            message = str(exc)
            line: int | None = None
            pos = _TOML_POS.search(message)
            if pos:
                line = int(pos.group(1))
                message = f"{message[: pos.start()]} (column {pos.group(2)})"
            elif _TOML_END.search(message):
                line = max(1, len(text.splitlines()))
                message = _TOML_END.sub("", message) + " (at end of file)"
            if message.startswith("Invalid value"):
                message += ': text must be in quotes (name = "Sweet Crumbs"), lists in [ ]'
            self.add(self.config_rel, line, f"TOML syntax error: {message}")
            return None

    def read_prompt(self, rel: str) -> str | None:
        text = self.read_text(rel, required=True)
        if text is None:
            return None
        if not text.strip():
            self.add(f"{self.tenant_id}/{rel}", None, "prompt is empty")
            return None
        return text

    def read_inputs(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        total = 0
        for name, path in _input_files(self.dir):
            rel_in_tenant = f"{INPUT_DIR}/{name}"
            rel = f"{self.tenant_id}/{rel_in_tenant}"
            try:
                size = path.stat().st_size
            except OSError as exc:
                self.add(rel, None, f"cannot be read: {exc.strerror or exc}")
                continue
            if size > MAX_INPUT_FILE_BYTES:
                self.add(
                    rel,
                    None,
                    f"is too large ({size} bytes; at most {MAX_INPUT_FILE_BYTES}): everything "
                    "in input_files/ is read to the AI on every call, keep it short",
                )
                continue
            text = self.read_text(rel_in_tenant, required=True)
            if text is None:
                continue
            total += size
            if text.strip():
                out.append((name, text))
        if total > MAX_INPUT_BYTES_TOTAL:
            self.add(
                f"{self.tenant_id}/{INPUT_DIR}",
                None,
                f"input files total {total} bytes; at most {MAX_INPUT_BYTES_TOTAL}",
            )
        return out

    # -- tenant.toml contents
    def check_unknown(self, table: dict[str, Any], allowed: tuple[str, ...], path: tuple[str, ...]):
        for key in table:
            if key not in allowed:
                where = _dotted((*path, key))
                self.add_config(
                    (*path, key),
                    f"unknown key '{where}'{_suggest(key, allowed)} "
                    f"(allowed here: {', '.join(allowed)})",
                )

    def text_value(
        self, table: dict[str, Any], key: str, path: tuple[str, ...], *, required: bool = False
    ) -> str | None:
        dotted = _dotted((*path, key))
        if key not in table:
            if required:
                self.add_config(path, f"missing required key '{dotted}'")
            return None
        value = table[key]
        if not isinstance(value, str):
            self.add_config(
                (*path, key), f"{dotted} must be text in quotes, not {_type_name(value)}"
            )
            return None
        if not value.strip():
            self.add_config((*path, key), f"{dotted} must not be empty")
            return None
        return value.strip()

    def table_value(self, table: dict[str, Any], key: str, path: tuple[str, ...]):
        value = table.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            dotted = _dotted((*path, key))
            self.add_config(
                (*path, key), f"{dotted} must be a table ([{dotted}]), not {_type_name(value)}"
            )
            return None
        return value

    def check_config(self, config: dict[str, Any]) -> dict[str, Any] | None:
        """Validate the parsed tenant.toml; returns the cleaned values (or None on problems)."""
        before = len(self.problems)
        self.check_unknown(config, _TOP_KEYS, ())
        out: dict[str, Any] = {}
        for key in _REQUIRED_TOP:
            if key not in config:
                self.add_config((), f"missing required key '{key}'")

        out["name"] = self.text_value(config, "name", ())

        phone = self.text_value(config, "owner_phone", ())
        if phone is not None:
            compact = re.sub(r"[\s\-().]", "", phone)
            if not _E164.fullmatch(compact):
                self.add_config(
                    ("owner_phone",),
                    f'owner_phone must be E.164 (+ and 8-15 digits), e.g. "+919800000001"; '
                    f"got {phone!r}",
                )
            out["owner_phone"] = compact

        out["languages"] = self.check_languages(config)

        voice = None
        engine = None
        if "engine" in config:
            engine = self.text_value(config, "engine", ())
            if engine is not None and engine not in ENGINES:
                self.add_config(
                    ("engine",),
                    f"engine must be one of {', '.join(repr(e) for e in ENGINES)}; got {engine!r}"
                    f"{_suggest(engine, ENGINES)}",
                )
        out["engine"] = engine
        if "voice" in config:
            voice = self.text_value(config, "voice", ())
            if voice is not None and engine != "local":
                known = {v.lower(): v for v in GEMINI_VOICES}
                if voice.lower() in known:
                    voice = known[voice.lower()]
                else:
                    self.add_config(
                        ("voice",),
                        f"voice {voice!r} is not a Gemini voice"
                        f"{_suggest(voice.title(), GEMINI_VOICES)}"
                        f" (choose one of: {', '.join(GEMINI_VOICES)})",
                    )
        out["voice"] = voice

        active = config.get("active", True)
        if not isinstance(active, bool):
            self.add_config(("active",), f"active must be true or false, not {_type_name(active)}")
            active = True
        out["active"] = active

        timezone = "Asia/Kolkata"
        if "timezone" in config:
            timezone = self.text_value(config, "timezone", ()) or timezone
            try:
                zoneinfo.ZoneInfo(timezone)
            except Exception:
                self.add_config(
                    ("timezone",),
                    f'timezone {timezone!r} is not a known time zone (e.g. "Asia/Kolkata")',
                )
        out["timezone"] = timezone

        model = None
        if "model" in config:
            model = self.text_value(config, "model", ())
            if model is not None and not _MODEL_NAME.fullmatch(model):
                self.add_config(("model",), f"model {model!r} is not a valid model name")
        out["model"] = model

        out["exotel"] = self.check_exotel(config)
        out["budget"] = self.check_budget(config)
        out["messages"] = self.check_messages(config)
        out["call_types"] = self.check_call_types(config)
        out["whatsapp"] = self.check_whatsapp(config)
        out["templates"] = self.check_templates(config)
        out["actions"] = self.check_actions(config, out["templates"])
        return out if len(self.problems) == before else None

    def check_languages(self, config: dict[str, Any]) -> tuple[str, ...]:
        if "languages" not in config:
            return ()
        value = config["languages"]
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value:
            self.add_config(
                ("languages",),
                'languages must be a non-empty list like ["en-IN", "hi-IN"] '
                "(the first is the main language)",
            )
            return ()
        out: list[str] = []
        for item in value:
            if not isinstance(item, str):
                self.add_config(
                    ("languages",), f"languages entries must be text, not {_type_name(item)}"
                )
                continue
            if not _BCP47.fullmatch(item.strip()):
                hint = ""
                if "_" in item and _BCP47.fullmatch(item.strip().replace("_", "-")):
                    hint = f"; write {item.strip().replace('_', '-')!r}"
                self.add_config(
                    ("languages",),
                    f'language {item!r} is not a BCP-47 code like "hi-IN"{hint}',
                )
                continue
            code = _canonical_language(item.strip())
            if code in out:
                self.add_config(("languages",), f"language {code!r} is listed twice")
                continue
            out.append(code)
        return tuple(out)

    def check_budget(self, config: dict[str, Any]) -> tuple[Decimal | None, Decimal | None]:
        table = self.table_value(config, "budget", ())
        if table is None:
            return None, None
        path = ("budget",)
        self.check_unknown(table, _BUDGET_KEYS, path)
        values: dict[str, Decimal | None] = {}
        for key in _BUDGET_KEYS:
            raw = table.get(key)
            if raw is None:
                values[key] = None
            elif isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0:
                self.add_config((*path, key), f"budget.{key} must be a number of US dollars >= 0")
                values[key] = None
            else:
                values[key] = Decimal(str(raw))
        warn, limit = values["monthly_usd_warn"], values["monthly_usd_limit"]
        if warn is not None and limit is not None and warn > limit:
            self.add_config(path, "budget.monthly_usd_warn must not exceed monthly_usd_limit")
        return warn, limit

    def check_exotel(self, config: dict[str, Any]) -> tuple[str | None, str | None]:
        table = self.table_value(config, "exotel", ())
        if table is None:
            return None, None
        path = ("exotel",)
        self.check_unknown(table, _EXOTEL_KEYS, path)
        names: dict[str, str | None] = {}
        for key in _EXOTEL_KEYS:
            value = self.text_value(table, key, path)
            if value is not None and not _is_env_name(value):
                self.add_config(
                    (*path, key),
                    f"exotel.{key} must be the NAME of an environment variable in capitals "
                    f'(e.g. "BAKERY_EXOTEL_TOKEN"), never the key or token itself',
                )
                value = None
            names[key] = value
        user_present = "auth_user_env" in table
        token_present = "auth_token_env" in table
        if user_present != token_present:
            missing = "auth_token_env" if user_present else "auth_user_env"
            present = "auth_user_env" if user_present else "auth_token_env"
            self.add_config(
                path,
                f"exotel.{present} is set but exotel.{missing} is not: give both or neither",
            )
        return names.get("auth_user_env"), names.get("auth_token_env")

    def check_messages(self, config: dict[str, Any]) -> dict[str, str]:
        table = self.table_value(config, "messages", ())
        if table is None:
            return {}
        path = ("messages",)
        self.check_unknown(table, MESSAGE_KEYS, path)
        out: dict[str, str] = {}
        for key in MESSAGE_KEYS:
            value = self.text_value(table, key, path)
            if value is not None:
                out[key] = value
        return out

    def check_call_types(self, config: dict[str, Any]) -> tuple[CallType, ...]:
        if "call_types" not in config:
            return ()
        table = self.table_value(config, "call_types", ())
        if table is None:
            return ()
        if not table:
            self.add_config(
                ("call_types",),
                "call_types is empty: add at least one [call_types.<name>] table",
            )
            return ()
        out: list[CallType] = []
        for ct_name, ct in table.items():
            path = ("call_types", ct_name)
            if not _SCHEMA_NAME.fullmatch(ct_name):
                self.add_config(
                    path,
                    f"call type name {ct_name!r} must be lowercase letters, digits and '_', "
                    "starting with a letter (e.g. custom_cake)",
                )
            if not isinstance(ct, dict):
                self.add_config(
                    path,
                    f"call_types.{ct_name} must be a table ([call_types.{ct_name}]), "
                    f"not {_type_name(ct)}",
                )
                continue
            self.check_unknown(ct, _CALL_TYPE_KEYS, path)
            description = self.text_value(ct, "description", path, required=True)
            fields: list[FieldSpec] = []
            field_table = self.table_value(ct, "fields", path)
            for field_name, spec in (field_table or {}).items():
                checked = self.check_field((*path, "fields", field_name), field_name, spec)
                if checked is not None:
                    fields.append(checked)
            out.append(CallType(ct_name, description or "", tuple(fields)))
        return tuple(out)

    def check_field(self, path: tuple[str, ...], name: str, spec: object) -> FieldSpec | None:
        dotted = ".".join(path)
        ok = True
        if not _SCHEMA_NAME.fullmatch(name):
            self.add_config(
                path,
                f"field name {name!r} in {'.'.join(path[:2])} must be lowercase letters, digits "
                "and '_', starting with a letter (e.g. delivery_address)",
            )
            ok = False
        if isinstance(spec, str):  # shorthand: phone = "phone"
            spec = {"type": spec}
        if not isinstance(spec, dict):
            self.add_config(
                path,
                f'{dotted} must be a table like {{ type = "string", required = true, '
                f'description = "..." }}, not {_type_name(spec)}',
            )
            return None
        self.check_unknown(spec, _FIELD_KEYS, path)
        ftype = spec.get("type")
        if ftype is None:
            self.add_config(path, f"{dotted} is missing 'type' (one of {', '.join(FIELD_TYPES)})")
            ok = False
        elif not isinstance(ftype, str) or ftype.strip().lower() not in FIELD_TYPES:
            shown = ftype if isinstance(ftype, str) else _type_name(ftype)
            self.add_config(
                (*path, "type"),
                f"{dotted}.type {shown!r} is not a field type"
                f"{_suggest(str(ftype).lower(), FIELD_TYPES)} "
                f"(use one of {', '.join(FIELD_TYPES)})",
            )
            ok = False
        required = spec.get("required", False)
        if not isinstance(required, bool):
            self.add_config(
                (*path, "required"),
                f"{dotted}.required must be true or false, not {_type_name(required)}",
            )
            ok = False
        description = spec.get("description", "")
        if not isinstance(description, str):
            self.add_config(
                (*path, "description"),
                f"{dotted}.description must be text in quotes, not {_type_name(description)}",
            )
            ok = False
        if not ok:
            return None
        assert isinstance(ftype, str)
        return FieldSpec(name, ftype.strip().lower(), required, description.strip())

    # -- what to send after a call: [whatsapp], [templates.<name>], [[actions.<call_type>]]
    def bool_value(self, table: dict[str, Any], key: str, path: tuple[str, ...]) -> bool:
        value = table.get(key, False)
        if not isinstance(value, bool):
            self.add_config(
                (*path, key),
                f"{_dotted((*path, key))} must be true or false, not {_type_name(value)}",
            )
            return False
        return value

    def check_whatsapp(self, config: dict[str, Any]) -> WhatsAppSender | None:
        table = self.table_value(config, "whatsapp", ())
        if table is None:
            return None
        path = ("whatsapp",)
        self.check_unknown(table, _WHATSAPP_KEYS, path)
        number: str | None = None
        raw = table.get("integrated_number")
        if isinstance(raw, int) and not isinstance(raw, bool):
            raw = str(raw)  # integrated_number = 919800000009 without quotes
            table = {**table, "integrated_number": raw}
        if raw is not None:
            value = self.text_value(table, "integrated_number", path)
            if value is not None:
                digits = re.sub(r"[\s-]", "", value).removeprefix("+")
                if _WA_NUMBER.fullmatch(digits):
                    number = digits
                else:
                    self.add_config(
                        (*path, "integrated_number"),
                        "whatsapp.integrated_number must be the WhatsApp sender number with its "
                        f'country code, 10-15 digits (e.g. "919800000009"); got {value!r}',
                    )
        namespace = self.text_value(table, "namespace", path)
        if namespace is not None and not _NAMESPACE.fullmatch(namespace):
            self.add_config(
                (*path, "namespace"),
                "whatsapp.namespace must be the template namespace shown at MSG91 (letters, "
                f"digits, '_' and '-'); got {namespace!r}",
            )
            namespace = None
        key_env = self.text_value(table, "auth_key_env", path)
        if key_env is not None and not _is_env_name(key_env):
            self.add_config(
                (*path, "auth_key_env"),
                "whatsapp.auth_key_env must be the NAME of an environment variable in capitals "
                '(e.g. "BAKERY_MSG91_AUTHKEY"), never the auth key itself',
            )
            key_env = None
        if number is None and namespace is None and key_env is None:
            return None
        return WhatsAppSender(integrated_number=number, namespace=namespace, auth_key_env=key_env)

    def check_templates(self, config: dict[str, Any]) -> tuple[Template, ...]:
        table = self.table_value(config, "templates", ())
        if table is None:
            return ()
        out: list[Template] = []
        for name, spec in table.items():
            path = ("templates", name)
            before = len(self.problems)
            if not _TEMPLATE_NAME.fullmatch(name):
                self.add_config(
                    path,
                    f"template name {name!r} must be written exactly as approved at MSG91: "
                    "lowercase letters, digits and '_' (e.g. order_confirmation)",
                )
            if not isinstance(spec, dict):
                self.add_config(
                    path,
                    f"templates.{name} must be a table ([templates.{name}] with language and "
                    f"text), not {_type_name(spec)}",
                )
                continue
            self.check_unknown(spec, _TEMPLATE_KEYS, path)
            language = self.text_value(spec, "language", path, required=True)
            if language is not None and not _WA_LANGUAGE.fullmatch(language):
                hint = ""
                lang, _, region = language.replace("-", "_").partition("_")
                fixed = lang.lower() + (f"_{region.upper()}" if region else "")
                if _WA_LANGUAGE.fullmatch(fixed):
                    hint = f"; write {fixed!r}"
                self.add_config(
                    (*path, "language"),
                    f"templates.{name}.language {language!r} is not a WhatsApp language code "
                    f'like "en", "en_US", "hi" or "kn"{hint}',
                )
            text = self.text_value(spec, "text", path, required=True)
            if text is not None:
                self.check_template_text(name, text)
            if len(self.problems) == before and language is not None and text is not None:
                out.append(Template(name=name, language=language, text=text))
        return tuple(out)

    def check_template_text(self, name: str, text: str) -> None:
        path = ("templates", name, "text")
        if len(text) > MAX_TEMPLATE_CHARS:
            self.add_config(
                path,
                f"templates.{name}.text is {len(text)} characters; WhatsApp allows at most "
                f"{MAX_TEMPLATE_CHARS}",
            )
        named = [m.group(0) for m in _ANY_PLACEHOLDER.finditer(text) if not _NUMBER.match(m[1])]
        if named:
            self.add_config(
                path,
                f"templates.{name}.text has {', '.join(dict.fromkeys(named))}: placeholders "
                "must be numbered {{1}}, {{2}}, ... as in the template approved at MSG91",
            )
        numbers = placeholder_numbers(text)
        if numbers != list(range(1, len(numbers) + 1)):
            wanted = set(range(1, max(numbers) + 1))
            wrong = [f"{{{{{n}}}}}" for n in sorted(wanted - set(numbers))]
            what = f"{', '.join(wrong)} is missing" if wrong else "there is no {{0}}"
            self.add_config(
                path,
                f"templates.{name}.text must number its placeholders {{{{1}}}}, {{{{2}}}}, ... "
                f"with none left out, but {what}",
            )

    def check_actions(
        self, config: dict[str, Any], templates: tuple[Template, ...]
    ) -> tuple[ActionRule, ...]:
        table = self.table_value(config, "actions", ())
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
                self.add_config(
                    path,
                    f"[[actions.{ct_name}]]: {ct_name!r} is not a call type"
                    f"{_suggest(ct_name, fields)} (declared: {known})",
                )
            if isinstance(rules, dict):
                self.add_config(
                    path,
                    f"actions.{ct_name} must be written [[actions.{ct_name}]], with double "
                    "brackets: one such table per message to send",
                )
                continue
            if not isinstance(rules, list):
                self.add_config(
                    path,
                    f"actions.{ct_name} must be [[actions.{ct_name}]] tables, "
                    f"not {_type_name(rules)}",
                )
                continue
            seen: set[str] = set()
            for index, rule in enumerate(rules):
                built = self.check_rule(
                    ct_name, (*path, _item(index)), rule, ct_fields, declared, valid
                )
                if built is None:
                    continue
                if built.key in seen:  # one message per (call, recipient, template): see actions
                    self.add_config(
                        (*path, _item(index), "to"),
                        f"[[actions.{ct_name}]]: a second message to {built.to} with template "
                        f"{built.template!r}; only one can be sent per call: merge the two",
                    )
                    continue
                seen.add(built.key)
                out.append(built)
        return tuple(out)

    def check_rule(
        self,
        ct_name: str,
        path: tuple[str, ...],
        rule: object,
        fields: dict[str, str | None] | None,
        declared: tuple[str, ...],
        templates: dict[str, Template],
    ) -> ActionRule | None:
        """One ``[[actions.<call type>]]`` table; ``fields`` None when the call type is unknown."""
        if not isinstance(rule, dict):
            self.add_config(
                path,
                f"each actions.{ct_name} entry must be a table ([[actions.{ct_name}]] with to, "
                f"template, variables), not {_type_name(rule)}",
            )
            return None
        before = len(self.problems)
        self.check_unknown(rule, _RULE_KEYS, path)
        to = self.check_recipient(ct_name, path, rule)
        template_name = self.text_value(rule, "template", path, required=True)
        template: Template | None = None
        if template_name is not None:
            template = templates.get(template_name)
            if template_name not in declared:
                self.add_config(
                    (*path, "template"),
                    f"actions.{ct_name}.template {template_name!r} is not declared"
                    f"{_suggest(template_name, declared)} (add a [templates.{template_name}] "
                    "table with its language and text)",
                )
        ai_written = self.bool_value(rule, "ai_written", path)
        urgent = self.bool_value(rule, "urgent", path)
        present, equals = self.check_when(ct_name, path, rule, fields)
        variables = self.check_variables(ct_name, path, rule, fields, template_name, template)
        if len(self.problems) != before or to is None or template_name is None:
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
            line=self.keys.line(*path, "to"),
        )

    def check_recipient(
        self, ct_name: str, path: tuple[str, ...], rule: dict[str, Any]
    ) -> str | None:
        value = self.text_value(rule, "to", path, required=True)
        if value is None:
            return None
        if value.lower() in RECIPIENT_KINDS:
            return value.lower()
        compact = re.sub(r"[\s\-().]", "", value)
        if _E164.fullmatch(compact):
            return compact
        if compact.startswith("+"):
            hint = "write + and 8-15 digits with the country code"
        elif compact.isdigit():
            hint = "write the number with + and the country code"
        else:
            hint = (
                'write "customer" (the caller), "owner" (owner_phone) or a number'
                f"{_suggest(value.lower(), RECIPIENT_KINDS)}"
            )
        self.add_config(
            (*path, "to"),
            f'actions.{ct_name}.to {value!r} is not a recipient: {hint} (e.g. "+919800000002")',
        )
        return None

    def check_field_name(
        self,
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
        self.add_config(
            at,
            f"{what}: {name!r} is not a field of call type {ct_name!r}"
            f"{_suggest(name, fields)} ({listed})",
        )
        return False

    def check_when(
        self,
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
            self.add_config(
                wpath,
                f'{label} must be a table like {{ present = ["name"], equals = {{ field = '
                f'"value" }} }}, not {_type_name(when)}',
            )
            return (), ()
        self.check_unknown(when, _WHEN_KEYS, wpath)
        present: list[str] = []
        raw_present = when.get("present", [])
        if isinstance(raw_present, str):
            raw_present = [raw_present]
        if not isinstance(raw_present, list) or not all(isinstance(p, str) for p in raw_present):
            self.add_config(
                (*wpath, "present"),
                f'{label}.present must be a list of field names like ["name", "phone"]',
            )
            raw_present = []
        for raw_name in raw_present:
            name = raw_name.strip()
            at = (*wpath, "present")
            if self.check_field_name(name, at, f"{label}.present", ct_name, fields):
                present.append(name)
        equals: list[tuple[str, str]] = []
        raw_equals = when.get("equals", {})
        if not isinstance(raw_equals, dict):
            self.add_config(
                (*wpath, "equals"),
                f'{label}.equals must be a table like {{ pickup_or_delivery = "pickup" }}, '
                f"not {_type_name(raw_equals)}",
            )
            raw_equals = {}
        for name, expected in raw_equals.items():
            at = (*wpath, "equals", name)
            if not self.check_field_name(name, at, f"{label}.equals", ct_name, fields):
                continue
            if isinstance(expected, bool):
                value = "true" if expected else "false"
            elif isinstance(expected, int | float):
                value = str(expected)
            elif isinstance(expected, str) and expected.strip():
                value = expected.strip()
            else:
                self.add_config(
                    at,
                    f"{label}.equals.{name} must be text, a number or true/false, "
                    f"not {'empty text' if isinstance(expected, str) else _type_name(expected)}",
                )
                continue
            ftype = fields.get(name) if fields is not None else None
            if ftype == "boolean" and value.lower() not in ("true", "false"):
                self.add_config(
                    at,
                    f"{label}.equals.{name}: {name!r} is a true/false field, "
                    f"so compare it with true or false, not {expected!r}",
                )
                continue
            equals.append((name, value))
        return tuple(present), tuple(equals)

    def check_variables(
        self,
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
                self.add_config(
                    path,
                    f"actions.{ct_name} needs variables = [...], one per placeholder: {wanted}",
                )
            return ()
        if not isinstance(raw, list):
            self.add_config(
                vpath,
                f"actions.{ct_name}.variables must be a list [...], one entry per placeholder, "
                f"not {_type_name(raw)}",
            )
            return ()
        out: list[Variable] = []
        for index, item in enumerate(raw):
            var = self.check_variable(ct_name, (*vpath, _item(index)), index, item, fields)
            if var is not None:
                out.append(var)
        if count is not None and len(raw) != count:
            self.add_config(
                vpath,
                f"actions.{ct_name}.variables has {len(raw)} "
                f"entr{'y' if len(raw) == 1 else 'ies'} but {wanted}: give exactly one per "
                "placeholder, in order",
            )
        return tuple(out)

    def check_variable(
        self,
        ct_name: str,
        path: tuple[str, ...],
        index: int,
        item: object,
        fields: dict[str, str | None] | None,
    ) -> Variable | None:
        label = f"actions.{ct_name} variable {{{{{index + 1}}}}}"
        if isinstance(item, str):
            source = self.check_source(item.strip(), path, label, ct_name, fields)
            return Variable(source=source) if source is not None else None
        if not isinstance(item, dict):
            self.add_config(
                path,
                f'{label} must be "details.<field>", one of {", ".join(CALL_SOURCES)}, or a '
                f"table with 'from' or 'write'; not {_type_name(item)}",
            )
            return None
        before = len(self.problems)
        self.check_unknown(item, _VARIABLE_KEYS, path)
        max_chars = item.get("max_chars", _DEFAULT_MAX_CHARS)
        if (
            isinstance(max_chars, bool)
            or not isinstance(max_chars, int)
            or not (1 <= max_chars <= MAX_VARIABLE_CHARS)
        ):
            self.add_config(
                (*path, "max_chars"),
                f"{label}: max_chars must be a whole number from 1 to {MAX_VARIABLE_CHARS}",
            )
            max_chars = MAX_VARIABLE_CHARS
        has_from, has_write = "from" in item, "write" in item
        if has_from and has_write:
            self.add_config(
                path,
                f"{label}: give either 'from' (a fact from the call) or 'write' (text the AI "
                "writes), not both",
            )
            return None
        if not has_from and not has_write:
            self.add_config(
                path,
                f"{label} needs 'from' (e.g. \"details.name\") or 'write' (an instruction for "
                "the AI, with a 'fallback' text)",
            )
            return None
        if has_from:
            source = self.text_value(item, "from", path)
            if source is not None:
                source = self.check_source(source, (*path, "from"), label, ct_name, fields)
            if "fallback" in item:
                self.add_config(
                    (*path, "fallback"),
                    f"{label}: 'fallback' goes with 'write'; with 'from' use 'default'",
                )
            default = self.text_value(item, "default", path)
            self.check_length(label, "default", default, max_chars, path)
            if len(self.problems) != before or source is None:
                return None
            return Variable(source=source, default=default, max_chars=max_chars)
        write = self.text_value(item, "write", path)
        if "default" in item:
            self.add_config(
                (*path, "default"),
                f"{label}: 'default' goes with 'from'; with 'write' use 'fallback'",
            )
        fallback = self.text_value(item, "fallback", path)
        if "fallback" not in item:
            self.add_config(
                path,
                f"{label}: 'write' needs a 'fallback' text, sent as it is when the AI is "
                "unavailable",
            )
        self.check_length(label, "fallback", fallback, max_chars, path)
        if len(self.problems) != before or write is None or fallback is None:
            return None
        return Variable(write=write, fallback=fallback, max_chars=max_chars)

    def check_length(
        self, label: str, key: str, text: str | None, max_chars: int, path: tuple[str, ...]
    ) -> None:
        if text is not None and len(text) > max_chars:
            self.add_config(
                (*path, key),
                f"{label}: {key} is {len(text)} characters, more than max_chars ({max_chars}); "
                "shorten it or raise max_chars",
            )

    def check_source(
        self,
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
            if self.check_field_name(name, at, label, ct_name, fields):
                return source
            return None
        choices = [*(f"details.{f}" for f in fields or ()), *CALL_SOURCES]
        self.add_config(
            at,
            f'{label}: {source!r} is not a source{_suggest(source, choices)} (use "details.'
            f'<field>" or one of {", ".join(CALL_SOURCES)})',
        )
        return None

    # -- the result
    def build(
        self,
        config: dict[str, Any],
        cfg: dict[str, Any],
        assistant: str,
        analyzer: str,
        inputs: list[tuple[str, str]],
    ) -> Tenant:
        languages: tuple[str, ...] = cfg["languages"]
        name: str = cfg["name"]
        call_types: tuple[CallType, ...] = cfg["call_types"]
        digest = hashlib.sha256()
        for part in (assistant, analyzer):
            digest.update(part.encode("utf-8") + b"\x00")
        for file_name, text in inputs:
            digest.update(file_name.encode("utf-8") + b"\x00" + text.encode("utf-8") + b"\x00")
        schema = {ct.name: ct.as_schema() for ct in call_types}
        digest.update(json.dumps(schema, sort_keys=True, ensure_ascii=False).encode("utf-8"))
        user_env, token_env = cfg["exotel"]
        budget_warn, budget_limit = cfg["budget"]
        return Tenant(
            tenant_id=self.tenant_id,
            name=name,
            owner_phone=cfg["owner_phone"],
            languages=languages,
            voice=cfg["voice"],
            active=cfg["active"],
            timezone=cfg["timezone"],
            engine=cfg["engine"],
            model=cfg["model"],
            exotel_auth_user_env=user_env,
            exotel_auth_token_env=token_env,
            call_types=call_types,
            assistant_prompt=assistant,
            analyzer_prompt=analyzer,
            input_files=tuple(inputs),
            messages=resolve_messages(languages[0], cfg["messages"]),
            greeting=cached_greeting(assistant, tenant_name=name, language=languages[0]),
            prompt_version=digest.hexdigest()[:12],
            budget_warn_usd=budget_warn,
            budget_limit_usd=budget_limit,
            templates=cfg["templates"],
            actions=cfg["actions"],
            whatsapp=cfg["whatsapp"],
            raw_config=config,
        )


# --------------------------------------------------------------------------- public API


def load_tenant(root: Path | str, tenant_id: str) -> tuple[Tenant | None, list[Problem]]:
    """Validate ``root/tenant_id`` and build its Tenant: ``(tenant, [])`` or ``(None, problems)``.

    An inactive tenant loads fine (``tenant.active`` is False); refusing calls is the caller's job.
    """
    loader = _Loader(Path(root), tenant_id)
    tenant = loader.run()
    if loader.problems:
        return None, loader.problems
    return tenant, []


def validate_tenant(root: Path | str, tenant_id: str) -> list[Problem]:
    """Every problem with one tenant folder (empty list: the tenant is fine)."""
    return load_tenant(root, tenant_id)[1]


def validate_all(root: Path | str) -> dict[str, list[Problem]]:
    """``{folder name: problems}`` for every folder under ``root`` (empty list = fine)."""
    base = Path(root)
    if not base.is_dir():
        return {}
    names = sorted(
        p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))
    )
    return {name: validate_tenant(base, name) for name in names}
