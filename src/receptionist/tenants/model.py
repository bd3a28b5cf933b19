"""What one business (a tenant) looks like once its folder is loaded and validated.

Everything here is immutable: a :class:`Tenant` is built once by the loader in ``loading.py``
and shared by every call to that business until its files change.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import cached_property
from typing import Any

from .actions import ActionRule, DailyDigest, Template, Webhook, WhatsAppSender
from .handoff import CallbackRules, Handoff
from .messages import CallMessages, language_name
from .recording_checks import RecordingPolicy
from .tool_checks import ToolSettings

__all__ = [
    "ENGINES",
    "FIELD_TYPES",
    "CallMessages",
    "CallType",
    "FieldSpec",
    "Tenant",
]

# Value types a call-type field may have (what the post-call analyzer must extract).
FIELD_TYPES: tuple[str, ...] = (
    "string",
    "integer",
    "number",
    "boolean",
    "date",
    "time",
    "datetime",
    "phone",
    "list",
)
# Voice engines a tenant may ask for; None means "the server's default".
ENGINES: tuple[str, ...] = ("gemini-live", "local")


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One detail to pull out of a call of some type, e.g. ``phone`` (type "phone", required)."""

    name: str
    type: str
    required: bool
    description: str

    def as_schema(self) -> dict[str, Any]:
        return {"type": self.type, "required": self.required, "description": self.description}


@dataclass(frozen=True, slots=True)
class CallType:
    """A kind of call the business gets (order, appointment, complaint ...) and its details."""

    name: str
    description: str
    fields: tuple[FieldSpec, ...]
    # unresolved, failed or dropped calls of this type are called back by the AI ([callbacks])
    callback: bool = False

    @property
    def required_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.required)

    def field(self, name: str) -> FieldSpec | None:
        for spec in self.fields:
            if spec.name == name:
                return spec
        return None

    def as_schema(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "fields": {f.name: f.as_schema() for f in self.fields},
        }


@dataclass(frozen=True)
class Tenant:
    """A loaded, valid tenant. Built by :func:`receptionist.tenants.loading.load_bundle`."""

    tenant_id: str
    name: str
    owner_phone: str  # E.164, e.g. "+919800000001"
    languages: tuple[str, ...]  # BCP-47, first is primary
    voice: str | None
    active: bool
    timezone: str
    engine: str | None  # "gemini-live" | "local" | None (server default)
    model: str | None
    exotel_auth_user_env: str | None  # NAME of the env var holding the Exotel API key
    exotel_auth_token_env: str | None  # NAME of the env var holding the Exotel API token
    call_types: tuple[CallType, ...]
    assistant_prompt: str
    analyzer_prompt: str
    input_files: tuple[tuple[str, str], ...]  # (file name relative to input_files/, text)
    messages: CallMessages
    greeting: str
    prompt_version: str  # short sha256 of prompts, input files and call-type schema
    # Monthly AI spend (USD): past `warn` it is logged and shown; at `limit` calls are declined.
    budget_warn_usd: Decimal | None = None
    budget_limit_usd: Decimal | None = None
    # What to send after each call (see actions.py); none declared means nothing is sent.
    templates: tuple[Template, ...] = ()
    actions: tuple[ActionRule, ...] = ()
    whatsapp: WhatsAppSender | None = None
    digest: DailyDigest | None = None  # the owner's daily WhatsApp digest; None: not sent
    webhooks: tuple[Webhook, ...] = ()  # the business's own URLs that receive call events
    # the tools the agent may use during a call ([tools], [booking]); none: it only talks
    tools: ToolSettings = field(default_factory=ToolSettings)
    handoff: Handoff | None = None  # putting a caller through to a person; None: never
    callbacks: CallbackRules | None = None  # the AI calling callers back; None: never
    recording: RecordingPolicy | None = None  # calls are recorded; None: not (the default)
    # the business's own Exotel account (with exotel_auth_*_env as its key and token): its
    # callbacks are dialled through it; None: the server's account
    exotel_account_sid: str | None = None
    raw_config: dict[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)
    # the stored version it was loaded from (stored_tenants.py); None: from a folder
    version: int | None = None

    def with_version(self, version: int) -> Tenant:
        return replace(self, version=version)

    @property
    def primary_language(self) -> str:
        return self.languages[0]

    @property
    def language_name(self) -> str:
        """English name of the primary language, e.g. "Hindi"."""
        return language_name(self.primary_language)

    @cached_property
    def system_instruction(self) -> str:
        """The assistant prompt followed by one section per input file (built once)."""
        parts = [self.assistant_prompt.strip()]
        for name, text in self.input_files:
            parts.append(f"## Business information: {name}\n{text.strip()}")
        return "\n\n".join(parts) + "\n"

    @property
    def call_type_schema(self) -> dict[str, Any]:
        """JSON-able schema: ``{call_type: {"description", "fields": {name: {...}}}}`` (a copy)."""
        return {ct.name: ct.as_schema() for ct in self.call_types}

    @property
    def call_type_names(self) -> tuple[str, ...]:
        return tuple(ct.name for ct in self.call_types)

    def call_type(self, name: str) -> CallType | None:
        for ct in self.call_types:
            if ct.name == name:
                return ct
        return None

    def template(self, name: str) -> Template | None:
        for t in self.templates:
            if t.name == name:
                return t
        return None

    def actions_for(self, call_type: str) -> tuple[ActionRule, ...]:
        return tuple(a for a in self.actions if a.call_type == call_type)

    def __repr__(self) -> str:  # keep logs short: no prompts or file contents
        return (
            f"Tenant(tenant_id={self.tenant_id!r}, name={self.name!r}, "
            f"languages={self.languages!r}, active={self.active!r}, "
            f"prompt_version={self.prompt_version!r})"
        )
