"""POST /exotel/status: Exotel's StatusCallback for the calls we place (AI callbacks,
callbacks.py), so a number that does not answer is recorded even if the process that dialled
is gone. Exotel POSTs ``CallSid``, ``Status`` (completed, failed, busy, no-answer),
``DateUpdated`` and ``RecordingUrl`` when the call ends, and retries twice on anything but a
2xx within 15 s (developer.exotel.com, voice v1 "StatusCallback"; the body is read as a form,
or as JSON when it says so).

Exotel signs nothing: the URL we hand it carries ``?key=<EXOTEL_CONNECT_SECRET>``, compared in
constant time; a request without it changes nothing (403).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse

from receptionist.bridge.connect_url import CALL_SID, key_matches
from receptionist.notify.webhook import BodyTooLarge, read_bounded
from receptionist.store.callbacks import settle_by_exotel_sid

if TYPE_CHECKING:
    from receptionist.bridge.app import BridgeContext

log = logging.getLogger("receptionist.callbacks")

MAX_BODY = 8192
# Exotel's terminal status -> the callback's
OUTCOMES = {"no-answer": "no_answer", "busy": "no_answer", "failed": "failed"}
STATUSES = frozenset({*OUTCOMES, "completed"})


def _fields(body: bytes, content_type: str) -> dict[str, Any]:
    if "json" in content_type:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            return {}
        return doc if isinstance(doc, dict) else {}
    return dict(parse_qsl(body.decode("utf-8", "replace")))


async def exotel_status(request: Request) -> JSONResponse:
    ctx: BridgeContext = request.app.state.ctx
    secret = ctx.settings.exotel_connect_secret
    if not key_matches(
        request.query_params.get("key"), secret.get_secret_value() if secret else None
    ):
        return JSONResponse({"error": "forbidden"}, status_code=403)
    try:
        body = await read_bounded(request, MAX_BODY)
    except BodyTooLarge:
        return JSONResponse({"error": "too large"}, status_code=413)
    fields = _fields(body, request.headers.get("content-type", ""))
    sid, status = str(fields.get("CallSid", "")), str(fields.get("Status", "")).lower()
    if not CALL_SID.fullmatch(sid) or status not in STATUSES:
        return JSONResponse({"error": "bad CallSid or Status"}, status_code=400)
    if status == "completed":  # answered: the bridge marked it when the stream started
        return JSONResponse({"ok": True})
    known = await settle_by_exotel_sid(ctx.db, sid, OUTCOMES[status], f"exotel: {status}")
    if known:
        log.info("callback call %s: %s (Exotel's status callback)", sid, status)
    return JSONResponse({"ok": True, "known": known})  # 200 either way: nothing to retry
