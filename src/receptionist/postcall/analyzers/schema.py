"""The answer every call analyzer gives, and the one schema it is held to.

An :class:`Analysis` says which of the tenant's call types a call was and which "critical
details" (the fields the tenant's schema declares for that type) were said in it. Fields that
were not said are left out of ``details``; nothing is null-filled.

:func:`answer_schema` builds, once per tenant call-type schema, one pydantic model per call type
(its details) and one for the whole answer. The same models give the ``responseSchema`` sent to
Gemini (:func:`response_schema`) and check every answer, the offline analyzer's
(:func:`validate_details`) as much as the model's (:func:`check_fields`), so the two can never
hold different rules.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    create_model,
)
from pydantic_core import PydanticCustomError

from receptionist.tenants.model import CallType, FieldSpec, Tenant

__all__ = [
    "FIELD_HINTS",
    "NO_CONVERSATION",
    "Analysis",
    "AnswerSchema",
    "answer_schema",
    "check_fields",
    "response_schema",
    "validate_details",
]

#: Call type of an empty transcript: the caller hung up (or never spoke) -- no model is called.
NO_CONVERSATION = "no_conversation"


@dataclass(frozen=True)
class Analysis:
    """What a call was about.

    ``analyzer`` is ``"offline"`` for the deterministic analyzer, else the model's name.
    ``confidence`` is in [0, 1] when the analyzer has a notion of it, else None.
    """

    call_type: str
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    analyzer: str = "offline"
    confidence: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "call_type": self.call_type,
            "summary": self.summary,
            "details": dict(self.details),
            "analyzer": self.analyzer,
            "confidence": self.confidence,
        }


# --------------------------------------------------------------------------- field types

_PHONE_RE = re.compile(r"\+?\d{6,15}")
_TIME_RE = re.compile(r"([01]\d|2[0-3]):[0-5]\d")


def _is_iso_date(value: str) -> bool:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_iso_time(value: str) -> bool:
    if not _TIME_RE.fullmatch(value):
        return False
    try:
        time.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_iso_datetime(value: str) -> bool:
    if not re.match(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", value):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _string_problem(value: Any) -> str | None:
    if not isinstance(value, str):
        return "must be a string"
    return None if value.strip() else "must not be empty"


def _list_problem(value: Any) -> str | None:
    if not isinstance(value, list):
        return "must be a list"
    if not all(isinstance(v, str) and v.strip() for v in value):
        return "must be a list of non-empty strings"
    return None


def _text_check(ok: Callable[[str], bool], problem: str) -> Callable[[Any], str | None]:
    return lambda value: None if isinstance(value, str) and ok(value) else problem


def _is_number(value: Any) -> bool:  # bool is an int in Python, never a number here
    return not isinstance(value, bool) and isinstance(value, int | float)


@dataclass(frozen=True)
class _FieldType:
    json: dict[str, Any]  # JSON Schema of a value
    hint: str | None  # the format, for the model's description and prompt
    problem: Callable[[Any], str | None]  # what is wrong with a value, None if fine


_FIELD_TYPES: dict[str, _FieldType] = {
    "string": _FieldType({"type": "string"}, None, _string_problem),
    "integer": _FieldType(
        {"type": "integer"},
        None,
        lambda v: None if _is_number(v) and isinstance(v, int) else "must be an integer",
    ),
    "number": _FieldType(
        {"type": "number"}, None, lambda v: None if _is_number(v) else "must be a number"
    ),
    "boolean": _FieldType(
        {"type": "boolean"},
        None,
        lambda v: None if isinstance(v, bool) else "must be true or false",
    ),
    "date": _FieldType(
        {"type": "string"},
        "date as YYYY-MM-DD",
        _text_check(_is_iso_date, "must be a date as YYYY-MM-DD"),
    ),
    "time": _FieldType(
        {"type": "string"},
        "time as HH:MM, 24-hour",
        _text_check(_is_iso_time, "must be a time as HH:MM (24-hour)"),
    ),
    "datetime": _FieldType(
        {"type": "string"},
        "date and time as YYYY-MM-DDTHH:MM, 24-hour",
        _text_check(_is_iso_datetime, "must be a date and time as YYYY-MM-DDTHH:MM"),
    ),
    "phone": _FieldType(
        {"type": "string"},
        "phone number as digits with country code, e.g. +919812345678",
        _text_check(
            lambda v: bool(_PHONE_RE.fullmatch(v)), "must be digits with an optional leading +"
        ),
    ),
    "list": _FieldType({"type": "array", "items": {"type": "string"}}, None, _list_problem),
}

#: Field type -> the format a value must have, in words (None: the JSON type says it all).
FIELD_HINTS: dict[str, str | None] = {name: t.hint for name, t in _FIELD_TYPES.items()}


def _value_type(type_name: str) -> Any:
    """The pydantic type of one field's value: the check above, the JSON Schema beside it."""
    kind = _FIELD_TYPES.get(type_name)
    if kind is None:  # the loader only builds known types; keep the old message anyway
        kind = _FieldType({"type": "string"}, None, lambda v: f"has unknown type {type_name!r}")
    checks = kind.problem

    def check(value: Any) -> Any:
        problem = checks(value)
        if problem:
            raise PydanticCustomError("field_value", problem)
        return value

    return Annotated[Any, AfterValidator(check), WithJsonSchema(copy.deepcopy(kind.json))]


