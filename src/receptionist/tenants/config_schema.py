"""The shape of tenant.toml as pydantic models: which tables and keys exist, which are required.

The models are the one list of allowed keys (``extra="forbid"``): :func:`shape_problems` turns
an unknown key into "unknown key ...; did you mean ...? (allowed here: ...)" and a missing one
into "missing required key ...", each with the path of the table it belongs to so the checks can
report it with its line, in the order they read the file. What a value must look like (E.164,
BCP-47, a known voice ...) is checked by ``config_checks`` and ``action_checks``, which know
the owner-friendly words for it; the types here document the file and are not reported.
"""

from __future__ import annotations

from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, create_model
from pydantic.fields import FieldInfo

from .messages import MESSAGE_KEYS
from .model import FIELD_TYPES
from .report import suggest
from .toml_lines import dotted_key, item_key

__all__ = ["TenantConfig", "allowed_keys", "shape_problems"]

_FORBID = ConfigDict(extra="forbid")
Path = tuple[str, ...]


def _shorthand(key: str) -> Any:
    """``phone = "phone"`` means ``phone = { type = "phone" }``: read the short form as that."""

    def expand(value: Any) -> Any:
        return {key: value} if isinstance(value, str) else value

    return BeforeValidator(expand)


def _any_text() -> Any:
    # a variable written as "details.name" has no keys of its own: nothing to check here
    return BeforeValidator(lambda value: {} if isinstance(value, str) else value)


class ExotelConfig(BaseModel):
    model_config = _FORBID
    auth_user_env: str | None = None
    auth_token_env: str | None = None
    account_sid: str | None = None


class BudgetConfig(BaseModel):
    model_config = _FORBID
    monthly_usd_warn: float | None = None
    monthly_usd_limit: float | None = None


MessagesConfig = create_model(
    "MessagesConfig",
    __config__=_FORBID,
    **{key: (str | None, None) for key in MESSAGE_KEYS},  # type: ignore[call-overload]
)


class FieldConfig(BaseModel):
    model_config = _FORBID
    type: str = Field(
        json_schema_extra={
            "missing": f"{{table}} is missing 'type' (one of {', '.join(FIELD_TYPES)})"
        }
    )
    required: bool = False
    description: str = ""


class CallTypeConfig(BaseModel):
    model_config = _FORBID
    description: str
    fields: dict[str, Annotated[FieldConfig, _shorthand("type")]] = {}
    callback: bool = False  # the AI calls back a call of this type left unresolved (handoff.py)


class WhatsAppConfig(BaseModel):
    model_config = _FORBID
    integrated_number: str | int | None = None
    namespace: str | None = None
    auth_key_env: str | None = None


class TemplateConfig(BaseModel):
    model_config = _FORBID
    language: str
    text: str


class WhenConfig(BaseModel):
    model_config = _FORBID
    present: list[str] | str = []
    equals: dict[str, str | int | float | bool] = {}


class VariableConfig(BaseModel):
    model_config = _FORBID
    from_: str | None = Field(None, alias="from")
    default: str | None = None
    write: str | None = None
    fallback: str | None = None
    max_chars: int | None = None


class RuleConfig(BaseModel):
    model_config = _FORBID
    to: str
    template: str
    ai_written: bool = False
    urgent: bool = False
    when: WhenConfig | None = None
    variables: list[Annotated[VariableConfig, _any_text()]] = []


class DigestConfig(BaseModel):
    model_config = _FORBID
    hour: int
    template: str
    variables: list[str] = []


class WebhookConfig(BaseModel):
    model_config = _FORBID
    url: str
    secret_env: str
    events: list[str] = []


class HandoffConfig(BaseModel):
    model_config = _FORBID
    numbers: list[str]
    hours: list[str] | str
    ring_seconds: int = 30
    record: bool = False
    whisper: str | None = None
    say: str | None = None
    unavailable: str | None = None
    caller_id: str | None = None
    max_minutes: int = 60
    notify_template: str | None = None


class CallbacksConfig(BaseModel):
    model_config = _FORBID
    caller_id: str
    hours: list[str] | str | None = None
    per_number_per_day: int = 2
    ring_seconds: int = 30


class RecordingConfig(BaseModel):
    model_config = _FORBID
    # values are checked by recording_checks.py; the model only knows the keys
    enabled: Any = False
    retention_days: Any = None
    opt_out_digit: Any = None
    announce: Any = None


