"""Per-tenant monthly AI budget, checked when a call starts (cached: one query per tenant a
minute, not per call)."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum

from receptionist.postcall.costs import tenant_month_total
from receptionist.store.db import Database
from receptionist.tenants.model import Tenant

log = logging.getLogger("receptionist.budget")


class Budget(Enum):
    OK = "ok"
    WARN = "warn"
    OVER = "over"


class BudgetGuard:
    def __init__(self, db: Database, *, ttl_s: float = 60.0) -> None:
        self.db = db
        self.ttl_s = ttl_s
        self._cache: dict[tuple[str, str], tuple[float, Decimal]] = {}

    async def spent(self, tenant_id: str) -> Decimal:
        month = datetime.now(UTC).strftime("%Y-%m")
        key = (tenant_id, month)
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        total = await tenant_month_total(self.db, tenant_id, month)
        self._cache[key] = (now + self.ttl_s, total)
        return total

    async def check(self, tenant: Tenant) -> tuple[Budget, Decimal | None]:
        if tenant.budget_warn_usd is None and tenant.budget_limit_usd is None:
            return Budget.OK, None
        try:
            spent = await self.spent(tenant.tenant_id)
        except Exception as exc:  # never refuse callers because the database is slow or down
            log.warning("budget of %s not checked: %s", tenant.tenant_id, exc)
            return Budget.OK, None
        if tenant.budget_limit_usd is not None and spent >= tenant.budget_limit_usd:
            return Budget.OVER, spent
        if tenant.budget_warn_usd is not None and spent >= tenant.budget_warn_usd:
            return Budget.WARN, spent
        return Budget.OK, spent
