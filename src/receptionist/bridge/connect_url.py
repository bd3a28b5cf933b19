"""GET /exotel/connect: the dynamic URL of the tenant's Exotel Connect applet ("Programmable
Connect"), the applet after the Voicebot applet in the flow (README, "Hand-off to a person").

Exotel calls it with the call's details as query parameters (``CallSid``, ``CallFrom``,
``CallTo``, ``Direction``, ...; header ``Exotel-Version: 1.0``) and reads a JSON answer:
``destination.numbers`` (rung in order: ``parallel_ringing.activate`` false),
``outgoing_phone_number``, ``record``, ``recording_channels``, ``max_ringing_duration``,
``max_conversation_duration``, ``music_on_hold``, ``start_call_playback`` (the whisper, played
to the callee) and ``fetch_after_attempt`` (false: the list is final). Source: Exotel support
article 3000096873 ("Programmable Connect: Working with Connect Applet (Dynamic URL)").

Who may ask: Exotel signs nothing and sends no account sid here, so the URL configured in the
applet carries a secret, ``?key=<EXOTEL_CONNECT_SECRET>``, compared in constant time; and the
``CallSid`` must be a call our bridge recorded (the tenant comes from that row, never from the
request). Anything else is refused (403) and answers no numbers. Without the setting the route
refuses every request (fail closed).

Outside the tenant's hours, or with no `[handoff]`, the answer names no numbers: Exotel takes
the applet's "nobody answered" branch (a Voicebot applet with `?leg=message` brings the caller
back to the agent, bridge/handoff.py), and the owner gets the tenant's notice.
"""

from __future__ import annotations

import hmac
import logging
import re
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from receptionist.notify.handoff_notice import queue_owner_notice
from receptionist.store.calls import get_call
from receptionist.store.handoffs import record_handoff_outcome
from receptionist.store.schema import utcnow
from receptionist.tenants.handoff import Handoff
from receptionist.tenants.repository import TenantError

if TYPE_CHECKING:
    from receptionist.bridge.app import BridgeContext

log = logging.getLogger("receptionist.handoff")

CALL_SID = re.compile(r"[A-Za-z0-9]{1,128}")  # an Exotel call sid, as we accept one
_NUMBER = re.compile(r"\+?\d{3,16}")
RECORDING_CHANNELS = "dual"  # caller and callee on separate tracks: clearer to review


def connect_answer(handoff: Handoff, call_to: str) -> dict[str, Any]:
    """What the Connect applet reads: the tenant's numbers in order, and how to ring them."""
    answer: dict[str, Any] = {
        "fetch_after_attempt": False,
        "destination": {"numbers": list(handoff.numbers)},
        "outgoing_phone_number": handoff.caller_id or call_to,
        "record": handoff.record,
        "recording_channels": RECORDING_CHANNELS,
        "max_ringing_duration": handoff.ring_seconds,
        "max_conversation_duration": handoff.max_minutes * 60,
        "music_on_hold": {"type": "operator_tone"},
        "parallel_ringing": {"activate": False, "max_parallel_attempts": 1},
    }
    if handoff.whisper:
        answer["start_call_playback"] = {
            "playback_to": "callee",
            "type": "text",
            "value": handoff.whisper,
        }
    return answer


NOBODY: dict[str, Any] = {"fetch_after_attempt": False, "destination": {"numbers": []}}


def _refused(status: int, why: str) -> JSONResponse:
    return JSONResponse({**NOBODY, "error": why}, status_code=status)


def key_matches(given: str | None, expected: str | None) -> bool:
    if not expected or not given:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


async def exotel_connect(request: Request) -> JSONResponse:
    ctx: BridgeContext = request.app.state.ctx
    secret = ctx.settings.exotel_connect_secret
    expected = secret.get_secret_value() if secret is not None else None
    if not key_matches(request.query_params.get("key"), expected):
        log.warning("connect URL: refused a request without the right key")
        return _refused(403, "forbidden")
    call_sid = request.query_params.get("CallSid", "")
    call_to = request.query_params.get("CallTo", "")
    if not CALL_SID.fullmatch(call_sid) or (call_to and not _NUMBER.fullmatch(call_to)):
        return _refused(400, "bad CallSid or CallTo")
    row = await get_call(ctx.db, call_sid)
    if row is None:  # a call our bridge never carried: nothing to put through
        log.warning("connect URL: unknown call %s refused", call_sid)
        return _refused(403, "unknown call")
    try:
        tenant = ctx.tenants.get(str(row.get("tenant") or ""))
    except TenantError:
        return JSONResponse(NOBODY)
    handoff = tenant.handoff
    if handoff is None or not handoff.numbers:
        await record_handoff_outcome(ctx.db, call_sid, "not_configured")
        return JSONResponse(NOBODY)
    if not handoff.hours.is_open(utcnow()):
        await record_handoff_outcome(ctx.db, call_sid, "outside_hours")
        why = str((row.get("handoff") or {}).get("reason") or "wanted a person")
        await queue_owner_notice(
            ctx.db,
            ctx.settings,
            tenant,
            call_sid,
            str(row.get("from_number") or ""),
            f"outside hours: {why}",
        )
        return JSONResponse(NOBODY)
    await record_handoff_outcome(ctx.db, call_sid, "ringing", ", ".join(handoff.numbers)[:200])
    log.info("call %s: Connect applet rings %d number(s)", call_sid, len(handoff.numbers))
    return JSONResponse(connect_answer(handoff, call_to or str(row.get("to_number") or "")))