class TenantConfig(BaseModel):
    """tenant.toml, table by table (see tenants/README.md for what each key means)."""

    model_config = _FORBID
    name: str
    owner_phone: str
    languages: list[str] | str
    voice: str | None = None
    active: bool = True
    timezone: str | None = None
    engine: str | None = None
    model: str | None = None
    exotel: ExotelConfig | None = None
    messages: MessagesConfig | None = None  # type: ignore[valid-type]
    budget: BudgetConfig | None = None
    call_types: dict[str, CallTypeConfig]
    whatsapp: WhatsAppConfig | None = None
    templates: dict[str, TemplateConfig] = {}
    actions: dict[str, list[RuleConfig]] = {}
    digest: DigestConfig | None = None
    webhooks: list[WebhookConfig] = []
    # checked key by key in tool_checks (it names the tools and the booking keys)
    tools: dict[str, Any] | None = None
    booking: dict[str, Any] | None = None
    handoff: HandoffConfig | None = None
    callbacks: CallbacksConfig | None = None
    recording: RecordingConfig | None = None


def allowed_keys(model: type[BaseModel]) -> tuple[str, ...]:
    """The keys a table of this model may have, as written in the file, in declared order."""
    return tuple(f.alias or name for name, f in model.model_fields.items())


def _model_at(loc: tuple[str | int, ...]) -> type[BaseModel]:
    """The model of the table at ``loc`` (a pydantic error location without its last part)."""
    node: Any = TenantConfig
    for step in loc:
        node = _unwrap(node)
        if _is_model(node):
            field = _field(node, str(step))
            node = field.annotation if field is not None else None
        elif get_origin(node) in (dict, list):
            node = get_args(node)[-1]  # a table of named tables, an array of tables
        else:
            node = None
    node = _unwrap(node)
    return node if _is_model(node) else TenantConfig


def _is_model(node: Any) -> bool:
    return isinstance(node, type) and issubclass(node, BaseModel)


def _unwrap(node: Any) -> Any:
    """``Annotated[X, ...]`` -> X, ``X | None`` -> X (the table's type, when there is one)."""
    while True:
        if get_origin(node) is Annotated:
            node = get_args(node)[0]
        elif get_origin(node) in (Union, UnionType):
            members = [a for a in get_args(node) if a is not type(None)]
            node = next((a for a in members if _is_model(a) or get_origin(a) in (dict, list)), None)
        else:
            return node


def _field(model: type[BaseModel], key: str) -> FieldInfo | None:
    return next((f for n, f in model.model_fields.items() if (f.alias or n) == key), None)


def _path(loc: tuple[str | int, ...]) -> Path:
    return tuple(item_key(p) if isinstance(p, int) else str(p) for p in loc)


def shape_problems(config: dict[str, Any]) -> dict[Path, list[tuple[Path, str]]]:
    """``{table path: [(key path, message), ...]}``: unknown keys first, then missing ones."""
    try:
        TenantConfig.model_validate(config)
    except ValidationError as exc:
        errors = exc.errors()
    else:
        return {}
    out: dict[Path, list[tuple[Path, str]]] = {}
    for kind in ("extra_forbidden", "missing"):
        for err in errors:
            if err["type"] != kind or not err["loc"]:
                continue
            loc = tuple(err["loc"])
            table, key = _path(loc[:-1]), str(loc[-1])
            if kind == "extra_forbidden":
                allowed = allowed_keys(_model_at(loc[:-1]))
                where = dotted_key((*table, key))
                message = (
                    f"unknown key '{where}'{suggest(key, allowed)} "
                    f"(allowed here: {', '.join(allowed)})"
                )
                out.setdefault(table, []).append(((*table, key), message))
            else:
                out.setdefault(table, []).append((table, _missing(loc, table, key)))
    return out


def _missing(loc: tuple[str | int, ...], table: Path, key: str) -> str:
    field = _field(_model_at(loc[:-1]), key)
    extra = field.json_schema_extra if field is not None else None
    if isinstance(extra, dict) and isinstance(extra.get("missing"), str):
        return str(extra["missing"]).format(table=".".join(table))
    return f"missing required key '{dotted_key((*table, key))}'"
