"""The llm brain's prompt: the persona, the rules, what the call has established so far."""

from __future__ import annotations

import re
from typing import Any

from receptionist.tenants.model import Tenant

from .brain import BrainReply, DialogueState
from .chat import ChatMessage
from .grounded import say_date, say_time
from .knowledge import format_rupees
from .llm_guard import NOT_ENGLISH

#: The user message ends with this label and the draft on one line (the chat double echoes it).
DRAFT_LABEL = "DRAFT:"


def persona(tenant: Tenant) -> str:
    """The first paragraph of the tenant's assistant prompt (who speaks, in what tone), when it
    is English; else a plain line naming the business (the local voice speaks English only)."""
    first = tenant.assistant_prompt.strip().split("\n\n")[0]
    first = " ".join(first.split())
    if not first or NOT_ENGLISH.search(first) or len(first) > 600:
        return f"You are the friendly receptionist of {tenant.name}."
    return first


_RULES = """\
You are on a phone call and you speak English only.
The receptionist software has already decided what to say next: the DRAFT at the end of the \
user message. Your only job is to say the DRAFT again in warm, natural, brief spoken words.
Rules:
1. Use only the facts in the DRAFT and in the lists given. Never add a price, number, date, \
time, name, item, offer or promise.
2. Keep every number, price, date, time and name of the DRAFT exactly as written, digits as digits.
3. Ask exactly the question the DRAFT asks and no other. If the DRAFT asks nothing, ask nothing.
4. One to three short sentences. Plain text only: no lists, no quotes, no markdown, no emojis.
5. Answer with the words to say and nothing else."""

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_HHMM = re.compile(r"^\d{1,2}:\d{2}$")


def _say_value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return ", ".join(_say_value(v) for v in value)
    text = str(value)
    if _ISO_DATE.match(text):
        return say_date(text)
    if _HHMM.match(text):
        return say_time(text)
    if "T" in text and _ISO_DATE.match(text.partition("T")[0]):
        d, _, t = text.partition("T")
        return f"{say_date(d)} at {say_time(t)}"
    return text


def state_lines(state: DialogueState) -> list[str]:
    """What the call has established, in words (for the prompt and the guard's context)."""
    lines: list[str] = []
    if state.intent:
        lines.append(f"Call type: {state.intent.replace('_', ' ')}")
    details = [
        f"- {name.replace('_', ' ')}: {_say_value(value)}"
        for name, value in state.details.items()
        if value not in (None, "", [])
    ]
    if details:
        lines += ["Details collected so far:", *details]
    if state.pending_fields:
        lines.append(
            "Still missing: " + ", ".join(f.replace("_", " ") for f in state.pending_fields)
        )
    if state.total is not None:
        lines.append(f"Order total: {format_rupees(state.total)}")
    return lines


def build_messages(
    tenant: Tenant,
    state: DialogueState,
    draft: BrainReply,
    caller_text: str,
    *,
    history_turns: int = 6,
) -> list[ChatMessage]:
    """The chat request that asks for ``draft`` in natural words: the system message (persona
    and rules), then one user message with the recent conversation, the state, the facts of this
    reply, the caller's words and, on its last line, the draft.

    ``state.history`` already holds this turn (the caller's words, then the draft): those two
    entries are left out of "recent conversation". What changes least comes first, so a local
    server can reuse its prompt cache from one turn to the next.
    """
    system = f"{persona(tenant)}\n{_RULES}"
    lines: list[str] = []
    earlier = state.history[:-2][-history_turns:] if history_turns > 0 else []
    if earlier:
        lines.append("Recent conversation:")
        lines += [
            f"{'Caller' if who == 'caller' else 'Receptionist'}: {text}" for who, text in earlier
        ]
    lines += state_lines(state)
    if draft.facts:
        lines.append("Facts from the business's files for this reply:")
        lines += [f"- {f}" for f in draft.facts]
    lines.append(f"The caller just said: {' '.join(caller_text.split()) or '(nothing clear)'}")
    lines.append("Say the DRAFT for the phone, in one to three short sentences.")
    lines.append(f"{DRAFT_LABEL} {draft.text}")
    return [ChatMessage("system", system), ChatMessage("user", "\n".join(lines))]
