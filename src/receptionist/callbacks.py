"""AI callbacks: the receptionist calls back a caller whose call failed, dropped or ended
unresolved. Exotel's connect API dials the caller with a stream URL to our bridge
(telephony/exotel_connect.py), carrying ``callback=<token>``; the bridge finds this row by the
token and gives the engine the first call's summary and details (bridge/callback_context.py).

The rules, each refused with its own ``reason`` before anything is dialled:

* the tenant has `[callbacks]` (its ExoPhone and hours);
* the caller's number is known (a withheld number cannot be called);
* now is inside the tenant's hours (a request is refused saying when they open; the call-type
  rule, and a request "when open", instead schedule the callback for that opening, and the
  worker dials it then: :func:`dial_due`);
* the number has had fewer than `per_number_per_day` callbacks in the last 24 hours, counted
  in the same transaction that claims the row (store/callbacks.py), so requests at once never
  pass the limit together;
* this call was never called back for this reason: the unique key ``callback:<sid>:<reason>``
  (store/callbacks.py) is taken before dialling, so two requests at once dial once, and a
  number that does not answer is recorded (``no_answer``), never retried for that reason.

A tenant with its own Exotel account (exotel_accounts.py) is dialled through it, and its
stream URL carries its own key and token (what the bridge checks on its streams); the row
keeps the account's sid, and the bridge takes the callback's context only for a stream from
that account (bridge/callback_context.py).

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
from receptionist.exotel_accounts import rest_config, stream_credentials, with_credentials
from receptionist.notify.phones import InvalidPhone, normalise_phone
from receptionist.store.callbacks import (
    Callback,
    callback_key,
    claim_callback,
    due_callbacks,
    reschedule_callback,
    start_scheduled,
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
from receptionist.tenants.hours import Hours
from receptionist.tenants.model import Tenant
from receptionist.tenants.repository import TenantError, Tenants

__all__ = [
    "CallbackDeps",
    "CallbackRefused",
    "Placed",
    "Scheduled",
    "aclose_callbacks",
    "callback_deps",
    "dial_due",
    "place_callback",
    "rule_reason",
    "schedule_callback",
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

    def __init__(self, reason: str, message: str, opens_at: datetime | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.opens_at = opens_at  # outside_hours: the hours' next opening (None: never)


@dataclass(frozen=True, slots=True)
class Placed:
    key: str
    exotel_sid: str
    to_number: str
    #: the account it was dialled through (its record is read there); None: deps.exotel
    account: ExotelApiConfig | None = None


@dataclass(frozen=True, slots=True)
class Scheduled:
    """A callback outside the hours (a rule's, or one asked for "when open"): the worker dials
    it at ``due_at``."""

    key: str
    to_number: str
    due_at: datetime


@dataclass
class CallbackDeps:
    db: Database
    tenants: Tenants
    #: the server's Exotel account (None: none; a tenant may still have its own, `accounts`)
    exotel: ExotelApiConfig | None
    client: httpx.AsyncClient
    #: our bridge's public WebSocket base, e.g. wss://rx.example.com/exotel (the tenant is added)
    stream_base: str
    now: Callable[[], datetime] = utcnow
    #: our POST /exotel/status with its key, for Exotel to say how each call ended (None: we
    #: only poll the call's record, settle_callback)
    status_callback: str | None = None
    #: the account a tenant's callbacks are dialled through (None: `exotel` for every tenant)
    accounts: Callable[[Tenant], ExotelApiConfig | None] | None = None
    #: the Basic auth the bridge checks on a tenant's streams, put in its stream URL's user
    #: info (None: the stream URL is used as it is)
    stream_auth: Callable[[Tenant], tuple[str, str] | None] | None = None

    def account_for(self, tenant: Tenant) -> ExotelApiConfig | None:
        return self.accounts(tenant) if self.accounts is not None else self.exotel

    def stream_url(self, tenant: Tenant, token: str) -> str:
        url = f"{self.stream_base.rstrip('/')}/{quote(tenant.tenant_id)}?callback={token}"
        if self.stream_auth is not None:
            url = with_credentials(url, self.stream_auth(tenant))
        return url


def callback_deps(settings: Settings, db: Database, tenants: Tenants) -> CallbackDeps | None:
    """The callbacks' dependencies from the settings; None without CALLBACK_STREAM_URL. A
    tenant with no Exotel account (neither its own nor the server's) is refused `no_exotel`.
    Its HTTP client is the caller's to close (:func:`aclose_callbacks`)."""
    config = api_config(settings)
    if not settings.callback_stream_url:
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
        accounts=lambda tenant: rest_config(settings, tenant),
        stream_auth=lambda tenant: stream_credentials(settings, tenant),
    )


async def aclose_callbacks(deps: CallbackDeps | None) -> None:
    """Stop this deps' follow-ups still polling (Exotel's status callback, or the next `serve`,
    settles them: the rows stay `placed`) and close its HTTP client."""
    if deps is None:
        return
    mine = [t for t in _settling if _owners.get(t) is deps]
    for task in mine:
        task.cancel()
    await asyncio.gather(*mine, return_exceptions=True)
    await deps.client.aclose()


_settling: set[asyncio.Task[str]] = set()  # follow-ups in flight (a reference keeps each alive)
_owners: dict[asyncio.Task[str], CallbackDeps] = {}  # whose client each follow-up uses


def _done(task: asyncio.Task[str]) -> None:
    _settling.discard(task)
    _owners.pop(task, None)


def follow_up(deps: CallbackDeps, placed: Placed) -> asyncio.Task[str]:
    """Settle a placed callback in the background (the API answers at once)."""
    task = asyncio.create_task(settle_callback(deps, placed), name=f"callback-{placed.exotel_sid}")
    _settling.add(task)
    _owners[task] = deps
    task.add_done_callback(_done)
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


def opening_words(hours: Hours, now: datetime) -> str:
    """When the hours open next, for a person: "Tue 08 Dec 10:00 (Asia/Kolkata)"."""
    opening = hours.next_open(now)
    if opening is None:
        return "the business's hours never open"
    return f"they open {opening.strftime('%a %d %b %H:%M')} ({hours.timezone})"


async def place_callback(
    deps: CallbackDeps, call_sid: str, reason: str = "requested", *, tenant_id: str | None = None
) -> Placed:
    """Dial the caller of ``call_sid`` back now (see the module doc for the rules); outside the
    hours it is refused, saying when they open. ``tenant_id``: only a call of this tenant (the
    API's scope). Raises :class:`CallbackRefused`, or :class:`ExotelApiError` when Exotel
    refused (the row then says ``failed``)."""
    placed = await _place(deps, call_sid, reason, tenant_id=tenant_id, schedule=False)
    assert isinstance(placed, Placed)
    return placed


async def schedule_callback(
    deps: CallbackDeps, call_sid: str, reason: str, *, tenant_id: str | None = None
) -> Placed | Scheduled:
    """Dialled now inside the hours, else claimed `scheduled` for their next opening (the
    worker dials it then, :func:`dial_due`): the call-type rule's callback, and one a person
    asks for "when open" (CLI `--when-open`, the API's `{"when": "next_open"}`, the
    dashboard's button outside the hours). Every other rule holds as for
    :func:`place_callback`: once per reason, the daily limit, no withheld number."""
    return await _place(deps, call_sid, reason, tenant_id=tenant_id, schedule=True)


async def _place(
    deps: CallbackDeps, call_sid: str, reason: str, *, tenant_id: str | None, schedule: bool
) -> Placed | Scheduled:
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
    account = deps.account_for(tenant)
    if account is None:
        raise CallbackRefused(
            "no_exotel", "no Exotel account: EXOTEL_ACCOUNT_SID/API_KEY/API_TOKEN (or the"
            " tenant's [exotel] account_sid and its key and token) are not set",
        )  # fmt: skip
    try:
        number = "+" + normalise_phone(row.get("from_number"), mobile_only=False)
    except InvalidPhone as exc:
        reason_word = "withheld" if exc.withheld else "bad_number"
        raise CallbackRefused(reason_word, f"cannot call back: {exc.reason}") from None
    now = deps.now()
    due_at: datetime | None = None
    if not rules.hours.is_open(now):
        due_at = rules.hours.next_open(now) if schedule else None
        if due_at is None:
            raise CallbackRefused(
                "outside_hours",
                f"outside the business's hours: {opening_words(rules.hours, now)}",
                rules.hours.next_open(now),
            )
    token = secrets.token_urlsafe(18)
    key = callback_key(call_sid, reason)
    # due: counted against the day it is dialled; now: the last 24 hours
    since = (due_at or now) - timedelta(days=1)
    claimed = await claim_callback(
        deps.db,
        tenant=tenant.tenant_id,
        call_sid=call_sid,
        reason=reason,
        to_number=number,
        token=token,
        limit=rules.per_number_per_day,
        since=since,
        account_sid=account.account_sid,
        due_at=due_at,
    )
    if claimed == "already":
        raise CallbackRefused("already", f"call {call_sid} was already called back ({reason})")
    if claimed == "rate_limited":
        raise CallbackRefused(
            "rate_limited",
            f"{number} was called back {rules.per_number_per_day} time(s) in 24 hours",
        )
    if due_at is not None:
        log.info("callback %s scheduled for %s", key, due_at.isoformat())
        return Scheduled(key, number, due_at)
    return await _dial(deps, tenant, account, key, number, token)


async def _dial(
    deps: CallbackDeps, tenant: Tenant, account: ExotelApiConfig, key: str, number: str, token: str
) -> Placed:
    """Dial a claimed (`placing`) callback; the row then says placed or failed."""
    rules = tenant.callbacks
    assert rules is not None
    try:
        new = await dial_to_stream(
            deps.client,
            account,
            to=number,
            caller_id=rules.caller_id,
            stream_url=deps.stream_url(tenant, token),
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
    return Placed(key, new.sid, number, account)


async def dial_due(deps: CallbackDeps, *, follow: bool = True) -> list[Placed]:
    """Dial the scheduled callbacks whose time has come (the worker calls this): each is
    claimed `placing` in a transaction that counts the number's daily limit again (over it:
    `rate_limited`, never dialled), so two workers never dial one. A business now closed again,
    or gone, leaves its callback for the next opening; ``follow``: settle each in the
    background. Returns what was dialled."""
    now = deps.now()
    placed: list[Placed] = []
    for row in await due_callbacks(deps.db, now):
        try:
            done = await _dial_scheduled(deps, row, now)
        except ExotelApiError:
            continue  # recorded `failed` on the row
        if done is not None:
            placed.append(done)
            if follow:
                follow_up(deps, done)
    return placed


async def _dial_scheduled(deps: CallbackDeps, row: Callback, now: datetime) -> Placed | None:
    try:
        tenant = deps.tenants.get(row.tenant)
    except TenantError:
        tenant = None
    rules = tenant.callbacks if tenant is not None else None
    account = deps.account_for(tenant) if tenant is not None else None
    if tenant is None or rules is None or account is None:
        await update_callback(deps.db, row.key, "failed", error="callbacks no longer configured")
        return None
    if not rules.hours.is_open(now):  # the hours changed since: wait for their next opening
        later = rules.hours.next_open(now)
        if later is None:
            await update_callback(deps.db, row.key, "failed", error="the hours never open")
        else:
            await reschedule_callback(deps.db, row.key, later)
        return None
    started = await start_scheduled(
        deps.db,
        row,
        limit=rules.per_number_per_day,
        now=now,
        since=now - timedelta(days=1),
        account_sid=account.account_sid,
    )
    if started != "go":
        log.info("scheduled callback %s: %s", row.key, started)
        return None
    return await _dial(deps, tenant, account, row.key, row.to_number, row.token)


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
    account = placed.account or deps.exotel
    assert account is not None
    delay = first_delay_s
    for _ in range(tries):
        await sleep(delay)
        delay = min(delay * 2, 60.0)
        try:
            details = await fetch_call_details(deps.client, account, placed.exotel_sid)
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
