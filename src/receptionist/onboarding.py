"""Drafting a tenant from a description (`receptionist tenants new`): with Gemini when a key is
set, else (and whenever Gemini's draft does not hold up) the template drafter of tenants/draft.py.

Gemini answers with structured output: a JSON object matching :class:`DraftAnswer` (its schema
is built from the pydantic model). The answer becomes the same :class:`BusinessDraft` the
template drafter makes, so both ways write the same files (tenants/draft_files.py), and the
files are checked with `load_bundle` exactly like `tenants validate`. A draft that does not
validate, an answer that is not the schema, or a failed request: the template draft is used
instead and `note` says why.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from google import genai
from google.genai import types
from pydantic import BaseModel, Field, ValidationError

from receptionist.gemini_rest import AnalyzerError, generate_json
from receptionist.language.phones import extract_phones
from receptionist.tenants.bundle import TenantBundle
from receptionist.tenants.draft import (
    BusinessDraft,
    DraftError,
    parse_description,
    plain_text,
    with_warnings,
)
from receptionist.tenants.draft_files import render_bundle
from receptionist.tenants.loading import is_valid_tenant_id, load_bundle
from receptionist.tenants.report import Problem

if TYPE_CHECKING:
    from receptionist.config import Settings

__all__ = [
    "DraftAnswer",
    "DraftBug",
    "DraftError",
    "DraftResult",
    "draft_tenant",
    "gemini_draft",
    "response_schema",
    "settings_drafter",
]

_SYSTEM = """You set up an AI phone receptionist for a small Indian business from the owner's
own description. Read only what the description says; never invent prices, hours, addresses or
phone numbers (leave a list empty, or a text empty, when the description does not say).
- name: the business name as spoken on the phone.
- kind: food (bakery, restaurant, sweets, caterer), appointments (salon, clinic, spa, tutor),
  shop (pharmacy, grocery, other retail) or general.
