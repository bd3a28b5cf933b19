"""Fill a WhatsApp template's variables for one call: facts from the analysis, free text by the AI.

Facts (names, items, dates, the caller's number) always come from the analysis, never from a
model: the AI only writes the variables a rule marks ``write`` (a thank-you line, a short
summary for the owner), within ``max_chars``, in the template's language, from the same facts.
When the AI is off or fails, the rule's static ``fallback`` is used and the reason is kept on the
message, so a message is never held back by the AI.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from google import genai
from google.genai import types

from receptionist.gemini_rest import AnalyzerError, generate_json
from receptionist.notify.phones import InvalidPhone, normalise_phone
from receptionist.notify.whatsapp import clean_variable
from receptionist.tenants.actions import ActionRule, Template, Variable
from receptionist.tenants.messages import language_name
from receptionist.tenants.model import Tenant
from receptionist.usage import TokenUsage

__all__ = [
    "CallFacts",
    "Composed",
    "GeminiMessageWriter",
    "MessageWriter",
    "WriterError",
    "compose",
    "format_value",
]


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What is known about a call once it is analysed."""

    call_sid: str
    call_type: str
    summary: str
    details: dict[str, Any]
    caller: str | None  # as Exotel gave it
    started_at: datetime | None


@dataclass(frozen=True, slots=True)
class Composed:
    values: list[str]  # {{1}}..{{n}}
    text: str  # the message as the recipient reads it
    notes: dict[str, Any] = field(default_factory=dict)  # sources, AI use and fallback reasons
    usage: TokenUsage | None = None


class WriterError(Exception):
    """The AI could not write the text; the fallback is used and this reason recorded."""


class MessageWriter(Protocol):
    model: str

    async def write(
        self,
        tenant: Tenant,
        template: Template,
        facts: CallFacts,
        known: Sequence[str | None],
        wanted: dict[int, Variable],
    ) -> tuple[dict[int, str], TokenUsage | None]:
        """Text for each wanted position (0-based); raise WriterError on any failure."""
        ...


class MissingDetail(Exception):
    def __init__(self, position: int, source: str) -> None:
        super().__init__(
            f"template variable {{{{{position + 1}}}}} needs {source}, "
            "which the analysis did not find (and the rule gives no default)"
        )


def format_value(value: Any) -> str | None:
    """A detail as a person reads it; None when there is nothing to say."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list | tuple):
        parts = [p for p in (format_value(v) for v in value) if p]
        return ", ".join(parts) or None
    if isinstance(value, datetime):
        return value.strftime("%d %b %Y, %I:%M %p").lstrip("0")
    if isinstance(value, date):
        return value.strftime("%a %d %b %Y")
    if isinstance(value, time):
        return value.strftime("%I:%M %p").lstrip("0")
    text = str(value).strip()
    try:  # ISO dates and times from the analysis read better spelled out
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return format_value(date.fromisoformat(text))
        if re.fullmatch(r"\d{2}:\d{2}(:\d{2})?", text):
            return format_value(time.fromisoformat(text))
    except ValueError:
        pass
    return text or None


def _call_source(source: str, tenant: Tenant, facts: CallFacts) -> str | None:
    if source == "call.summary":
        return facts.summary or None
    if source == "call.type":
        return facts.call_type.replace("_", " ")
    if source == "call.caller":
        try:
            return "+" + normalise_phone(facts.caller)
        except InvalidPhone as exc:  # withheld: the rule's default says so in its own words
            return None if exc.withheld else facts.caller
    if source == "call.time":
        if facts.started_at is None:
            return None
        local = facts.started_at.astimezone(ZoneInfo(tenant.timezone))
        return local.strftime("%d %b, %I:%M %p").lstrip("0").replace(" 0", " ")
    if source == "business.name":
        return tenant.name
    return None


def fixed_values(
    rule: ActionRule, tenant: Tenant, facts: CallFacts
) -> tuple[list[str | None], list[str]]:
    """Values of the non-AI variables (None at AI positions) and where each came from.

    Raises MissingDetail when a needed detail is absent and has no default."""
    values: list[str | None] = []
    sources: list[str] = []
    for i, var in enumerate(rule.variables):
        if var.ai_written:
            values.append(None)
            sources.append("ai")  # becomes "fallback" in compose() when the AI did not write it
            continue
        source = var.source or ""
        if var.detail_field is not None:
            raw = format_value(facts.details.get(var.detail_field))
        else:
            raw = _call_source(source, tenant, facts)
        if raw is None:
            if var.default is None:
                raise MissingDetail(i, source)
            raw, source = var.default, f"{source} (default)"
        values.append(clean_variable(raw, var.max_chars))
        sources.append(source)
    return values, sources


async def compose(
    rule: ActionRule,
    template: Template,
    tenant: Tenant,
    facts: CallFacts,
    writer: MessageWriter | None,
) -> Composed:
    """The template's variables and text for this call (MissingDetail when a fact is missing)."""
    values, sources = fixed_values(rule, tenant, facts)
    wanted = {i: v for i, v in enumerate(rule.variables) if v.ai_written}
    notes: dict[str, Any] = {"sources": sources}
    usage: TokenUsage | None = None
    written: dict[int, str] = {}
    if wanted and rule.ai_written:
        if writer is None:
            notes["ai"] = {
                "used": False,
                "reason": "no AI configured (no Gemini key, or NOTIFY_AI=off)",
            }
        else:
            try:
                written, usage = await writer.write(tenant, template, facts, values, wanted)
                notes["ai"] = {"used": True, "model": writer.model}
            except WriterError as exc:
                notes["ai"] = {"used": False, "model": writer.model, "reason": str(exc)[:300]}
    final: list[str] = []
    for i, value in enumerate(values):
        if value is not None:
            final.append(value)
            continue
        var = rule.variables[i]
        text = clean_variable(written.get(i, ""), var.max_chars)
        if not text:
            text = clean_variable(var.fallback or "", var.max_chars)
            sources[i] = "fallback"
        final.append(text)
    return Composed(values=final, text=template.render(final), notes=notes, usage=usage)


