"""A call's turns as the offline analyzer reads them, and the words it keys fields on."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from receptionist.language.dates import local_today
from receptionist.language.text import content_words, nfc, wordset
from receptionist.tenants.model import Tenant

__all__ = ["Context", "Turn", "key_words", "read_turns"]

# words of call-type schemas that tell nothing about a field or a type ("the customer wants")
_SCHEMA_WORDS = wordset("customer customers caller patient patients wants want asks ask asked")


def key_words(text: str) -> list[str]:
    """Stemmed content words of ``text``: no stop words, no schema boilerplate."""
    return content_words(text, _SCHEMA_WORDS)


@dataclass(frozen=True, slots=True)
class Turn:
    speaker: str
    text: str

    @property
    def caller(self) -> bool:
        return self.speaker == "caller"


def read_turns(transcript: Iterable[dict[str, Any]]) -> list[Turn]:
    """The non-empty turns of a stored transcript, text in NFC form."""
    out = []
    for t in transcript:
        text = nfc(str(t.get("text") or "")).strip()
        if text:
            out.append(Turn(str(t.get("speaker") or ""), text))
    return out


@dataclass
class Context:
    tenant: Tenant
    turns: Sequence[Turn]
    now: datetime

    @property
    def today(self) -> date:
        return local_today(self.now, self.tenant.timezone)

    def caller_text(self) -> str:
        return "\n".join(t.text for t in self.turns if t.caller)

    def agent_text(self) -> str:
        return "\n".join(t.text for t in self.turns if not t.caller)
