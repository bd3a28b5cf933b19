"""What the engine is told when a call is one we placed to call someone back (callbacks.py): the
stream URL's custom parameter ``callback=<token>`` names the callbacks row, whose first call's
summary, type and details are added to the engine's instructions. A token that names no row,
another tenant's, or a row placed through another Exotel account than the one the start frame
names (``account_sid``), is refused: it adds nothing, marks nothing answered (the call is then
an ordinary one of the tenant whose credentials the stream carried)."""

from __future__ import annotations

import json
import logging
import re
from typing import TYPE_CHECKING, Any

from receptionist.store.callbacks import callback_by_token, update_callback
from receptionist.store.calls import get_call

if TYPE_CHECKING:
    from receptionist.bridge.session import CallSession

PARAM = "callback"
TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")
MAX_SUMMARY_CHARS = 600
MAX_DETAILS_CHARS = 600


def context_text(first: dict[str, Any], caller: str) -> str:
    """The instructions' section about the first call (text from our own row, bounded)."""
    summary = str(first.get("summary") or "no summary was recorded")[:MAX_SUMMARY_CHARS]
    details = first.get("critical_call_details") or {}
    facts = json.dumps(details, ensure_ascii=False)[:MAX_DETAILS_CHARS] if details else "none"
    kind = first.get("call_type") or "unknown"
    when = first.get("started_at")
    day = when.strftime("%d %b %H:%M UTC") if when is not None else "earlier"
    return (
        "## This call is a call back\n"
        f"You are calling {caller or 'the caller'} back about their earlier call ({day}), which"
        f" ended before it was resolved. Its type: {kind}. Its summary: {summary}. Details noted"
        f" then: {facts}. Say who you are and that you are calling back about that call, then"
        " help them finish it.\n"
    )


async def load(session: CallSession, token: str, account_sid: str = "") -> str:
    """The context of the callback ``token`` names, for a stream whose start frame names the
    Exotel account ``account_sid``; "" when refused."""
    if not TOKEN.fullmatch(token):
        session.note("callback_bad_token", token[:20])
        return ""
    db = session.ctx.db
    try:
        row = await callback_by_token(db, token)
        if row is None or session.tenant is None or row.tenant != session.tenant.tenant_id:
            session.note("callback_unknown", token[:8])
            return ""
        if row.account_sid and row.account_sid != account_sid:
            session.note("callback_wrong_account", f"{account_sid[:40]!r} for {token[:8]}")
            return ""
        first = await get_call(db, row.call_sid)
        await update_callback(db, row.key, "answered", exotel_sid=session.call_sid)
    except Exception as exc:  # the database is away: the call goes on without the context
        session.note("callback_context_failed", f"{type(exc).__name__}"[:100])
        return ""
    session.note("callback", f"of {row.call_sid} ({row.reason})", level=logging.INFO)
    return context_text(first or {}, session.caller_number)
