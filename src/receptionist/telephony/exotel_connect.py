"""Exotel's connect API, to call a caller back with our bot on the line (AgentStream "Connect
Voice AI"): ``POST {base}/v1/Accounts/{account_sid}/Calls/connect.json`` with HTTP Basic auth,
form fields ``From`` (the number to dial), ``CallerId`` (the ExoPhone the caller sees),
``StreamUrl`` (our bridge's ws(s) URL, at most 600 characters) and ``StreamType=bidirectional``;
optional ``TimeOut`` (ring seconds), ``TimeLimit`` (at most 14400), ``CustomField`` (at most 128
characters), ``StatusCallback``, ``CallType=trans``. On answer Exotel opens the WebSocket to
``StreamUrl`` and speaks the usual Voicebot protocol (connected, start, media ...).

Sources: developer.exotel.com/docs/agentstream/developer-guide ("Connect Voice AI": lists the
fields in lower case; Exotel's form fields are read without regard to case, its other connect
pages spell them From/CallerId/StreamUrl) and the voice v1 connect reference (the answer is a
``{"Call": {...}}`` record, ``Sid`` first; ``Status`` queued or in-progress).
"""

from __future__ import annotations

import re

import httpx

from receptionist.telephony.exotel_api import (
    ExotelApiConfig,
    ExotelApiError,
    ExotelCallDetails,
    _status_error,
    parse_call_details,
)

__all__ = ["MAX_CUSTOM_FIELD", "MAX_STREAM_URL", "connect_url", "dial_to_stream"]

MAX_STREAM_URL = 600
MAX_CUSTOM_FIELD = 128
MAX_TIME_LIMIT_S = 14400
_ACCOUNT_SID_RE = re.compile(r"[A-Za-z0-9_-]{1,128}")
_NUMBER_RE = re.compile(r"\+?\d{6,15}")


def connect_url(cfg: ExotelApiConfig) -> str:
    if not _ACCOUNT_SID_RE.fullmatch(cfg.account_sid):
        raise ExotelApiError("bad_request", f"invalid account sid {cfg.account_sid!r:.60}")
    return f"{cfg.root}/v1/Accounts/{cfg.account_sid}/Calls/connect.json"


async def dial_to_stream(
    client: httpx.AsyncClient,
    cfg: ExotelApiConfig,
    *,
    to: str,
    caller_id: str,
    stream_url: str,
    ring_s: int = 30,
    time_limit_s: int = 900,
    custom_field: str = "",
    status_callback: str | None = None,
) -> ExotelCallDetails:
    """Ask Exotel to dial ``to`` and stream the answered call to ``stream_url``. Returns the new
    call's record (its ``sid``); raises :class:`ExotelApiError` (see its ``kind``)."""
    if not _NUMBER_RE.fullmatch(to) or not _NUMBER_RE.fullmatch(caller_id):
        raise ExotelApiError("bad_request", "From and CallerId must be phone numbers")
    if not stream_url.startswith(("ws://", "wss://")) or len(stream_url) > MAX_STREAM_URL:
        raise ExotelApiError("bad_request", f"StreamUrl must be ws(s):// and <= {MAX_STREAM_URL}")
    form = {
        "From": to,
        "CallerId": caller_id,
        "StreamUrl": stream_url,
        "StreamType": "bidirectional",
        "CallType": "trans",
        "TimeOut": str(ring_s),
        "TimeLimit": str(min(time_limit_s, MAX_TIME_LIMIT_S)),
    }
    if custom_field:
        form["CustomField"] = custom_field[:MAX_CUSTOM_FIELD]
    if status_callback:
        form["StatusCallback"] = status_callback
    try:
        response = await client.post(
            connect_url(cfg),
            data=form,
            auth=httpx.BasicAuth(cfg.api_key, cfg.api_token),
            headers={"Accept": "application/json"},
            timeout=cfg.timeout_s,
            follow_redirects=False,
        )
    except httpx.TimeoutException as exc:
        raise ExotelApiError("timeout", type(exc).__name__) from None
    except httpx.TransportError as exc:
        raise ExotelApiError("network", type(exc).__name__) from None
    if response.status_code != 200:
        raise _status_error(response)
    try:
        return parse_call_details(response.content, tz=cfg.time_zone)
    except ExotelApiError as exc:
        raise ExotelApiError("bad_response", exc.detail, status_code=200) from None
