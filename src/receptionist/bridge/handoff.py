"""Passing a caller to a person: the agent says so, the call's row records who and why, and the
voicebot stream ends cleanly so the tenant's Exotel flow goes on to its Connect applet (whose
numbers come from GET /exotel/connect, bridge/connect_url.py).

Ending the stream is a normal WebSocket close (1000) once the "putting you through" line has
been heard: Exotel's Voicebot applet then ends and the flow takes its next applet (Exotel's
docs: "Bot → Connect (human)" with the Voicebot applet followed by a Connect applet). The
bridge never sends a `stop` itself: `stop` is an Exotel → bot event only.

Entry points: :func:`request_handoff` (the `handoff` tool calls it through
``CallSession.request_handoff``), and the engine's :class:`HandoffRequested` event (the local
brain, whose own reply already says the line).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from receptionist.notify.handoff_notice import queue_owner_notice
from receptionist.store.handoffs import record_handoff, record_handoff_outcome
from receptionist.store.schema import utcnow
from receptionist.telephony.exotel import Start

if TYPE_CHECKING:
    from receptionist.bridge.session import CallSession

log = logging.getLogger("receptionist.handoff")

END_REASON = "handoff"
PUTTING_THROUGH, OUTSIDE_HOURS, NOT_CONFIGURED, ALREADY = (
    "putting_through",
    "outside_hours",
    "not_configured",
    "already_ending",
)
MAX_REASON_CHARS = 120  # from a model's tool call: bounded before it reaches a row or a log
# The Voicebot applet in the Connect applet's "nobody answered" branch carries `?leg=message`:
# the same CallSid comes back to the agent, recorded as its own call (`<CallSid>M`).
LEG_PARAM, MESSAGE_LEG, MESSAGE_LEG_SUFFIX = "leg", "message", "M"
MESSAGE_LEG_INSTRUCTION = (
    "## The caller is back from a transfer\n"
    "They asked for a person and were being put through, but nobody answered. Say sorry that"
    " nobody could take the call, then take a message: their name, what it is about and when"
    " to call them back; say the team will call back.\n"
)


@dataclass(frozen=True, slots=True)
class HandoffResult:
    """What became of the request: ``status`` one of the constants above, ``say`` what the agent
    says (or said) to the caller, for a tool's response."""

    status: str
    say: str

    @property
    def ok(self) -> bool:
        return self.status == PUTTING_THROUGH


def message_leg(start: Start) -> tuple[Start, str | None]:
    """A stream that brings a caller back after an unanswered hand-off: the start as this
    stream's own call (``<CallSid>M``, so the first call's row stays as it is), and the first
    call's sid; any other stream: as it is, None."""
    if start.custom_parameters.get(LEG_PARAM) != MESSAGE_LEG:
        return start, None
    return replace(start, call_sid=start.call_sid + MESSAGE_LEG_SUFFIX), start.call_sid


async def came_back(session: CallSession, first_sid: str) -> None:
    """The caller came back unanswered: the first call's hand-off says so, and the owner is
    told (once per call, with the tenant's notice)."""
    tenant = session.tenant
    assert tenant is not None
    try:
        await record_handoff_outcome(session.ctx.db, first_sid, "no_answer")
        await queue_owner_notice(
            session.ctx.db,
            session.ctx.settings,
            tenant,
            first_sid,
            session.caller_number,
            "nobody answered the transfer; a message is being taken",
        )
    except Exception as exc:
        session.note("handoff_not_recorded", f"{type(exc).__name__}: {exc}"[:200])


def _bounded(text: str | None) -> str:
    return " ".join((text or "").split())[:MAX_REASON_CHARS]


async def request_handoff(
    session: CallSession,
    reason: str,
    who: str | None = None,
    *,
    speak: bool = True,
    now: datetime | None = None,
) -> HandoffResult:
    """Put the caller through to a person, if the tenant takes hand-offs now.

    ``speak``: say the tenant's "putting you through" line (False: the engine's turn being
    spoken already says it, as the local brain's does). Outside the hours (or with no
    `[handoff]`) the call goes on: the agent says it will take a message, the row records the
    attempt and the owner gets the tenant's notice."""
    reason, who = _bounded(reason) or "caller_asked", _bounded(who) or None
    tenant, engine = session.tenant, session.engine
    if tenant is None or engine is None:
        return HandoffResult(NOT_CONFIGURED, "")
    handoff = tenant.handoff
    language = tenant.primary_language
    if session.hangup_reason is not None:
        return HandoffResult(ALREADY, "")
    if handoff is None or not handoff.numbers:
        session.note("handoff_unavailable", "no [handoff] configured", level=logging.INFO)
        return HandoffResult(NOT_CONFIGURED, "")
    if not handoff.hours.is_open(now or utcnow()):
        say = handoff.unavailable_phrase(language)
        session.note("handoff_outside_hours", f"reason={reason} who={who or '-'}")
        session.in_background(_record_and_notify(session, who, reason))
        if speak:
            await engine.say(say, "handoff_unavailable")
        return HandoffResult(OUTSIDE_HOURS, say)
    say = handoff.phrase(language)
    session.note("handoff", f"reason={reason} who={who or '-'}", level=logging.INFO)
    session.in_background(_record(session, who, reason))
    session.end_after_turn(END_REASON)
    if speak:
        await engine.say(say, "handoff")
    return HandoffResult(PUTTING_THROUGH, say)


async def _record(
    session: CallSession, who: str | None, reason: str, outcome: str | None = None
) -> None:
    """Who and why on the call's row (after its first write), in the background: the audio
    pumps never wait for the database. An outage loses only this note: the call goes on, and
    its events still say it."""
    created = session.record.created
    try:
        if created is not None:
            await created
        db = session.ctx.db
        await record_handoff(db, session.call_sid, who=who, reason=reason)
        if outcome is not None:
            await record_handoff_outcome(db, session.call_sid, outcome)
    except Exception as exc:
        session.note("handoff_not_recorded", f"{type(exc).__name__}: {exc}"[:200])


async def _record_and_notify(session: CallSession, who: str | None, reason: str) -> None:
    await _record(session, who, reason, outcome=OUTSIDE_HOURS)
    await _notify_owner(session, reason)


async def _notify_owner(session: CallSession, reason: str) -> None:
    tenant = session.tenant
    assert tenant is not None
    try:
        await queue_owner_notice(
            session.ctx.db,
            session.ctx.settings,
            tenant,
            session.call_sid,
            session.caller_number,
            f"wanted a person outside hours ({reason})",
        )
    except Exception as exc:
        session.note("handoff_notice_failed", f"{type(exc).__name__}: {exc}"[:200])
