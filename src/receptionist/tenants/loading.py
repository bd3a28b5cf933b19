"""Load a tenant (a folder, or a stored version: tenants/bundle.py) into a
:class:`~receptionist.tenants.model.Tenant`, checking it on the way.

One pass does both, so the loader and ``receptionist tenants validate`` can never disagree: every
problem found is reported (with the file, and the line where there is one), and a tenant is built
only when there are none. A small-business owner edits these files by hand, so messages say what
to change, and unknown keys get a "did you mean" instead of being silently ignored.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

from .bundle import (
    ANALYZER_PROMPT,
    ASSISTANT_PROMPT,
    CONFIG_FILE,
    INPUT_DIR,
    MAX_FILE_BYTES,
    MAX_INPUT_BYTES_TOTAL,
    PROMPTS_DIR,
    TenantBundle,
    read_folder,
)
from .config_checks import check_config
from .greeting import cached_greeting
from .messages import resolve_messages
from .model import CallType, Tenant
from .report import Problem, Report
from .toml_lines import KeyLines

__all__ = [
    "TENANT_ID_PATTERN",
    "Problem",
    "is_valid_tenant_id",
    "load_bundle",
    "load_tenant",
    "validate_all",
    "validate_tenant",
]

TENANT_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")

_TOML_POS = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_TOML_END = re.compile(r"\s*\(at end of document\)\s*$")


def is_valid_tenant_id(tenant_id: object) -> bool:
    """True for a safe folder slug: ``[a-z0-9][a-z0-9_-]{0,62}`` (no dots, slashes, capitals)."""
    return isinstance(tenant_id, str) and TENANT_ID_PATTERN.fullmatch(tenant_id) is not None


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


class _Loader:
    def __init__(self, tenant_id: str, bundle: TenantBundle) -> None:
        self.tenant_id = tenant_id
        self.bundle = bundle
        self.report = Report(tenant_id, f"{tenant_id}/{CONFIG_FILE}")
        self.add = self.report.add

    # -- files
    def read_text(self, rel_in_tenant: str, *, required: bool) -> str | None:
        rel = f"{self.tenant_id}/{rel_in_tenant}"
        why = self.bundle.unreadable.get(rel_in_tenant)
        if why is not None:
            self.add(rel, None, why)
            return None
        data = self.bundle.get(rel_in_tenant)
        if data is None:
            if required:
                hint = ""
                if rel_in_tenant.startswith(f"{PROMPTS_DIR}/"):
                    stem = PurePosixPath(rel_in_tenant).stem
                    near = [
                        PurePosixPath(p).name
                        for p in self.bundle.under(PROMPTS_DIR)
                        if PurePosixPath(p).name.startswith(stem)
                    ]
                    if near:
                        name = PurePosixPath(rel_in_tenant).name
                        hint = f" (found {near[0]}: rename it to {name})"
                self.add(rel, None, f"file is missing{hint}")
            return None
        text, error = _decode(data)
        if error:
            self.add(rel, None, error)
        return text

    # -- the whole tenant
    def run(self) -> Tenant | None:
        if not is_valid_tenant_id(self.tenant_id):
            self.add(
                self.tenant_id,
                None,
                "folder name is not a valid tenant id: use 1-63 lowercase letters, digits, "
                "'-' or '_', starting with a letter or digit",
            )
            return None
        config = self.load_config()
        cfg = check_config(self.report, config) if config is not None else None
        assistant = self.read_prompt(ASSISTANT_PROMPT)
        analyzer = self.read_prompt(ANALYZER_PROMPT)
        inputs = self.read_inputs()
        if self.report.problems or cfg is None or assistant is None or analyzer is None:
            return None
        return self.build(config or {}, cfg, assistant, analyzer, inputs)

    def load_config(self) -> dict[str, Any] | None:
        text = self.read_text(CONFIG_FILE, required=True)
        if text is None:
            return None
        self.report.keys = KeyLines(text)
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
            self.add(self.report.config_rel, line, f"TOML syntax error: {message}")
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
        for rel_in_tenant in self.bundle.under(INPUT_DIR):
            name = rel_in_tenant.removeprefix(f"{INPUT_DIR}/")
            size = len(self.bundle.get(rel_in_tenant) or b"")
            if size > MAX_FILE_BYTES:  # a stored or submitted bundle; a folder's is not read
                self.add(
                    f"{self.tenant_id}/{rel_in_tenant}",
                    None,
                    f"is too large ({size} bytes; at most {MAX_FILE_BYTES}): everything "
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
        greeting = cached_greeting(assistant, tenant_name=name, language=languages[0])
        recording = cfg["recording"]
        if recording is not None and recording.announce:  # said as part of the greeting
            greeting = f"{greeting} {recording.announce}"
        user_env, token_env, account_sid = cfg["exotel"]
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
            exotel_account_sid=account_sid,
            call_types=call_types,
            assistant_prompt=assistant,
            analyzer_prompt=analyzer,
            input_files=tuple(inputs),
            messages=resolve_messages(languages[0], cfg["messages"]),
            greeting=greeting,
            prompt_version=digest.hexdigest()[:12],
            budget_warn_usd=budget_warn,
            budget_limit_usd=budget_limit,
            templates=cfg["templates"],
            actions=cfg["actions"],
            whatsapp=cfg["whatsapp"],
            digest=cfg["digest"],
            webhooks=cfg["webhooks"],
            tools=cfg["tools"],
            handoff=cfg["handoff"],
            callbacks=cfg["callbacks"],
            recording=recording,
            raw_config=config,
        )


# --------------------------------------------------------------------------- public API


def load_bundle(tenant_id: str, bundle: TenantBundle) -> tuple[Tenant | None, list[Problem]]:
    """Check a tenant's files and build its Tenant: ``(tenant, [])`` or ``(None, problems)``.

    An inactive tenant loads fine (``tenant.active`` is False); refusing calls is the caller's job.
    """
    loader = _Loader(tenant_id, bundle)
    tenant = loader.run()
    if loader.report.problems:
        return None, loader.report.problems
    return tenant, []


def load_tenant(root: Path | str, tenant_id: str) -> tuple[Tenant | None, list[Problem]]:
    """Validate the folder ``root/tenant_id`` and build its Tenant (see `load_bundle`)."""
    tenant_dir = Path(root) / tenant_id
    if is_valid_tenant_id(tenant_id) and not tenant_dir.is_dir():
        return None, [Problem(tenant_id, tenant_id, None, "no such tenant folder")]
    bundle = read_folder(tenant_dir) if is_valid_tenant_id(tenant_id) else TenantBundle({})
    return load_bundle(tenant_id, bundle)


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
