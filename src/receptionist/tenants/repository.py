"""Tenant folders on disk, parsed once and reloaded when their files change.

``get()`` is called at the start of every call. After the first load it costs a dictionary look-up;
at most once per ``check_interval`` seconds per tenant it also stats the tenant's files (a handful
of ``stat`` calls) and re-reads the folder only if a file was added, removed or changed in size or
mtime. A broken tenant is reported with all its problems and never affects the others.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .bundle import folder_files
from .loading import is_valid_tenant_id, load_tenant
from .model import Tenant
from .report import Problem

__all__ = [
    "BrokenTenant",
    "InactiveTenant",
    "TenantError",
    "TenantRepository",
    "Tenants",
    "UnknownTenant",
]


class Tenants(Protocol):
    """What the server, the worker and the owner's window ask of tenants, whether they come from
    folders (`TenantRepository`) or the database (`StoredTenants` in stored_tenants.py)."""

    def ids(self) -> list[str]: ...

    def get(self, tenant_id: str) -> Tenant:
        """The tenant, or raise UnknownTenant / InactiveTenant / BrokenTenant."""
        ...

    def get_any(self, tenant_id: str) -> Tenant:
        """Like `get` but also returns inactive tenants (dashboards, CLI)."""
        ...

    def problems(self, tenant_id: str) -> list[Problem]: ...

    def load_all(self) -> tuple[list[Tenant], dict[str, list[Problem]]]: ...

    def invalidate(self, tenant_id: str | None = None) -> None: ...


class TenantError(Exception):
    """Base class: something is wrong with the tenant a call asked for."""

    def __init__(self, tenant_id: str, message: str) -> None:
        super().__init__(message)
        self.tenant_id = tenant_id


class UnknownTenant(TenantError):
    """No such tenant (or the id is not a safe tenant id at all)."""

    def __init__(self, tenant_id: str, reason: str | None = None) -> None:
        shown = repr(tenant_id)[:80]
        message = f"unknown tenant {shown}"
        if reason:
            message += f" ({reason})"
        super().__init__(tenant_id, message)


class InactiveTenant(TenantError):
    """The tenant exists but has ``active = false``; ``tenant`` is the loaded tenant."""

    def __init__(self, tenant_id: str, tenant: Tenant | None = None) -> None:
        super().__init__(tenant_id, f"tenant {tenant_id!r} is not active (active = false)")
        self.tenant = tenant


class BrokenTenant(TenantError):
    """The tenant's folder has problems; ``problems`` lists every one of them."""

    def __init__(self, tenant_id: str, problems: list[Problem]) -> None:
        lines = "\n".join(f"  {p}" for p in problems)
        count = len(problems)
        super().__init__(
            tenant_id,
            f"tenant {tenant_id!r} has {count} problem{'s' if count != 1 else ''}:\n{lines}",
        )
        self.problems = list(problems)


Fingerprint = tuple[tuple[str, int, int], ...]


@dataclass(slots=True)
class _Entry:
    fingerprint: Fingerprint
    checked_at: float
    tenant: Tenant | None
    problems: list[Problem]


def _fingerprint(tenant_dir: Path) -> Fingerprint:
    """(path, mtime_ns, size) of every file that makes up the tenant; missing files count too."""
    out: list[tuple[str, int, int]] = []
    for path in folder_files(tenant_dir):
        try:
            st = path.stat()
        except OSError:
            out.append((str(path), -1, -1))
            continue
        out.append((str(path), st.st_mtime_ns, st.st_size))
    return tuple(out)


class TenantRepository:
    """Tenants under ``root`` (one folder each), cached and reloaded on change.

    ``check_interval`` is how often (seconds) a cached tenant's files are stat-ed for changes;
    ``clock`` is the monotonic clock used for that (tests pass a fake one or ``check_interval=0``).
    """

    def __init__(
        self,
        root: Path | str,
        *,
        check_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._root = Path(root)
        self._check_interval = check_interval
        self._clock = clock
        self._cache: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    @property
    def root(self) -> Path:
        return self._root

    def ids(self) -> list[str]:
        """Sorted folder names under the root that are valid tenant ids."""
        try:
            entries = list(os.scandir(self._root))
        except OSError:
            return []
        return sorted(
            e.name for e in entries if is_valid_tenant_id(e.name) and e.is_dir(follow_symlinks=True)
        )

    def get(self, tenant_id: str) -> Tenant:
        """The tenant, or raise UnknownTenant / InactiveTenant / BrokenTenant."""
        tenant = self._load(tenant_id)
        if not tenant.active:
            raise InactiveTenant(tenant_id, tenant)
        return tenant

    def get_any(self, tenant_id: str) -> Tenant:
        """Like :meth:`get` but also returns inactive tenants (dashboards, CLI)."""
        return self._load(tenant_id)

    def problems(self, tenant_id: str) -> list[Problem]:
        """The problems of one tenant (empty if it loads); UnknownTenant if there is none."""
        try:
            self._load(tenant_id)
        except BrokenTenant as exc:
            return exc.problems
        return []

    def load_all(self) -> tuple[list[Tenant], dict[str, list[Problem]]]:
        """Every tenant that loads (inactive ones included), and the problems of the others."""
        tenants: list[Tenant] = []
        problems: dict[str, list[Problem]] = {}
        for tenant_id in self.ids():
            try:
                tenants.append(self._load(tenant_id))
            except BrokenTenant as exc:
                problems[tenant_id] = exc.problems
            except UnknownTenant:  # folder removed meanwhile
                continue
        return tenants, problems

    def invalidate(self, tenant_id: str | None = None) -> None:
        """Forget the cached copy of one tenant (or all), so the next get() re-reads it."""
        with self._lock:
            if tenant_id is None:
                self._cache.clear()
            else:
                self._cache.pop(tenant_id, None)

    # ------------------------------------------------------------------ internals

    def _load(self, tenant_id: str) -> Tenant:
        if not is_valid_tenant_id(tenant_id):
            raise UnknownTenant(str(tenant_id), "not a valid tenant id")
        now = self._clock()
        entry = self._cache.get(tenant_id)
        if entry is not None and now - entry.checked_at < self._check_interval:
            return self._result(tenant_id, entry)

        tenant_dir = self._root / tenant_id
        if not tenant_dir.is_dir():
            with self._lock:
                self._cache.pop(tenant_id, None)
            raise UnknownTenant(tenant_id)

        fingerprint = _fingerprint(tenant_dir)
        with self._lock:
            entry = self._cache.get(tenant_id)
            if entry is not None and entry.fingerprint == fingerprint:
                entry.checked_at = now
                return self._result(tenant_id, entry)
            tenant, problems = load_tenant(self._root, tenant_id)
            entry = _Entry(fingerprint, now, tenant, problems)
            self._cache[tenant_id] = entry
        return self._result(tenant_id, entry)

    @staticmethod
    def _result(tenant_id: str, entry: _Entry) -> Tenant:
        if entry.tenant is None:
            raise BrokenTenant(tenant_id, entry.problems)
        return entry.tenant
