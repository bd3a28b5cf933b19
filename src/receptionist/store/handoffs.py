"""A call's hand-off to a person, on its row (`call_details.handoff`): who and why when the agent
passes the caller on, then what came of it (Exotel's Connect applet asked for the numbers,
outside the hours, ...)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from receptionist.store.db import Database
from receptionist.store.schema import call_details, utcnow

__all__ = [
    "get_handoff",
    "record_handoff",
    "record_handoff_answer",
    "record_handoff_leg",
    "record_handoff_outcome",
]

MAX_TEXT = 200  # who / why / outcome come from a model or a request: bounded on the row


async def record_handoff(db: Database, call_sid: str, *, who: str | None, reason: str) -> bool:
    """Note on the call's row that it was handed off; False when there is no such row."""
    value = {
        "who": (who or "")[:MAX_TEXT] or None,
        "reason": reason[:MAX_TEXT],
        "at": utcnow().isoformat(),
    }
    c = call_details.c
    async with db.begin() as conn:
        result = await conn.execute(
            sa.update(call_details).where(c.call_sid == call_sid).values(handoff=value)
        )
    return bool(result.rowcount)


async def get_handoff(db: Database, call_sid: str) -> dict[str, Any] | None:
    c = call_details.c
    async with db.session() as conn:
        row = (await conn.execute(sa.select(c.handoff).where(c.call_sid == call_sid))).first()
    return None if row is None else row.handoff


async def record_handoff_outcome(
    db: Database, call_sid: str, outcome: str, detail: str = ""
) -> bool:
    """Add what came of the hand-off (kept with who and why). A call with no hand-off noted yet
    (Exotel's request came first, or the row is another process's still) gets one made of the
    outcome alone. False when the call is unknown."""
    c = call_details.c
    async with db.begin() as conn:
        row = (await conn.execute(sa.select(c.handoff).where(c.call_sid == call_sid))).first()
        if row is None:
            return False
        value = dict(row.handoff or {"who": None, "reason": "connect_applet"})
        value["outcome"] = outcome[:MAX_TEXT]
        value["outcome_detail"] = detail[:MAX_TEXT] or None
        value["outcome_at"] = utcnow().isoformat()
        await conn.execute(
            sa.update(call_details).where(c.call_sid == call_sid).values(handoff=value)
        )
    return True


async def record_handoff_leg(
    conn: AsyncConnection,
    call_sid: str,
    *,
    status: str | None,
    talk_s: int | None,
    number: str | None,
) -> bool:
    """What Exotel's record says of the Connect applet's leg, on the hand-off (in the caller's
    transaction): its status (``completed``: the person answered), how long the caller and the
    person talked, and who answered when that is known: the agent pass-through's ``Answered``
    event named them (record_handoff_answer), or only one number was rung (Exotel's record
    names no number). False when the call has no hand-off."""
    c = call_details.c
    row = (await conn.execute(sa.select(c.handoff).where(c.call_sid == call_sid))).first()
    if row is None or not row.handoff:
        return False
    value = dict(row.handoff)
    # several numbers rung: Exotel's record names none, the pass-through's answer does
    heard = (value.get("answered") or {}).get("number") or number
    value["person_leg"] = {
        "status": (status or "")[:40] or None,
        "talk_s": talk_s,
        "answered_by": heard if status == "completed" else None,
    }
    await conn.execute(sa.update(call_details).where(c.call_sid == call_sid).values(handoff=value))
    return True


async def record_handoff_answer(db: Database, call_sid: str, number: str, at: datetime) -> str:
    """Who picked up the Connect applet's call and when (Exotel's agent pass-through, its
    ``Answered`` event), kept on the hand-off as ``answered``. Only one person can answer a
    call: the first answer stays, a repeat changes nothing (Exotel may send an event again).
    Returns ``recorded``, ``already`` or ``unknown`` (no such call)."""
    c = call_details.c
    async with db.begin() as conn:
        row = (await conn.execute(sa.select(c.handoff).where(c.call_sid == call_sid))).first()
        if row is None:
            return "unknown"
        value = dict(row.handoff or {"who": None, "reason": "connect_applet"})
        if value.get("answered"):
            return "already"
        value["answered"] = {"number": number[:MAX_TEXT], "at": at.isoformat()}
        await conn.execute(
            sa.update(call_details).where(c.call_sid == call_sid).values(handoff=value)
        )
    return "recorded"
