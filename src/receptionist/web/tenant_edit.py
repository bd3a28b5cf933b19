"""Tenants changed through the owner's window (TENANTS_SOURCE=database): read a tenant's files,
save a change, list the versions, restore one.

A save is checked exactly as `tenants validate` checks a folder (`load_bundle`); one that does
not load is refused with every problem, by file and line, and nothing is saved. It names the
version it was made from, so two people saving the same tenant cannot overwrite each other: the
second is told (409) and loads the new version. Every save is a new version with its author (the
key) and note. An owner's key reaches its own tenant only; an admin's, any, and only an admin
creates one. Some keys are the operator's even in an owner's own tenant (`operator_keys`): an
owner's save or restore that changes one is refused. After a save this process answers with the
new version at once; the others within their refresh interval (stored_tenants.py).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from typing import Any

from receptionist.store.tenant_versions import (
    VersionConflict,
    current_versions,
    list_versions,
    load_version,
    save_version,
)
from receptionist.stored_tenants import StoredTenants, summary_of
from receptionist.tenants.bundle import BadBundlePath, TenantBundle
from receptionist.tenants.loading import is_valid_tenant_id, load_bundle
from receptionist.web.deps import WebDeps, WebError
from receptionist.web.models import TenantEdit, TenantFiles, TenantSaved, TenantVersion
from receptionist.web.scope import Scope

__all__ = ["files_of", "reach", "restore", "save", "versions_of"]


def _stored(deps: WebDeps) -> StoredTenants:
    if not isinstance(deps.tenants, StoredTenants):
        raise WebError(
            409,
            "tenants_in_folders",
            "tenants are read from their folders here: edit the folder (or run the server "
            "with TENANTS_SOURCE=database to edit tenants from here)",
        )
    return deps.tenants


def reach(s: Scope, tenant_id: str) -> None:
    """404 unless this key may see the tenant (checked before a request's body is read)."""
    if not is_valid_tenant_id(tenant_id) or not s.sees(tenant_id):
        raise WebError(404, "not_found", f"no tenant {tenant_id[:64]!r}")


async def files_of(s: Scope, deps: WebDeps, tenant_id: str) -> TenantFiles:
    reach(s, tenant_id)
    _stored(deps)
    stored = await load_version(deps.db, tenant_id)
    if stored is None:
        raise WebError(404, "not_found", f"no tenant {tenant_id!r}")
    return TenantFiles(tenant_id=tenant_id, version=stored.info.version, files=stored.files)


def operator_keys(config: dict[str, Any], path: str = "") -> Iterator[tuple[str, Any]]:
    """The keys of a tenant.toml that only an operator changes, with their values: whether the
    tenant answers (`active`, which an operator may have turned off), which of the server's
    environment variables it reads (every `*_env`: a secret of the server or of another tenant
    must not be one edit away), the ExoPhone it calls from (`caller_id`: one Exotel account
    serves every tenant) and its own Exotel account (`exotel.account_sid`). The budget is the
    owner's (issue 16: an owner edits it)."""
    for key, value in config.items():
        here = f"{path}.{key}" if path else key
        if isinstance(value, dict):
            yield from operator_keys(value, here)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for i, item in enumerate(value):
                yield from operator_keys(item, f"{here}[{i}]")
        elif here in ("active", "exotel.account_sid") or key.endswith("_env") or key == "caller_id":
            yield here, value


def _operator_changes(old_toml: str, new_toml: str) -> list[str]:
    try:
        old = dict(operator_keys(tomllib.loads(old_toml)))
        new = dict(operator_keys(tomllib.loads(new_toml)))
    except tomllib.TOMLDecodeError:
        return []  # the loader reports a file that does not parse
    return sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))


async def save(
    s: Scope, deps: WebDeps, tenant_id: str, edit: TenantEdit, *, author: str
) -> TenantSaved:
    reach(s, tenant_id)
    tenants = _stored(deps)
    if edit.base_version is None and s.owner.tenant is not None:
        raise WebError(403, "forbidden", "only an admin key creates a tenant")
    if s.owner.tenant is not None:
        now = await load_version(deps.db, tenant_id)
        changed = _operator_changes(
            now.files.get("tenant.toml", "") if now else "", edit.files.get("tenant.toml", "")
        )
        if changed:
            raise WebError(
                403,
                "operator_only",
                "only the operator changes these; nothing was saved",
                [
                    {"file": "tenant.toml", "line": None, "message": f"{k}: operator only"}
                    for k in changed
                ],
            )
    try:
        bundle = TenantBundle.from_text(edit.files)
    except BadBundlePath as exc:
        raise WebError(422, "invalid_tenant", str(exc)) from None
    tenant, problems = load_bundle(tenant_id, bundle)
    if tenant is None:
        raise WebError(
            422,
            "invalid_tenant",
            f"the tenant has {len(problems)} problem(s); nothing was saved",
            [
                {"file": p.file.removeprefix(f"{tenant_id}/"), "line": p.line, "message": p.message}
                for p in problems
            ],
        )
    try:
        saved = await save_version(
            deps.db,
            summary_of(tenant),
            bundle.as_text(),
            bundle.content_hash(),
            author=author,
            note=edit.note,
            base_version=edit.base_version,
        )
    except VersionConflict as exc:
        raise WebError(409, "version_conflict", str(exc)) from None
    await tenants.refresh()  # this process answers with it now; the others within seconds
    return TenantSaved(tenant_id=tenant_id, version=saved.version, created=saved.created)


async def versions_of(s: Scope, deps: WebDeps, tenant_id: str) -> list[TenantVersion]:
    reach(s, tenant_id)
    _stored(deps)
    in_force = (await current_versions(deps.db)).get(tenant_id)
    rows = await list_versions(deps.db, tenant_id)
    if not rows:
        raise WebError(404, "not_found", f"no tenant {tenant_id!r}")
    return [
        TenantVersion(
            version=v.version,
            author=v.author,
            note=v.note,
            created_at=v.created_at,
            in_force=v.version == in_force,
        )
        for v in rows
    ]


async def restore(
    s: Scope, deps: WebDeps, tenant_id: str, version: int, *, author: str
) -> TenantSaved:
    reach(s, tenant_id)
    _stored(deps)
    old = await load_version(deps.db, tenant_id, version)
    if old is None:
        raise WebError(404, "not_found", f"no version {version} of tenant {tenant_id!r}")
    in_force = (await current_versions(deps.db)).get(tenant_id)
    edit = TenantEdit(base_version=in_force, files=old.files, note=f"restored version {version}")
    return await save(s, deps, tenant_id, edit, author=author)
