"""The owner's WhatsApp notice when a caller asked for a person and nobody could be rung
(outside the `[handoff]` hours): one message per call, written as a `notifications` row that the
dispatcher sends like any other (key `handoff:<call_sid>`: asked twice, noticed once)."""

from __future__ import annotations

import logging
from datetime import datetime
from zoneinfo import ZoneInfo

from receptionist.config import Settings
from receptionist.notify.actions import message_payload
from receptionist.notify.phones import InvalidPhone, normalise_phone
from receptionist.store.db import Database
from receptionist.store.notifications import NewNotification, insert_notifications
from receptionist.store.schema import NOTIFY_QUEUED, utcnow
from receptionist.tenants.model import Tenant

__all__ = ["notice_row", "provider_name", "queue_owner_notice"]

log = logging.getLogger("receptionist.notify")
MESSAGE_TYPE = "handoff"


def provider_name(settings: Settings) -> str:
    """The provider the dispatcher sends through (the name notify/wiring.py chooses)."""
    key = settings.msg91_auth_key
    if settings.notify_provider == "log" or (settings.notify_provider == "auto" and not key):
        return "log"
    return "msg91"


def notice_row(
    tenant: Tenant, call_sid: str, caller: str, why: str, provider: str, at: datetime
) -> NewNotification | None:
    """The owner's notice, or None when the tenant declared no `handoff.notify_template`."""
    handoff = tenant.handoff
    template = tenant.template(handoff.notify_template) if handoff else None
    if template is None:
        return None
    try:
        number = normalise_phone(tenant.owner_phone)
    except InvalidPhone:  # validation makes this impossible
        return None
    local = at.astimezone(ZoneInfo(tenant.timezone)).strftime("%d %b %H:%M")
    values = [caller or "a hidden number", local, why[:120]]
    return NewNotification(
        call_sid=call_sid,
        tenant=tenant.tenant_id,
        idempotency_key=f"handoff:{call_sid}",
        recipient=number,
        recipient_type="owner",
        message_type=MESSAGE_TYPE,
        template_name=template.name,
        language=template.language,
        status=NOTIFY_QUEUED,
        provider=provider,
        payload=message_payload(tenant, values),
        details={"text": template.render(values)},
        urgent=True,
    )


async def queue_owner_notice(
    db: Database, settings: Settings, tenant: Tenant, call_sid: str, caller: str, why: str
) -> bool:
    """Queue the notice (once per call); False when there is none to send or it was queued."""
    row = notice_row(tenant, call_sid, caller, why, provider_name(settings), utcnow())
    if row is None:
        return False
    async with db.begin() as conn:
        added = await insert_notifications(conn, db.dialect, [row])
    if added:
        log.info("call %s: owner told of a hand-off outside hours", call_sid)
    return bool(added)
