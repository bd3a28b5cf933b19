"""The webhook events, as deliveries to write (one per URL of the tenant that wants the event).

    call.started     the call's row is written at its start (bridge/call_record.py)
    call.ended       } the call's analysis is written (postcall/pipeline.py)
    call.analyzed    }
    message.status   a WhatsApp message's status changes: the send's outcome (dispatcher) or
                     the provider's report (notify/webhook.py)

Each is made by the code that writes what the event says, and written in that same transaction,
so an event exists exactly when its fact does. A call event's id is derived from the call and
the event type: the step that writes it can run again without making a second event. A message
event's transaction is the status change itself (which never happens twice), so its id is new.
A receiver de-duplicates the retries of a delivery by the id.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from receptionist.store.notifications import StatusChange
from receptionist.store.schema import utcnow
from receptionist.store.webhook_deliveries import NewDelivery
from receptionist.tenants.model import Tenant
from receptionist.tenants.repository import TenantError, Tenants

__all__ = ["call_events", "event_id", "message_events", "status_events_of"]

_NAMESPACE = uuid.UUID("5f0b7c52-7a53-4c3f-9d0e-0c6d1d3a8b21")
CALL_EVENTS = ("call.started", "call.ended", "call.analyzed")
MESSAGE_STATUS = "message.status"


def event_id(call_sid: str, event_type: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{call_sid}\x00{event_type}"))


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else None


def _deliveries(
    tenant: Tenant, event_type: str, eid: str, call_sid: str | None, data: dict[str, Any]
) -> list[NewDelivery]:
    hooks = [h for h in tenant.webhooks if event_type in h.events]
    if not hooks:
        return []
    payload = {
        "id": eid,
        "type": event_type,
        "created_at": utcnow().isoformat(),
        "tenant": tenant.tenant_id,
        "data": data,
    }
    return [
        NewDelivery(eid, event_type, tenant.tenant_id, call_sid, h.url, h.secret_env, payload)
        for h in hooks
    ]


def _call_data(event_type: str, row: dict[str, Any]) -> dict[str, Any]:
    started = {
        "call_sid": row["call_sid"],
        "from": row.get("from_number"),
        "to": row.get("to_number"),
        "direction": row.get("direction"),
        "started_at": _iso(row.get("started_at")),
    }
    if event_type == "call.started":
        return started
    if event_type == "call.ended":
        return {
            **{k: v for k, v in started.items() if k != "direction"},
            "answered_at": _iso(row.get("answered_at")),
            "ended_at": _iso(row.get("ended_at")),
            "duration_ms": row.get("duration_ms"),
            "status": row.get("status"),
            "end_reason": row.get("end_reason"),
        }
    details = {k: v for k, v in (row.get("critical_call_details") or {}).items() if k[:1] != "_"}
    return {
        "call_sid": row["call_sid"],
        "call_type": row.get("call_type"),
        "summary": row.get("summary"),
        "details": details,
        "transcript": row.get("transcript") or [],
    }


def call_events(
    tenant: Tenant, row: dict[str, Any], event_types: tuple[str, ...]
) -> list[NewDelivery]:
    """The deliveries of `event_types` for this call's row (the call_details columns; for
    call.started, those its start knows), to each of the tenant's webhooks that wants them."""
    out: list[NewDelivery] = []
    for event_type in event_types:
        if event_type not in CALL_EVENTS:
            raise ValueError(f"not a call event: {event_type!r}")
        eid = event_id(row["call_sid"], event_type)
        out.extend(
            _deliveries(tenant, event_type, eid, row["call_sid"], _call_data(event_type, row))
        )
    return out


#: The statuses a message.status event reports: what the provider took or refused and what it
#: reported since. `queued`/`sending` are our own bookkeeping, and `unknown` means we are still
#: finding out (a report or a resend settles it, and that is the event).
REPORTED_STATUSES = frozenset({"sent", "logged", "delivered", "read", "failed"})


def message_events(tenant: Tenant, change: StatusChange) -> list[NewDelivery]:
    """The deliveries of one message's status change, to the tenant's webhooks that want it.
    The recipient's number is shown as the tenant's API and dashboard show it (digits with the
    country code): the business's own customers and its own number."""
    if change.status not in REPORTED_STATUSES:
        return []
    data = {
        "message_id": change.notification_id,
        "call_sid": change.call_sid,
        "recipient": change.recipient_type,  # customer | owner | fixed
        "to": change.recipient,
        "template": change.template_name,
        "status": change.status,
        "at": _iso(change.at),
        "error": change.error if change.status == "failed" else None,
    }
    return _deliveries(tenant, MESSAGE_STATUS, str(uuid.uuid4()), change.call_sid, data)


def status_events_of(tenants: Tenants) -> Callable[[StatusChange], Sequence[NewDelivery]]:
    """What the message store calls inside a status change's transaction: the tenant is read
    from the in-memory registry (never the database), and a tenant gone or broken sends none."""

    def events(change: StatusChange) -> Sequence[NewDelivery]:
        if not change.tenant or change.status not in REPORTED_STATUSES:
            return []
        try:
            tenant = tenants.get_any(change.tenant)
        except TenantError:
            return []
        return message_events(tenant, change)

    return events
