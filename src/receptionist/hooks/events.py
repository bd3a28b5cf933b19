"""The webhook events of a call, as deliveries to write (one per URL that wants the event).

An event's id is derived from the call and the event type, so the step that writes it can run
again without making a second event, and a receiver can de-duplicate retries by it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from receptionist.store.schema import utcnow
from receptionist.store.webhook_deliveries import NewDelivery
from receptionist.tenants.model import Tenant

__all__ = ["call_events", "event_id"]

_NAMESPACE = uuid.UUID("5f0b7c52-7a53-4c3f-9d0e-0c6d1d3a8b21")


def event_id(call_sid: str, event_type: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{call_sid}\x00{event_type}"))


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else None


def _data(event_type: str, row: dict[str, Any]) -> dict[str, Any]:
    ended = {
        "call_sid": row["call_sid"],
        "from": row.get("from_number"),
        "to": row.get("to_number"),
        "started_at": _iso(row.get("started_at")),
        "answered_at": _iso(row.get("answered_at")),
        "ended_at": _iso(row.get("ended_at")),
        "duration_ms": row.get("duration_ms"),
        "status": row.get("status"),
        "end_reason": row.get("end_reason"),
    }
    if event_type == "call.ended":
        return ended
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
    """The deliveries of `event_types` for this call's row, to each of the tenant's webhooks
    that wants them."""
    out: list[NewDelivery] = []
    now = utcnow().isoformat()
    for event_type in event_types:
        hooks = [h for h in tenant.webhooks if event_type in h.events]
        if not hooks:
            continue
        eid = event_id(row["call_sid"], event_type)
        payload = {
            "id": eid,
            "type": event_type,
            "created_at": now,
            "tenant": tenant.tenant_id,
            "data": _data(event_type, row),
        }
        out.extend(
            NewDelivery(
                eid, event_type, tenant.tenant_id, row["call_sid"], h.url, h.secret_env, payload
            )
            for h in hooks
        )
    return out