class GeminiMessageWriter:
    """Writes a rule's free-text variables with Gemini ``generateContent`` (JSON answer)."""

    PURPOSE = "message"

    def __init__(
        self, client: genai.Client, model: str, *, timeout_s: float = 20.0, temperature: float = 0.4
    ) -> None:
        self.client = client
        self.model = model
        self.timeout_s = timeout_s
        self.temperature = temperature

    async def write(
        self,
        tenant: Tenant,
        template: Template,
        facts: CallFacts,
        known: Sequence[str | None],
        wanted: dict[int, Variable],
    ) -> tuple[dict[int, str], TokenUsage | None]:
        system, user = build_writer_prompt(tenant, template, facts, known, wanted)
        schema = {
            "type": "object",
            "properties": {
                f"v{i + 1}": {"type": "string", "description": v.write} for i, v in wanted.items()
            },
            "required": [f"v{i + 1}" for i in wanted],
        }
        contents = [types.Content(role="user", parts=[types.Part(text=user)])]
        try:
            text, usage = await generate_json(
                self.client,
                self.model,
                system=system,
                contents=contents,
                schema=schema,
                temperature=self.temperature,
                timeout_s=self.timeout_s,
                purpose=self.PURPOSE,
            )
        except AnalyzerError as exc:
            raise WriterError(str(exc)) from exc
        try:
            answer = json.loads(text or "")
        except ValueError:
            raise WriterError(f"unreadable answer: {(text or '')[:120]!r}") from None
        if not isinstance(answer, dict):
            raise WriterError("the answer is not a JSON object")
        out: dict[int, str] = {}
        for i in wanted:
            value = answer.get(f"v{i + 1}")
            if isinstance(value, str) and value.strip():
                out[i] = value
        if not out:
            raise WriterError("the answer had none of the wanted fields")
        return out, usage


def build_writer_prompt(
    tenant: Tenant,
    template: Template,
    facts: CallFacts,
    known: Sequence[str | None],
    wanted: dict[int, Variable],
) -> tuple[str, str]:
    """System and user text for the writer. The business's own assistant prompt sets the tone."""
    language = language_name(template.language.replace("_", "-"))
    tone = tenant.assistant_prompt.strip()[:1200]
    system = (
        f"You write parts of WhatsApp messages sent by {tenant.name} after a phone call.\n"
        f"Write in {language}, in the tone of the business described below.\n"
        "Use only the facts given. Never add a price, date, time, item or promise that is not "
        "in the facts. Each part is one line of plain text (no line breaks, no markdown), "
        "within its character limit.\n\n"
        f"How the business talks to its customers:\n{tone}\n"
    )
    slots = ["[" + f"v{i + 1}" + "]" for i in range(len(known))]
    filled = template.render([k if k is not None else slots[i] for i, k in enumerate(known)])
    facts_json = json.dumps(
        {
            "call_type": facts.call_type,
            "summary": facts.summary,
            "details": {k: v for k, v in facts.details.items() if not k.startswith("_")},
        },
        ensure_ascii=False,
        default=str,
    )
    parts = "\n".join(
        f"- v{i + 1} (at most {v.max_chars} characters): {v.write}" for i, v in wanted.items()
    )
    user = (
        f"The message, with the parts to write in brackets:\n{filled}\n\n"
        f"Facts from the call:\n{facts_json}\n\nWrite these parts:\n{parts}\n"
    )
    return system, user