# --------------------------------------------------------------------------- the models

_FORBID = ConfigDict(extra="forbid")


def _details_model(ct: CallType) -> type[BaseModel]:
    """One call type's details: its fields, each optional (a call may not have said it)."""
    fields: dict[str, Any] = {
        spec.name: (_value_type(spec.type), Field(None, description=spec.description))
        for spec in ct.fields
    }
    return create_model(f"details_{ct.name}", __config__=_FORBID, **fields)


def _union_description(specs: Sequence[tuple[str, FieldSpec]], hint: str | None) -> str:
    if len(specs) == 1:
        desc = specs[0][1].description.strip()
    else:
        desc = "; ".join(f"{ct}: {spec.description.strip()}" for ct, spec in specs)
    if hint:
        desc = f"{desc} ({hint})" if desc else hint
    return desc


def _wire_details_schema(call_types: Sequence[CallType]) -> dict[str, Any]:
    """JSON Schema of ``details`` as the model sees it: every call type's fields, all optional.

    A field several call types declare with different types is asked for as a string.
    """
    by_name: dict[str, list[tuple[str, FieldSpec]]] = {}
    for ct in call_types:
        for spec in ct.fields:
            by_name.setdefault(spec.name, []).append((ct.name, spec))
    fields: dict[str, Any] = {}
    for name, specs in by_name.items():
        kinds = {spec.type for _, spec in specs}
        kind = specs[0][1].type if len(kinds) == 1 else "string"
        desc = _union_description(specs, FIELD_HINTS.get(kind))
        fields[name] = (_value_type(kind) | None, Field(None, description=desc or None))
    model = create_model("details", __config__=_FORBID, **fields)
    return model.model_json_schema()


def _all_required(schema: dict[str, Any]) -> None:
    # The model must always send all three keys; we still read a missing `details` as {}.
    schema["required"] = list(schema.get("properties", {}))


def _answer_model(call_types: Sequence[CallType]) -> type[BaseModel]:
    names = (*(ct.name for ct in call_types), NO_CONVERSATION)
    details_schema = _wire_details_schema(call_types)
    details_schema["description"] = (
        "Only the fields of the chosen call type that were said in the call; "
        "leave every other field out."
    )
    summary = _value_type("string")
    one_of: Any = Literal[names]  # built at run time from the tenant's call types
    return create_model(
        "answer",
        __config__=ConfigDict(extra="forbid", json_schema_extra=_all_required),
        call_type=(one_of, Field(description="The one call type that fits the call best.")),
        summary=(summary, Field(description="One line an owner can read at a glance.")),
        details=(Annotated[dict[str, Any] | None, WithJsonSchema(details_schema)], None),
    )


@dataclass(frozen=True)
class AnswerSchema:
    """A tenant's answer models and the Gemini ``responseSchema`` made from them."""

    call_types: tuple[str, ...]  # the tenant's, then no_conversation
    answer: type[BaseModel]  # call_type, summary, details (a dict, checked per call type)
    details: dict[str, type[BaseModel]]  # per call type (no_conversation takes none)
    gemini: dict[str, Any]  # read-only: response_schema() hands out copies


@lru_cache(maxsize=256)
def _build(call_types: tuple[CallType, ...]) -> AnswerSchema:
    answer = _answer_model(call_types)
    return AnswerSchema(
        call_types=(*(ct.name for ct in call_types), NO_CONVERSATION),
        answer=answer,
        details={ct.name: _details_model(ct) for ct in call_types},
        gemini=to_gemini(answer.model_json_schema()),
    )