- owner_phone: the owner's mobile / WhatsApp number in E.164 (+91 and 10 digits), or "".
- languages: BCP-47 codes of the languages callers speak, English first: ["en-IN", "hi-IN"].
- greeting: one warm sentence the receptionist says first, naming the business.
- prices: every item or service with its price in rupees as written ("750", "300 onwards").
- hours, address, callers_want (what callers usually call for), notes (anything else useful)."""

_LANGUAGE = re.compile(r"([a-zA-Z]{2,3})[-_]([a-zA-Z]{2})")

Kind = Literal["food", "appointments", "shop", "general"]


class PriceItem(BaseModel):
    item: str = Field(max_length=200)
    price: str = Field(max_length=60)


class DraftAnswer(BaseModel):
    """What Gemini is asked for (and held to)."""

    name: str = Field(min_length=1, max_length=80)
    kind: Kind
    owner_phone: str = Field(max_length=20)
    languages: list[str] = Field(min_length=1, max_length=6)
    greeting: str = Field(max_length=300)
    prices: list[PriceItem] = Field(max_length=300)
    hours: list[str] = Field(max_length=30)
    address: str = Field(max_length=400)
    callers_want: list[str] = Field(max_length=20)
    notes: list[str] = Field(max_length=50)


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """Gemini's schema subset: $ref inlined; only type, properties, required, items, enum."""
    if isinstance(node, dict):
        if "$ref" in node:
            return _inline(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
        keep = {"type", "properties", "required", "items", "enum", "description"}
        out = {k: _inline(v, defs) for k, v in node.items() if k in keep}
        if "properties" in node:
            out["properties"] = {k: _inline(v, defs) for k, v in node["properties"].items()}
        return out
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def response_schema() -> dict[str, Any]:
    schema = DraftAnswer.model_json_schema()
    return dict(_inline(schema, schema.get("$defs", {})))


def _as_draft(answer: DraftAnswer) -> BusinessDraft:
    def texts(items: list[str]) -> tuple[str, ...]:
        return tuple(t for t in (plain_text(i, 400) for i in items) if t)

    # codes as the loader writes them ("hi-in" -> "hi-IN"), those that are not codes dropped
    codes = (_LANGUAGE.fullmatch(plain_text(code, 20)) for code in answer.languages)
    found = [f"{m.group(1).lower()}-{m.group(2).upper()}" for m in codes if m]
    languages = tuple(dict.fromkeys(found)) or ("en-IN",)
    prices = ((plain_text(p.item), plain_text(p.price).lstrip("₹ ")) for p in answer.prices)
    draft = BusinessDraft(
        name=" ".join(plain_text(answer.name, 80).split()),  # one line: it is spoken
        kind=answer.kind,
        owner_phone=plain_text(answer.owner_phone) or None,
        languages=languages,
        prices=tuple((item, price) for item, price in prices if item and price),
        hours=texts(answer.hours),
        address=plain_text(answer.address, 400) or None,
        callers_want=texts(answer.callers_want),
        notes=texts(answer.notes),
        greeting=plain_text(answer.greeting, 300) or None,
    )
    return with_warnings(draft)


async def gemini_draft(
    client: genai.Client, model: str, description: str, *, timeout_s: float
) -> BusinessDraft:
    """Gemini's draft; AnalyzerError (the request failed) or ValueError (not the schema)."""
    text, _usage = await generate_json(
        client,
        model,
        system=_SYSTEM,
        contents=[types.Content(role="user", parts=[types.Part(text=description)])],
        schema=response_schema(),
        temperature=0.2,
        timeout_s=timeout_s,
        purpose="onboarding",
    )
    if not text:
        raise ValueError("Gemini sent no answer")
    try:
        return _as_draft(DraftAnswer.model_validate_json(text))
    except ValidationError as exc:
        raise ValueError(f"Gemini's answer is not a draft: {exc.errors()[0]['msg']}") from exc


@dataclass(frozen=True, slots=True)
class DraftResult:
    draft: BusinessDraft
    bundle: TenantBundle
    source: Literal["gemini", "template"]
    note: str | None = None  # why Gemini's draft was not used


class DraftBug(RuntimeError):
    """The template draft did not validate: a bug in the drafter, never saved."""


def _checked(tenant_id: str, draft: BusinessDraft) -> tuple[TenantBundle, list[Problem]]:
    bundle = render_bundle(draft)
    return bundle, load_bundle(tenant_id, bundle)[1]


async def draft_tenant(
    tenant_id: str,
    description: str,
    *,
    client: genai.Client | None = None,
    model: str = "gemini-2.5-flash",
    timeout_s: float = 60.0,
) -> DraftResult:
    """The draft of `tenant_id` from `description`, validated (DraftError for a bad description).

    With a client Gemini drafts first; anything wrong with its draft falls back to the template.
    """
    if not is_valid_tenant_id(tenant_id):
        raise DraftError(
            f"{tenant_id!r} is not a valid tenant id: use 1-63 lowercase letters, digits, '-' "
            "or '_', starting with a letter or digit"
        )
    template = parse_description(description, tenant_id)
    note = None
    if client is not None:
        try:
            draft = await gemini_draft(client, model, description, timeout_s=timeout_s)
        except (AnalyzerError, ValueError) as exc:
            note = f"Gemini's draft was not used ({plain_text(str(exc), 300)}): used the template"
        else:
            # a number the owner did not write is a guess: keep only one from the description
            if draft.owner_phone not in extract_phones(description):
                draft = with_warnings(replace(draft, owner_phone=template.owner_phone))
            bundle, problems = _checked(tenant_id, draft)
            if not problems:
                return DraftResult(draft, bundle, "gemini")
            note = f"Gemini's draft does not validate ({problems[0]}): used the template"
    bundle, problems = _checked(tenant_id, template)
    if problems:
        raise DraftBug("; ".join(str(p) for p in problems))
    return DraftResult(template, bundle, "template", note)


def settings_drafter(settings: Settings) -> Callable[[str, str], Awaitable[DraftResult]]:
    """`draft_tenant` as the server's settings have it (the dashboard's "new business"): with
    Gemini when a key is set, made at the first draft and kept for the process, else the
    template drafter, exactly as `receptionist tenants new` does."""
    key = settings.gemini_key
    clients: list[genai.Client] = []

    async def drafter(tenant_id: str, description: str) -> DraftResult:
        if not key:
            return await draft_tenant(tenant_id, description)
        if not clients:
            from receptionist.gemini_rest import make_client

            clients.append(make_client(key, base_url=settings.gemini_analysis_base_url))
        return await draft_tenant(
            tenant_id, description, client=clients[0], model=settings.gemini_analysis_model
        )

    return drafter
