"""What every question of the owner's window needs: its dependencies, the scope of a key, its
errors, the tenant's time zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from receptionist.callbacks import CallbackDeps
from receptionist.recordings.stores import RecordingStore
from receptionist.store.api_keys import KeyOwner
from receptionist.store.db import Database
from receptionist.tenants.repository import TenantError, Tenants, UnknownTenant
from receptionist.web.scope import Scope

MAX_PAGE = 200
DEFAULT_PAGE = 50
DEFAULT_TZ = "Asia/Kolkata"


class WebError(Exception):
    """A request the server will not answer as asked: status, stable code, plain message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        problems: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        opens_at: datetime | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.problems = problems  # what is wrong, field by field (a tenant edit)
        self.headers = headers  # sent with the answer (a 416's Content-Range)
        self.opens_at = opens_at  # a callback refused outside the hours: their next opening


@dataclass(frozen=True)
class WebDeps:
    db: Database
    tenants: Tenants
    usd_inr: Decimal
    # AI callbacks (callbacks.py); None: the server has no Exotel API or callback stream URL
    callbacks: CallbackDeps | None = None
    recordings: RecordingStore | None = None  # where call recordings are kept (None: nowhere)


def scope_for(deps: WebDeps, owner: KeyOwner, chosen: str | None) -> Scope:
    """The data a checked key may see. A deactivated tenant's owner still reads its history; a
    deleted tenant's key is dead."""
    if owner.tenant is not None:
        try:
            deps.tenants.get_any(owner.tenant)
        except UnknownTenant:
            raise WebError(
                403, "tenant_gone", f"tenant {owner.tenant!r} no longer exists"
            ) from None
        except TenantError:
            pass  # a tenant folder with problems is still this owner's tenant
    return Scope.of(owner, chosen)


def is_db_down(exc: BaseException) -> bool:
    return isinstance(exc, OSError | sa.exc.OperationalError | sa.exc.InterfaceError)


def unexpected_text(exc: BaseException) -> str:
    if is_db_down(exc):
        return "the database is not answering; try again shortly"
    return "something went wrong on our side; it has been logged"


def tenant_tz(deps: WebDeps, s: Scope) -> ZoneInfo:
    if s.tenant is not None:
        try:
            return ZoneInfo(deps.tenants.get_any(s.tenant).timezone)
        except (TenantError, ValueError, KeyError):
            pass
    return ZoneInfo(DEFAULT_TZ)


def day_bounds(value: date, tz: ZoneInfo, *, end: bool) -> datetime:
    """Midnight of `value` (or of the day after, for an inclusive end) in the tenant's zone."""
    day = value + timedelta(days=1) if end else value
    return datetime.combine(day, time(0), tz).astimezone(UTC)
