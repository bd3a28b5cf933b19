"""AI callbacks: the receptionist calls back a caller whose call failed, dropped or ended
unresolved. Exotel's connect API dials the caller with a stream URL to our bridge
(telephony/exotel_connect.py), carrying ``callback=<token>``; the bridge finds this row by the
token and gives the engine the first call's summary and details (bridge/callback_context.py).

The rules, each refused with its own ``reason`` before anything is dialled:

* the tenant has `[callbacks]` (its ExoPhone and hours);
* the caller's number is known (a withheld number cannot be called);
* now is inside the tenant's hours;
* the number has had fewer than `per_number_per_day` callbacks in the last 24 hours;
* this call was never called back for this reason: the unique key ``callback:<sid>:<reason>``
  (store/callbacks.py) is taken before dialling, so two requests at once dial once, and a
  number that does not answer is recorded (``no_answer``), never retried for that reason.

Used by the CLI (`receptionist calls callback`), the API and the dashboard (POST
/api/v1/calls/{sid}/callback) and the per-call-type rule (`callback = true`, :func:`rule_reason`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx

from receptionist.config import Settings
from receptionist.notify.phones import InvalidPhone, normalise_phone
from receptionist.store.callbacks import (
    callback_key,
    claim_callback,
    recent_callbacks_to,
    update_callback,
)
from receptionist.store.calls import get_call
from receptionist.store.db import Database
from receptionist.store.schema import utcnow
from receptionist.telephony.exotel_api import (
    ExotelApiConfig,
    ExotelApiError,
    api_config,
    fetch_call_details,
)
from receptionist.telephony.exotel_connect import dial_to_stream
from receptionist.tenants.model import Tenant
from receptionist.tenants.repository import TenantError, Tenants

__all__ = [
    "CallbackDeps",
    "CallbackRefused",
    "Placed",
    "callback_deps",
    "place_callback",
    "rule_reason",
    "settle_callback",
]

log = logging.getLogger("receptionist.callbacks")

REASONS = ("requested", "failed", "dropped", "unresolved")
# Exotel statuses of a dialled call that never reached our bridge
_NOT_ANSWERED = {
    "no-answer": "no_answer",
    "busy": "no_answer",
    "failed": "failed",
    "canceled": "failed",
}


class CallbackRefused(Exception):
    """Not dialled; ``reason`` is a short stable word (not_found, not_configured, withheld,
    outside_hours, rate_limited, already, bad_reason, no_exotel)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class Placed:
    key: str
    exotel_sid: str
    to_number: str


@dataclass
class CallbackDeps:
    db: Database
    tenants: Tenants
    exotel: ExotelApiConfig | None
    client: httpx.AsyncClient
    #: our bridge's public WebSocket base, e.g. wss://rx.example.com/exotel (the tenant is added)
    stream_base: str
    now: Callable[[], datetime] = utcnow
    #: our POST /exotel/status with its key, for Exotel to say how each call ended (None: we
    #: only poll the call's record, settle_callback)
    status_callback: str | None = None


def callback_deps(settings: Settings, db: Database, tenants: Tenants) -> CallbackDeps | None:
    """The callbacks' dependencies from the settings; None (callbacks refused as `no_exotel`)
    without Exotel's API credentials or CALLBACK_STREAM_URL."""
    config = api_config(settings)
    if config is None or not settings.callback_stream_url:
        return None
    status = None
    secret = settings.exotel_connect_secret
    if settings.exotel_status_callback_url and secret is not None:
        key = quote(secret.get_secret_value(), safe="")
        status = f"{settings.exotel_status_callback_url}?key={key}"
    return CallbackDeps(
        db,
        tenants,
        config,
        httpx.AsyncClient(),
        settings.callback_stream_url,
        status_callback=status,
    )


_settling: set[asyncio.Task[str]] = set()  # follow-ups in flight (a reference keeps each alive)


def follow_up(deps: CallbackDeps, placed: Placed) -> asyncio.Task[str]:
    """Settle a placed callback in the background (the API answers at once)."""
    task = asyncio.create_task(settle_callback(deps, placed), name=f"callback-{placed.exotel_sid}")
    _settling.add(task)
    task.add_done_callback(_settling.discard)
    return task


