"""The owner's window on webhook deliveries: list them, see every attempt, replay one. Every
select starts from `Scope.webhook_deliveries()`, so a key sees only its tenant's."""

from __future__ import annotations

import sqlalchemy as sa

from receptionist.store.schema import webhook_deliveries
from receptionist.store.webhook_deliveries import (
    DELIVERED,
    FAILED,
    PENDING,
    list_attempts,
    recent_attempts,
    replay_delivery,
)
from receptionist.web.deps import MAX_PAGE, WebDeps, WebError
from receptionist.web.models import Done, WebhookAttempt, WebhookDelivery
from receptionist.web.scope import Scope

__all__ = ["STATUSES", "deliveries_with_attempts", "delivery_detail", "delivery_list", "replay"]

STATUSES = (PENDING, DELIVERED, FAILED)


def _model(row: sa.Row[tuple[object, ...]]) -> WebhookDelivery:
    return WebhookDelivery.model_validate(row._mapping, from_attributes=False)


async def delivery_list(
    s: Scope, deps: WebDeps, status: str | None = None, limit: int = 50
) -> list[WebhookDelivery]:
    d = webhook_deliveries.c
    stmt = s.webhook_deliveries()
    if status:
        stmt = stmt.where(d.status == status)
    stmt = stmt.order_by(d.id.desc()).limit(max(1, min(limit, MAX_PAGE)))
    async with deps.db.session() as conn:
        rows = (await conn.execute(stmt)).all()
    return [_model(r) for r in rows]


async def deliveries_with_attempts(
    s: Scope, deps: WebDeps, status: str | None = None, limit: int = 50
) -> list[WebhookDelivery]:
    """A page of deliveries, each with its latest attempts (the dashboard's list)."""
    found = await delivery_list(s, deps, status, limit)
    attempts = await recent_attempts(deps.db, [d.id for d in found])
    for d in found:
        d.tried = [WebhookAttempt(**a) for a in attempts.get(d.id, [])]
    return found


async def delivery_detail(s: Scope, deps: WebDeps, delivery_id: int) -> WebhookDelivery:
    async with deps.db.session() as conn:
        row = (
            await conn.execute(s.webhook_deliveries().where(webhook_deliveries.c.id == delivery_id))
        ).first()
    if row is None:
        raise WebError(404, "not_found", f"no webhook delivery {delivery_id}")
    found = _model(row)
    found.tried = [WebhookAttempt(**a) for a in await list_attempts(deps.db, delivery_id)]
    return found


async def replay(s: Scope, deps: WebDeps, delivery_id: int) -> Done:
    await delivery_detail(s, deps, delivery_id)  # 404 unless this key sees it
    if not await replay_delivery(deps.db, delivery_id, tenant=s.tenant):
        raise WebError(404, "not_found", f"no webhook delivery {delivery_id}")
    return Done(message=f"webhook delivery {delivery_id} will be sent again")
