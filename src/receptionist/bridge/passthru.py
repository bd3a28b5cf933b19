"""GET /exotel/passthru: the Connect applet's agent pass-through, which tells us which of the
tenant's numbers picked up the hand-off (Exotel's call record names no number when several
were rung, README "Hand-off to a person").

Exotel's support article 3000106308 ("How to get Answered or Ringing event in CRM"): with a URL
set in the Connect applet's pass-through ("Create popup") section, Exotel makes a GET to it for
the number being dialled at each step, with ``CallSid``, ``CallFrom``/``From``,
``CallTo``/``To``, ``Direction`` (``outbound-dial``), ``Created``, ``CurrentTime``,
``DialWhomNumber`` (the number dialled in this attempt), ``Status`` (``busy`` while it is
called, ``free`` once that attempt ends) and ``EventType`` (``Dial``, ``Ringing``,
``Answered``, ``Terminal``). The ``Answered`` event is an account feature Exotel switches on.
Only ``Answered`` changes anything here; the others are acknowledged and ignored.

Who may send it: as for the Connect URL (connect_url.py), Exotel signs nothing, so the URL
carries ``?key=<EXOTEL_CONNECT_SECRET>`` (constant-time compare; unset: every request refused),
the ``CallSid`` must be a call our bridge carried, and the number must be one our Connect URL
gave for that call. The time kept is ours at receipt: the article gives ``CurrentTime`` no
format or zone.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse

from receptionist.bridge.connect_url import CALL_SID, key_matches
from receptionist.notify.phones import InvalidPhone, normalise_phone
from receptionist.store.handoffs import get_handoff, record_handoff_answer
from receptionist.store.schema import utcnow

if TYPE_CHECKING:
    from receptionist.bridge.app import BridgeContext

log = logging.getLogger("receptionist.handoff")

EVENTS = frozenset({"dial", "ringing", "answered", "terminal"})
MAX_NUMBER = 32  # longer than any phone number as Exotel writes one


def _e164(raw: str) -> str | None:
    if len(raw) > MAX_NUMBER:
        return None
    try:
        return "+" + normalise_phone(raw, mobile_only=False)
    except InvalidPhone:
        return None


def _rang(handoff: dict[str, object] | None) -> set[str]:
    """The numbers our Connect URL gave Exotel for this call (its `ringing` outcome)."""
    if not handoff or handoff.get("outcome") != "ringing":
        return set()
    listed = str(handoff.get("outcome_detail") or "").split(", ")
    return {n for n in (_e164(x) for x in listed if x) if n is not None}


async def exotel_passthru(request: Request) -> JSONResponse:
    ctx: BridgeContext = request.app.state.ctx
    secret = ctx.settings.exotel_connect_secret
    if not key_matches(
        request.query_params.get("key"), secret.get_secret_value() if secret else None
    ):
        log.warning("pass-through: refused a request without the right key")
        return JSONResponse({"error": "forbidden"}, status_code=403)
    q = request.query_params
    sid = q.get("CallSid", "")
    event = q.get("EventType", "").strip().lower()  # Exotel's page writes " Dial"
    if not CALL_SID.fullmatch(sid) or event not in EVENTS:
        return JSONResponse({"error": "bad CallSid or EventType"}, status_code=400)
    if event != "answered":
        return JSONResponse({"ok": True, "recorded": False})
    number = _e164(q.get("DialWhomNumber", ""))
    if number is None:
        return JSONResponse({"error": "bad DialWhomNumber"}, status_code=400)
    handoff = await get_handoff(ctx.db, sid)
    if number not in _rang(handoff):  # unknown call, or a number we never gave for it
        log.warning("pass-through: call %s, a number it never rang, refused", sid)
        return JSONResponse({"error": "not a number rung for this call"}, status_code=403)
    done = await record_handoff_answer(ctx.db, sid, number, utcnow())
    if done == "recorded":
        log.info("call %s: the hand-off was answered", sid)
    return JSONResponse({"ok": True, "recorded": done == "recorded"})
