"""The owner's daily WhatsApp digest: yesterday's calls, at the hour the tenant chose.

Each worker checks every minute (`due_digests`). A tenant's digest for a day is due once the
tenant's local clock has passed its `hour` on the next day; it is then written as one
`notifications` row whose idempotency key is the tenant and the day, so however many workers run
and whatever restarts, there is one row, and the dispatcher sends it once, like every other
message. The test is "the local hour is at least `hour`", not "it is `hour` now": a worker that
was down at that hour still sends it later that day, and an hour that does not exist on a day
(a daylight-saving gap) is passed like any other. Only yesterday's digest is ever made: a worker
that was down for a week does not send seven.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from receptionist.notify.actions import message_payload
from receptionist.notify.phones import InvalidPhone, normalise_phone
from receptionist.store.day_figures import DayFigures, day_figures, notification_exists
from receptionist.store.db import Database
from receptionist.store.notifications import NewNotification, insert_notifications
from receptionist.store.schema import NOTIFY_QUEUED, NOTIFY_SKIPPED
from receptionist.tenants.model import Tenant
from receptionist.tenants.repository import Tenants

__all__ = ["CHECK_EVERY_S", "digest_day", "digest_key", "digest_values", "due_digests"]

log = logging.getLogger("receptionist.digest")

CHECK_EVERY_S = 60.0
MESSAGE_TYPE = "daily_digest"


def digest_day(now: datetime, tz: ZoneInfo, hour: int) -> date | None:
    """The day whose digest is due at `now`: yesterday, local, once today's local clock has
    reached `hour`; None before that."""
    local = now.astimezone(tz)
    return local.date() - timedelta(days=1) if local.hour >= hour else None


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Local midnight to the next local midnight, in UTC (23 or 25 hours apart on a
    daylight-saving day: in UTC, since Python subtracts two times of one zone by the wall clock)."""
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def digest_key(tenant_id: str, day: date) -> str:
    return f"digest:{tenant_id}:{day.isoformat()}"


def _rupees(usd: Decimal, usd_inr: Decimal) -> str:
    return f"Rs {(usd * usd_inr).quantize(Decimal('0.01'))}"


def digest_values(tenant: Tenant, day: date, figures: DayFigures, usd_inr: Decimal) -> list[str]:
    """The template's variables, in order (tenant.digest.sources)."""
    by_type = ", ".join(f"{name} {n}" for name, n in figures.by_type.items()) or "none"
    known = {
        "digest.date": day.strftime("%d %b %Y").lstrip("0"),
        "digest.calls": str(figures.calls),
        "digest.by_type": by_type,
        "digest.missed": str(figures.missed),
        "digest.failed": str(figures.failed),
        "digest.complaints": str(figures.complaints),
        "digest.cost": _rupees(figures.cost_usd, usd_inr),
        "business.name": tenant.name,
    }
    assert tenant.digest is not None
    return [known[source] for source in tenant.digest.sources]


async def _one(
    db: Database, tenant: Tenant, day: date, provider: str, usd_inr: Decimal
) -> NewNotification | None:
    digest = tenant.digest
    template = tenant.template(digest.template) if digest else None
    if digest is None or template is None:  # validation makes the second impossible
        return None
    key = digest_key(tenant.tenant_id, day)
    if await notification_exists(db, key):  # the common case: made earlier today
        return None
    tz = ZoneInfo(tenant.timezone)
    figures = await day_figures(db, tenant.tenant_id, *day_bounds(day, tz))
    values = digest_values(tenant, day, figures, usd_inr)
    status, recipient, error = NOTIFY_QUEUED, None, None
    try:
        recipient = normalise_phone(tenant.owner_phone, "IN")
    except InvalidPhone as exc:
        status, error = NOTIFY_SKIPPED, f"not sent to the owner: {exc.reason}"
    return NewNotification(
        call_sid=None,
        tenant=tenant.tenant_id,
        idempotency_key=key,
        recipient=recipient,
        recipient_type="owner",
        message_type=MESSAGE_TYPE,
        template_name=template.name,
        language=template.language,
        status=status,
        provider=provider,
        payload=message_payload(tenant, values),
        details={"text": template.render(values), "day": day.isoformat()},
        error=error,
    )


async def due_digests(
    db: Database, tenants: Tenants, now: datetime, *, provider: str, usd_inr: Decimal
) -> int:
    """Write the digests due at `now` (see the module doc); returns how many were added."""
    loaded, _broken = tenants.load_all()
    rows: list[NewNotification] = []
    for tenant in loaded:
        if tenant.digest is None or not tenant.active:
            continue
        day = digest_day(now, ZoneInfo(tenant.timezone), tenant.digest.hour)
        if day is None:
            continue
        row = await _one(db, tenant, day, provider, usd_inr)
        if row is not None:
            rows.append(row)
    if not rows:
        return 0
    async with db.begin() as conn:
        added = await insert_notifications(conn, db.dialect, rows)
    for row in rows:
        log.info("daily digest %s queued for %s", row.idempotency_key, row.tenant)
    return added
