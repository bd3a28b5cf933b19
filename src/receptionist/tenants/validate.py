"""Check a tenant folder and build a :class:`~receptionist.tenants.model.Tenant` from it.

One pass does both, so the loader and ``receptionist tenants validate`` can never disagree: every
problem found is reported (with the file, and the line where there is one), and a tenant is built
only when there are none. A small-business owner edits these files by hand, so messages say what
to change, and unknown keys get a "did you mean" instead of being silently ignored.
"""

from __future__ import annotations

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

from .greeting import cached_greeting
from .messages import MESSAGE_KEYS, resolve_messages
from .model import ENGINES, FIELD_TYPES, CallType, FieldSpec, Tenant

__all__ = [
    "GEMINI_VOICES",
    "MAX_INPUT_BYTES_TOTAL",
    "MAX_INPUT_FILE_BYTES",
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
)
_REQUIRED_TOP = ("name", "owner_phone", "languages", "call_types")
_EXOTEL_KEYS = ("auth_user_env", "auth_token_env")
_BUDGET_KEYS = ("monthly_usd_warn", "monthly_usd_limit")
_CALL_TYPE_KEYS = ("description", "fields")
_FIELD_KEYS = ("type", "required", "description")

_E164 = re.compile(r"\+[1-9]\d{7,14}")
_BCP47 = re.compile(r"([a-zA-Z]{2,3})(?:-([a-zA-Z]{4}))?(?:-([a-zA-Z]{2}|\d{3}))?")
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,127}")
_SCHEMA_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}")
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
_INLINE_KEY = re.compile(r"(?:\{|,)\s*(" + _KEY_PART + r")\s*=")
_SPLIT_PARTS = re.compile(_KEY_PART)


def _split_key(dotted: str) -> tuple[str, ...]:
    parts = []
    for raw in _SPLIT_PARTS.findall(dotted):
        if raw[:1] in "\"'":
            raw = raw[1:-1]
        parts.append(raw)
    return tuple(parts)


class _KeyLines:
    """Where each key path was written in a TOML text (approximate, for messages only)."""

    def __init__(self, text: str) -> None:
        self._lines: dict[tuple[str, ...], int] = {}
        table: tuple[str, ...] = ()
        in_multiline: str | None = None
        for number, line in enumerate(text.splitlines(), start=1):
            if in_multiline is not None:
                if in_multiline in line:
                    in_multiline = None
                continue
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            header = _HEADER_LINE.match(line)
            if header and not _KEY_LINE.match(line):
                table = _split_key(header.group(1))
                self._lines.setdefault(table, number)
                continue
            key = _KEY_LINE.match(line)
            if not key:
                continue
            path = table + _split_key(key.group(1))
            self._lines.setdefault(path, number)
            value = key.group(2)
            for quote in ('"""', "'''"):
                if value.count(quote) % 2 == 1:
                    in_multiline = quote
                    break
            if value.lstrip().startswith("{"):
                for inner in _INLINE_KEY.finditer(value):
                    self._lines.setdefault(path + _split_key(inner.group(1)), number)

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
                where = ".".join((*path, key)) if path else key
                self.add_config(
                    (*path, key),
                    f"unknown key '{where}'{_suggest(key, allowed)} "
                    f"(allowed here: {', '.join(allowed)})",
                )

    def text_value(
        self, table: dict[str, Any], key: str, path: tuple[str, ...], *, required: bool = False
    ) -> str | None:
        dotted = ".".join((*path, key))
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
            dotted = ".".join((*path, key))
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
            if value is not None and not _ENV_NAME.fullmatch(value):
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