def rule_reason(tenant: Tenant, row: dict[str, Any]) -> str | None:
    """The reason the per-call-type rule (`callback = true`) calls this call back, or None: a
    failed call; one the caller's side ended before its required details were noted
    (dropped); one whose analysis left required details missing (unresolved)."""
    call_type = tenant.call_type(row.get("call_type") or "")
    if call_type is None or not call_type.callback:
        return None
    if row.get("status") == "failed":
        return "failed"
    details = row.get("critical_call_details") or {}
    missing = [f for f in call_type.required_fields if details.get(f) in (None, "", [])]
    if not missing:
        return None
    ended_by_caller = str(row.get("end_reason") or "").startswith(("stop", "caller_"))
    return "dropped" if ended_by_caller else "unresolved"


async def place_callback(
    deps: CallbackDeps, call_sid: str, reason: str = "requested", *, tenant_id: str | None = None
) -> Placed:
    """Dial the caller of ``call_sid`` back (see the module doc for the rules). ``tenant_id``:
    only a call of this tenant (the API's scope). Raises :class:`CallbackRefused`, or
    :class:`ExotelApiError` when Exotel refused (the row then says ``failed``)."""
    if reason not in REASONS:
        raise CallbackRefused("bad_reason", f"reason must be one of {', '.join(REASONS)}")
    row = await get_call(deps.db, call_sid)
    if row is None or (tenant_id is not None and row.get("tenant") != tenant_id):
        raise CallbackRefused("not_found", f"no call {call_sid!r}")
    try:
        tenant = deps.tenants.get(str(row.get("tenant") or ""))
    except TenantError:
        raise CallbackRefused("not_configured", "the call's business is not available") from None
    rules = tenant.callbacks
    if rules is None:
        raise CallbackRefused("not_configured", f"{tenant.tenant_id} has no [callbacks]")
    if deps.exotel is None:
        raise CallbackRefused("no_exotel", "EXOTEL_ACCOUNT_SID/API_KEY/API_TOKEN are not set")
    try:
        number = "+" + normalise_phone(row.get("from_number"), mobile_only=False)
    except InvalidPhone as exc:
        reason_word = "withheld" if exc.withheld else "bad_number"
        raise CallbackRefused(reason_word, f"cannot call back: {exc.reason}") from None
    now = deps.now()
    if not rules.hours.is_open(now):
        raise CallbackRefused("outside_hours", "outside the business's hours: try again then")
    recent = await recent_callbacks_to(deps.db, tenant.tenant_id, number, now - timedelta(days=1))
    if recent >= rules.per_number_per_day:
        raise CallbackRefused(
            "rate_limited", f"{number} was called back {recent} time(s) in the last 24 hours"
        )
    token = secrets.token_urlsafe(18)
    claimed = await claim_callback(
        deps.db,
        tenant=tenant.tenant_id,
        call_sid=call_sid,
        reason=reason,
        to_number=number,
        token=token,
    )
    key = callback_key(call_sid, reason)
    if not claimed:
        raise CallbackRefused("already", f"call {call_sid} was already called back ({reason})")
    stream_url = f"{deps.stream_base.rstrip('/')}/{quote(tenant.tenant_id)}?callback={token}"
    try:
        new = await dial_to_stream(
            deps.client,
            deps.exotel,
            to=number,
            caller_id=rules.caller_id,
            stream_url=stream_url,
            ring_s=rules.ring_seconds,
            custom_field=key[:128],
            status_callback=deps.status_callback,
        )
    except ExotelApiError as exc:
        await update_callback(deps.db, key, "failed", error=str(exc))
        log.warning("callback %s: Exotel refused: %s", key, exc)
        raise
    await update_callback(deps.db, key, "placed", exotel_sid=new.sid)
    log.info("callback %s placed as %s", key, new.sid)
    return Placed(key, new.sid, number)


async def settle_callback(
    deps: CallbackDeps,
    placed: Placed,
    *,
    tries: int = 8,
    first_delay_s: float = 5.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> str:
    """Follow the dialled call until Exotel says how it ended and record it: ``no_answer``
    (rang out or busy), ``failed``, or ``answered`` (the bridge marked it when the stream
    started). Bounded: after ``tries`` polls (back-off from ``first_delay_s``) it stays as it
    is (``placed``): nothing is ever re-dialled from here."""
    assert deps.exotel is not None
    delay = first_delay_s
    for _ in range(tries):
        await sleep(delay)
        delay = min(delay * 2, 60.0)
        try:
            details = await fetch_call_details(deps.client, deps.exotel, placed.exotel_sid)
        except ExotelApiError as exc:
            if not exc.retryable:
                return "placed"
            continue
        if details.status in _NOT_ANSWERED:
            status = _NOT_ANSWERED[details.status]
            await update_callback(deps.db, placed.key, status, error=f"exotel: {details.status}")
            log.info("callback %s: %s", placed.key, status)
            return status
        if details.is_terminal:
            return "answered"
    return "placed"
