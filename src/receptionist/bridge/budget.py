"""Per-tenant monthly AI budget, checked when a call starts (cached: one query per tenant a
minute, not per call).

The check sits before the greeting, so it never waits on the database for more than
`timeout_s`: a slow or hung database lets the call go on (the caller is never the one who
waits), while the one query in flight per tenant goes on in the background and fills the cache
for the calls after it. Calls arriving meanwhile share that query instead of piling up more.
"""

from __future__ import annotations

import asyncio
import contextlib
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
    def __init__(self, db: Database, *, ttl_s: float = 60.0, timeout_s: float = 1.0) -> None:
        self.db = db
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        self._cache: dict[tuple[str, str], tuple[float, Decimal]] = {}
        self._pending: dict[tuple[str, str], asyncio.Task[Decimal]] = {}

    async def spent(self, tenant_id: str) -> Decimal:
        """This month's spend; TimeoutError after `timeout_s` (the query goes on)."""
        month = datetime.now(UTC).strftime("%Y-%m")
        key = (tenant_id, month)
        hit = self._cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        task = self._pending.get(key)
        if task is None:
            task = asyncio.create_task(self._query(key))
            # a query that fails after every waiter gave up must not warn "never retrieved"
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            self._pending[key] = task
        async with asyncio.timeout(self.timeout_s):
            return await asyncio.shield(task)

    async def _query(self, key: tuple[str, str]) -> Decimal:
        try:
            total = await tenant_month_total(self.db, key[0], key[1])
            self._cache[key] = (time.monotonic() + self.ttl_s, total)
            return total
        finally:
            self._pending.pop(key, None)

    async def aclose(self) -> None:
        """Cancel queries still waiting on the database (server shutdown)."""
        for task in list(self._pending.values()):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

    async def check(self, tenant: Tenant) -> tuple[Budget, Decimal | None]:
        if tenant.budget_warn_usd is None and tenant.budget_limit_usd is None:
            return Budget.OK, None
        try:
            spent = await self.spent(tenant.tenant_id)
        except Exception as exc:  # never refuse callers because the database is slow or down
            why = f"no answer within {self.timeout_s:g}s" if isinstance(exc, TimeoutError) else exc
            log.warning("budget of %s not checked: %s", tenant.tenant_id, why)
            return Budget.OK, None
        if tenant.budget_limit_usd is not None and spent >= tenant.budget_limit_usd:
            return Budget.OVER, spent
        if tenant.budget_warn_usd is not None and spent >= tenant.budget_warn_usd:
            return Budget.WARN, spent
        return Budget.OK, spent