def answer_schema(tenant: Tenant) -> AnswerSchema:
    """The tenant's answer models, built once per call-type schema (a tenant's new version
    with the same call types shares them)."""
    return _build(tenant.call_types)


# --------------------------------------------------------------------------- Gemini's subset

_DROPPED = frozenset({"title", "default", "additionalProperties", "$defs"})


def to_gemini(node: dict[str, Any]) -> dict[str, Any]:
    """JSON Schema (as pydantic writes it) -> Gemini's ``responseSchema`` (an OpenAPI subset):
    upper-case types, ``nullable`` instead of ``anyOf [.., null]``, objects keep their
    properties' order (``property_ordering``)."""
    variants = node.get("anyOf")
    if variants is not None:
        real = [v for v in variants if v.get("type") != "null"]
        if len(real) != 1:
            raise ValueError(f"Gemini's schema has no union of {variants!r}")
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        out = to_gemini({**real[0], **rest})
        out["nullable"] = True
        return out
    out = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key == "type":
            out[key] = str(value).upper()
        elif key == "items":
            out[key] = to_gemini(value)
        elif key == "properties":
            out[key] = {name: to_gemini(sub) for name, sub in value.items()}
            out["property_ordering"] = list(value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def response_schema(tenant: Tenant) -> dict[str, Any]:
    """The ``responseSchema`` (Gemini's OpenAPI subset, as a plain dict) for ``tenant``.

    ``call_type`` is an enum of the tenant's call types plus ``no_conversation``; ``details``
    has the union of all call types' fields, none required (a call may not have said them).
    Returns a fresh dict each time (the SDK edits schemas in place).
    """
    return copy.deepcopy(answer_schema(tenant).gemini)


# --------------------------------------------------------------------------- checks


def check_fields(tenant: Tenant, data: dict[str, Any]) -> list[str]:
    """Problems with an answer's top level (call_type, summary, details, nothing else)."""
    schema = answer_schema(tenant)
    try:
        schema.answer.model_validate(data)
    except ValidationError as exc:
        return _top_problems(schema, data, exc)
    return []


def _top_problems(schema: AnswerSchema, data: dict[str, Any], exc: ValidationError) -> list[str]:
    bad = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
    problems = []
    if "call_type" in bad:
        known = ", ".join(schema.call_types)
        problems.append(f"call_type must be one of {known}; got {data.get('call_type')!r}")
    if "summary" in bad:
        problems.append("summary must be a non-empty one-line string")
    if "details" in bad:
        problems.append("details must be a JSON object")
    extra = sorted(bad - {"call_type", "summary", "details"})
    if extra:
        problems.append(f"unexpected top-level keys: {', '.join(extra)}")
    return problems


def validate_details(tenant: Tenant, call_type: str, details: dict[str, Any]) -> list[str]:
    """Problems with ``details`` for ``call_type`` of ``tenant`` (empty list: all fine).

    Checks: the call type exists (``no_conversation`` is always allowed and takes no details),
    every key is a field of that type, and every value has the field's type. Missing fields,
    even required ones, are not problems: a call may simply not have said them.
    """
    if not isinstance(details, dict):
        return ["details must be an object"]
    if call_type == NO_CONVERSATION:
        return [f"{NO_CONVERSATION} takes no details, got {k!r}" for k in details]
    schema = answer_schema(tenant)
    model = schema.details.get(call_type)
    if model is None:
        known = ", ".join(schema.call_types[:-1])
        return [f"unknown call type {call_type!r} (known: {known})"]
    try:
        model.model_validate(details)
    except ValidationError as exc:
        return _detail_problems(tenant, call_type, details, exc)
    return []


def _detail_problems(
    tenant: Tenant, call_type: str, details: dict[str, Any], exc: ValidationError
) -> list[str]:
    ct = tenant.call_type(call_type)
    assert ct is not None
    said: dict[str, str] = {}
    for err in exc.errors():
        key = str(err["loc"][0])
        spec = ct.field(key)
        if spec is None:
            said[key] = f"unknown field {key!r} for call type {call_type!r}"
        else:
            said[key] = f"field {key!r} ({spec.type}) {err['msg']}: {details[key]!r}"
    return [said[key] for key in details if key in said]  # in the answer's order
