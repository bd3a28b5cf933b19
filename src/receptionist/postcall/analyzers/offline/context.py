"""A call's turns as the offline analyzer reads them, and the words it keys fields on.

Whose words count: details come from the caller. An agent line counts only as a *confirmed
read-back*: the caller's very next turn says yes to it ("Yes, that's right", "haan sahi hai")
and the line does not end in a question that asks for something ("How can I help you today?",
"May I have your name?"). A confirmed read-back may fill a detail the caller's own words gave
nothing for, and confirms a phone number the caller corrected in words; an agent line nobody
confirmed never gives a detail (the greeting's "today" is no date).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from receptionist.language.cues import is_no, is_yes
from receptionist.language.dates import local_today
from receptionist.language.text import content_words, nfc, sentences, wordset
from receptionist.tenants.model import Tenant

__all__ = ["Context", "Turn", "key_words", "read_turns"]

# words of call-type schemas that tell nothing about a field or a type ("the customer wants")
_SCHEMA_WORDS = wordset("customer customers caller patient patients wants want asks ask asked")


def key_words(text: str) -> list[str]:
    """Stemmed content words of ``text``: no stop words, no schema boilerplate."""
    return content_words(text, _SCHEMA_WORDS)


# an agent question that asks for something rather than checks it: a yes to it confirms nothing
_ASKS_FOR = re.compile(
    r"^(?:how|what|which|when|where|who|whose|why|may i|can i have|could you (?:tell|give)"
    r"|could i have|would you like|do you want|anything else|is there anything)\b",
    re.I,
)


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

    def confirmed(self, i: int) -> bool:
        """Turn ``i`` is an agent's read-back the caller said yes to (see the module doc)."""
        t = self.turns[i]
        if t.caller or i + 1 >= len(self.turns) or not self.turns[i + 1].caller:
            return False
        answer = self.turns[i + 1].text
        if not is_yes(answer) or is_no(answer):
            return False
        last = (sentences(t.text) or [""])[-1]
        return not _ASKS_FOR.match(last)

    def caller_text(self) -> str:
        return "\n".join(t.text for t in self.turns if t.caller)

    def agent_text(self) -> str:
        return "\n".join(t.text for t in self.turns if not t.caller)
