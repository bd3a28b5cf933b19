"""What a tenant wants sent after each call: WhatsApp templates and the rules that pick them.

Declared in ``tenant.toml`` (``[whatsapp]``, ``[templates.<name>]``, ``[[actions.<call_type>]]``,
see tenants/README.md), checked and built by ``action_checks.py``, used by ``notify/actions.py``.
Everything here is immutable, like the rest of a loaded :class:`~receptionist.tenants.model.Tenant`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "CALL_SOURCES",
    "DIGEST_SOURCES",
    "RECIPIENT_KINDS",
    "ActionRule",
    "DailyDigest",
    "Template",
    "Variable",
    "WhatsAppSender",
    "placeholder_numbers",
]

# Where a template variable's value may come from, besides ``details.<field>`` of the call type.
CALL_SOURCES: tuple[str, ...] = (
    "call.summary",  # the analysis' one-line summary
    "call.type",  # the call type's name
    "call.caller",  # the caller's number as Exotel gave it
    "call.time",  # when the call started, in the tenant's time zone ("25 Nov, 4:05 PM")
    "business.name",
)
# What a daily digest's template variables may show (notify/digest.py fills them).
DIGEST_SOURCES: tuple[str, ...] = (
    "digest.date",  # the day it covers ("6 Dec 2026")
    "digest.calls",  # how many calls
    "digest.by_type",  # calls per call type ("order 5, enquiry 12")
    "digest.missed",  # calls not answered (refused, over budget, hung up before the greeting)
    "digest.failed",  # calls that ended in an error
    "digest.complaints",  # calls typed as a complaint
    "digest.cost",  # AI cost of the day's calls, in rupees
    "business.name",
)
# Who a message goes to, besides a fixed number written as "+<country><number>".
RECIPIENT_KINDS: tuple[str, ...] = ("customer", "owner")

_PLACEHOLDER = re.compile(r"\{\{\s*(\d+)\s*\}\}")


def placeholder_numbers(text: str) -> list[int]:
    """The distinct ``{{n}}`` numbers in a template's text, in ascending order."""
    return sorted({int(n) for n in _PLACEHOLDER.findall(text)})


@dataclass(frozen=True, slots=True)
class Template:
    """A WhatsApp template as approved at MSG91; ``text`` has ``{{1}}``..``{{n}}`` placeholders."""

    name: str
    language: str  # WhatsApp template language code, e.g. "en", "en_US", "hi"
    text: str

    @property
    def variable_count(self) -> int:
        return len(placeholder_numbers(self.text))

    def render(self, values: list[str]) -> str:
        """The message as the recipient reads it, with ``values[i]`` in place of ``{{i+1}}``."""
        return _PLACEHOLDER.sub(lambda m: values[int(m.group(1)) - 1], self.text)


@dataclass(frozen=True, slots=True)
class Variable:
    """Where one template variable (``{{n}}``, n = position + 1) gets its text.

    Either ``source`` ("details.<field>" or one of CALL_SOURCES), with ``default`` used when the
    analysis has no value; or ``write``: an instruction for the AI to write free text (at most
    ``max_chars``), with ``fallback`` as the static text when the AI is off or fails.
    """

    source: str | None = None
    default: str | None = None
    write: str | None = None
    fallback: str | None = None
    max_chars: int = 300

    @property
    def ai_written(self) -> bool:
        return self.write is not None

    @property
    def detail_field(self) -> str | None:
        if self.source and self.source.startswith("details."):
            return self.source.removeprefix("details.")
        return None


@dataclass(frozen=True, slots=True)
class ActionRule:
    """After a call of ``call_type``: send ``template`` to ``to`` when the conditions hold."""

    call_type: str
    to: str  # "customer" | "owner" | "+919800000002"
    template: str
    variables: tuple[Variable, ...]
    ai_written: bool = False  # let the AI write the `write` variables (else their fallback)
    when_present: tuple[str, ...] = ()  # detail fields that must have a value
    when_equals: tuple[tuple[str, str], ...] = ()  # (field, value), compared case-insensitively
    urgent: bool = False  # shown first and marked for the owner
    line: int | None = None  # where it is declared in tenant.toml, for messages

    @property
    def key(self) -> str:
        """Stable identity of this rule for one call: recipient and template."""
        return f"{self.to}:{self.template}"


@dataclass(frozen=True, slots=True)
class WhatsAppSender:
    """The business's own MSG91 WhatsApp sender; unset fields fall back to the server's."""

    integrated_number: str | None = None  # digits with country code, e.g. "919800000009"
    namespace: str | None = None
    auth_key_env: str | None = None  # NAME of the env var holding the MSG91 auth key


@dataclass(frozen=True, slots=True)
class DailyDigest:
    """Yesterday's calls to the owner on WhatsApp at `hour` (local), through `template`, whose
    `{{n}}` shows `sources[n-1]` (one of DIGEST_SOURCES)."""

    hour: int
    template: str
    sources: tuple[str, ...]


#: What a tenant's webhooks may receive (hooks/events.py makes them).
WEBHOOK_EVENTS: tuple[str, ...] = ("call.started", "call.ended", "call.analyzed", "message.status")


@dataclass(frozen=True, slots=True)
class Webhook:
    """A URL of the business's own that receives `events` as signed JSON (hooks/)."""

    url: str
    secret_env: str  # NAME of the env var holding the signing secret
    events: tuple[str, ...]
