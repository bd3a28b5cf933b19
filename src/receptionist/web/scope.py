"""Whose data a request may see: the one place the tenant scope is applied.

Every read and write the API (and later the dashboard) makes starts from `Scope.calls()`,
`Scope.notifications()`, `Scope.usage()`, `Scope.webhook_deliveries()`, `Scope.bookings()`,
`Scope.recordings()` or `Scope.tenant_ids()`; those are the only selects that name a table,
and each is already limited to the key's tenant. Routes never build their own `FROM`: a route
added later cannot forget the filter, and the isolation test walks every route the app has with
keys of two tenants.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from receptionist.store.api_keys import KeyOwner
from receptionist.store.schema import (
    ai_token_usage,
    bookings,
    call_details,
    call_recordings,
    exotel_call_details,
    notifications,
    webhook_deliveries,
)


@dataclass(frozen=True, slots=True)
class Scope:
    """A key's view: one tenant (an owner), or every tenant or a chosen one (an admin)."""

    owner: KeyOwner
    tenant: str | None  # the tenant in view; None only for an admin looking at every tenant

    @classmethod
    def of(cls, owner: KeyOwner, chosen: str | None) -> Scope:
        """An owner always sees their own tenant (whatever they ask for); an admin may choose."""
        return cls(owner, owner.tenant if owner.tenant is not None else chosen)

    def _limit(self, stmt: sa.Select[Any], column: sa.ColumnElement[Any]) -> sa.Select[Any]:
        return stmt if self.tenant is None else stmt.where(column == self.tenant)

    def calls(self, *columns: Any) -> sa.Select[Any]:
        return self._limit(sa.select(*(columns or (call_details,))), call_details.c.tenant)

    def notifications(self, *columns: Any) -> sa.Select[Any]:
        return self._limit(sa.select(*(columns or (notifications,))), notifications.c.tenant)

    def usage(self, *columns: Any) -> sa.Select[Any]:
        return self._limit(sa.select(*(columns or (ai_token_usage,))), ai_token_usage.c.tenant)

    def exotel_details(self, *columns: Any) -> sa.Select[Any]:
        return self._limit(
            sa.select(*(columns or (exotel_call_details,))), exotel_call_details.c.tenant
        )

    def webhook_deliveries(self, *columns: Any) -> sa.Select[Any]:
        return self._limit(
            sa.select(*(columns or (webhook_deliveries,))), webhook_deliveries.c.tenant
        )

    def bookings(self, *columns: Any) -> sa.Select[Any]:
        return self._limit(sa.select(*(columns or (bookings,))), bookings.c.tenant)

    def recordings(self, *columns: Any) -> sa.Select[Any]:
        return self._limit(sa.select(*(columns or (call_recordings,))), call_recordings.c.tenant)

    def sees(self, tenant: str | None) -> bool:
        return self.tenant is None or tenant == self.tenant
