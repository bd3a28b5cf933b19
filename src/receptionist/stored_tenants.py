"""Tenants kept in the database (`TENANTS_SOURCE=database`): the same questions as the folder
repository (tenants/repository.py), answered from memory. It joins the store (the versions) and
the tenants package (loading them), which stay apart.

`get()` runs at the start of every call, so it is a dictionary look-up. `refresh()` asks the
database which version of each tenant is in force (one small query) and loads only what changed;
`run()` does that every `interval_s` seconds, so an edit saved by any process is answering calls
everywhere within a couple of seconds, with no restart. A call keeps the Tenant it started with
(a Tenant is immutable), and `Tenant.version` says which version that was.

A stored version was checked when it was saved, but it is checked again when loaded (a newer
release may check more): one that no longer loads is reported like a broken folder, and only
that tenant is affected.

`import_folders` is how folders reach the database (`tenants sync`, and `serve` for the tenants
the database does not have yet): a folder that loads is saved as a new version when its files
differ from the version in force.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from receptionist import loops
from receptionist.store.db import Database, unreachable
from receptionist.store.tenant_configs import TenantConfigRow
from receptionist.store.tenant_versions import (
    SavedVersion,
    current_versions,
    load_version,
    save_version,
)
from receptionist.tenants.bundle import TenantBundle, read_folder
from receptionist.tenants.loading import is_valid_tenant_id, load_bundle
from receptionist.tenants.model import Tenant
from receptionist.tenants.report import Problem
from receptionist.tenants.repository import (
    BrokenTenant,
    InactiveTenant,
    TenantRepository,
    Tenants,
    UnknownTenant,
)

__all__ = [
    "FOLDER_AUTHOR",
    "FolderImport",
    "StoredTenants",
    "import_folder",
    "summary_of",
    "tenants_for",
]

log = logging.getLogger(__name__)

REFRESH_INTERVAL_S = 2.0
OLD_VERSIONS_KEPT = 32  # older versions loaded for calls they answered (first in, first out)
#: the author of a version imported from a folder (a later folder import may replace it; one
#: made anywhere else is not replaced without `force`)
FOLDER_AUTHOR = "folder"


@dataclass(frozen=True, slots=True)
class _Loaded:
    version: int
    tenant: Tenant | None
    problems: list[Problem]


class StoredTenants:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache: dict[str, _Loaded] = {}
        self._versions: dict[tuple[str, int], _Loaded] = {}  # older versions asked for
        self._refreshing = asyncio.Lock()
        self._unstarted: tuple[Path | None] | None = None  # start's folders, while it waits

    # -- the repository's questions (see repository.TenantRepository)
    def ids(self) -> list[str]:
        return sorted(self._cache)

    def get(self, tenant_id: str) -> Tenant:
        tenant = self.get_any(tenant_id)
        if not tenant.active:
            raise InactiveTenant(tenant_id, tenant)
        return tenant

    def get_any(self, tenant_id: str) -> Tenant:
        loaded = self._cache.get(tenant_id) if isinstance(tenant_id, str) else None
        if loaded is None:
            reason = None if is_valid_tenant_id(tenant_id) else "not a valid tenant id"
            raise UnknownTenant(str(tenant_id), reason)
        if loaded.tenant is None:
            raise BrokenTenant(tenant_id, loaded.problems)
        return loaded.tenant

    def problems(self, tenant_id: str) -> list[Problem]:
        try:
            self.get_any(tenant_id)
        except BrokenTenant as exc:
            return exc.problems
        return []

    def load_all(self) -> tuple[list[Tenant], dict[str, list[Problem]]]:
        tenants = [e.tenant for e in self._cache.values() if e.tenant is not None]
        broken = {tid: e.problems for tid, e in self._cache.items() if e.tenant is None}
        return sorted(tenants, key=lambda t: t.tenant_id), broken

    def invalidate(self, tenant_id: str | None = None) -> None:
        """Forget one tenant (or all): the next refresh loads it again."""
        if tenant_id is None:
            self._cache.clear()
        else:
            self._cache.pop(tenant_id, None)

    # -- keeping up with the database
    async def start(self, folders: Path | None) -> None:
        """Import the folders of tenants the database does not have yet, then load them all."""
        if folders is not None and folders.is_dir():
            known = await current_versions(self.db)
            for entry in sorted(folders.iterdir()):
                if entry.name in known or not entry.is_dir() or not is_valid_tenant_id(entry.name):
                    continue
                done = await import_folder(self.db, folders, entry.name)
                if done.saved is None:
                    log.warning("tenant folder %s not imported: %s", entry.name, done.problems[0])
                else:
                    log.info("tenant folder %s imported as version 1", entry.name)
        await self.refresh()

    async def start_or_defer(self, folders: Path | None) -> bool:
        """`start`, or with the database away, a warning and False: `run` starts it as soon as
        the database answers. Meanwhile no tenant is known, so calls are refused (and
        recorded) rather than the server failing to come up when the database is late."""
        try:
            await self.start(folders)
        except Exception as exc:
            if not unreachable(exc):
                raise
            self._unstarted = (folders,)
            log.warning(
                "tenants not loaded (%s: the database is away); calls are refused until it answers",
                type(exc).__name__,
            )
            return False
        return True

    async def refresh(self) -> list[str]:
        """Load the tenants whose version in force changed; returns their ids."""
        async with self._refreshing:
            versions = await current_versions(self.db)
            changed = [t for t, v in versions.items() if self._version_of(t) != v]
            for tenant_id in changed:
                stored = await load_version(self.db, tenant_id, versions[tenant_id])
                if stored is None:  # replaced between the two reads: the next round has it
                    continue
                self._cache[tenant_id] = _load(tenant_id, stored.info.version, stored.files)
            for gone in set(self._cache) - set(versions):
                del self._cache[gone]
            if changed:
                log.info("tenants loaded from the database: %s", ", ".join(sorted(changed)))
            return changed

    async def at_version(self, tenant_id: str, version: int) -> Tenant:
        """The tenant as `version` had it (the one that answered a call); the version in force
        when that one is gone or no longer loads."""
        loaded = self._cache.get(tenant_id)
        if loaded is not None and loaded.version == version and loaded.tenant is not None:
            return loaded.tenant
        old = self._versions.get((tenant_id, version))
        if old is None:
            stored = await load_version(self.db, tenant_id, version)
            old = _load(tenant_id, version, stored.files) if stored is not None else None
            if old is not None:
                if len(self._versions) >= OLD_VERSIONS_KEPT:
                    self._versions.pop(next(iter(self._versions)))
                self._versions[(tenant_id, version)] = old
        if old is not None and old.tenant is not None:
            return old.tenant
        return self.get_any(tenant_id)

    def _version_of(self, tenant_id: str) -> int | None:
        loaded = self._cache.get(tenant_id)
        return loaded.version if loaded else None

    async def run(self, stop: asyncio.Event, interval_s: float = REFRESH_INTERVAL_S) -> None:
        """Refresh every `interval_s` until `stop` (a failed round is logged and retried)."""
        await loops.every(interval_s, stop, self.poll_once)

    async def poll_once(self) -> None:
        """One round of `run`: finish a deferred start, or load what changed."""
        try:
            if self._unstarted is not None:
                await self.start(self._unstarted[0])
                self._unstarted = None
                log.info("tenants loaded now that the database answers: %s", ", ".join(self.ids()))
            else:
                await self.refresh()
        except Exception as exc:  # a database outage: keep answering from memory
            log.warning("tenant refresh failed (%s); answering from memory", type(exc).__name__)


def _load(tenant_id: str, version: int, files: dict[str, str]) -> _Loaded:
    try:
        bundle = TenantBundle.from_text(files)
    except ValueError as exc:
        return _Loaded(version, None, [Problem(tenant_id, tenant_id, None, str(exc))])
    tenant, problems = load_bundle(tenant_id, bundle)
    if tenant is not None:
        tenant = tenant.with_version(version)
    return _Loaded(version, tenant, problems)


def summary_of(tenant: Tenant) -> TenantConfigRow:
    """The tenant_configs columns a dashboard lists without loading every tenant."""
    return TenantConfigRow(
        tenant_id=tenant.tenant_id,
        tenant_name=tenant.name,
        owner_phone=tenant.owner_phone,
        is_active=tenant.active,
        languages=list(tenant.languages),
        call_type_schema=tenant.call_type_schema,
        config=tenant.raw_config,
        prompt_version=tenant.prompt_version,
    )


@dataclass(frozen=True, slots=True)
class FolderImport:
    tenant_id: str
    saved: SavedVersion | None  # None: nothing was saved (see `problems`)
    problems: list[Problem]


async def import_folder(
    db: Database, root: Path, tenant_id: str, *, force: bool = False
) -> FolderImport:
    """Save the folder `root/tenant_id` as the tenant's newest version if it loads and differs
    from the version in force. A version in force that was made elsewhere (the dashboard, the
    API, a restore) is not replaced unless `force`: the folder would silently undo that edit."""
    bundle = read_folder(root / tenant_id)
    tenant, problems = load_bundle(tenant_id, bundle)
    if tenant is None:
        return FolderImport(tenant_id, None, problems)
    content_hash = bundle.content_hash()
    if not force:
        in_force = await load_version(db, tenant_id)
        if (
            in_force is not None
            and in_force.info.author != FOLDER_AUTHOR
            and in_force.info.content_hash != content_hash
        ):
            why = (
                f"version {in_force.info.version} in force was made by {in_force.info.author} "
                f"and differs from the folder: export it first (receptionist tenants export "
                f"{tenant_id} DIR) or replace it (--force)"
            )
            return FolderImport(tenant_id, None, [Problem(tenant_id, tenant_id, None, why)])
    saved = await save_version(
        db, summary_of(tenant), bundle.as_text(), content_hash, author=FOLDER_AUTHOR
    )
    return FolderImport(tenant_id, saved, [])


def tenants_for(source: str, tenants_dir: Path, db: Database) -> Tenants:
    """The tenants a process serves: its folders, or the database (`StoredTenants`, which its
    owner must `start` and `run`)."""
    return StoredTenants(db) if source == "database" else TenantRepository(tenants_dir)
