"""Tenants kept in the database: every saved version of a tenant's files, and which one is in force.

A save is one transaction that locks the tenant's `tenant_configs` row: it checks the version
the editor started from (`base_version`: someone who saved in between makes this save fail with
`VersionConflict`, so nothing is overwritten silently), writes the files as the next version
(never changing an earlier one) and points the row, with its summary columns, at it. Saving the
same files as the version in force writes nothing. Readers poll `current_versions` (one small
query) to see an edit from any process.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from receptionist.store.db import Database, upsert_insert
from receptionist.store.schema import tenant_configs, tenant_versions, utcnow
from receptionist.store.tenant_configs import TenantConfigRow, config_values

__all__ = [
    "SavedVersion",
    "StoredVersion",
    "VersionConflict",
    "VersionInfo",
    "current_versions",
    "list_versions",
    "load_version",
    "save_version",
]


class VersionConflict(Exception):
    """The tenant changed since the editor loaded it: `current` is the version now in force."""

    def __init__(self, tenant_id: str, base: int | None, current: int | None) -> None:
        super().__init__(
            f"tenant {tenant_id!r} was changed meanwhile: you edited version {base}, "
            f"version {current} is now in force; load it and make your change again"
        )
        self.tenant_id, self.base, self.current = tenant_id, base, current


@dataclass(frozen=True, slots=True)
class SavedVersion:
    version: int
    created: bool  # False: the files were those of the version in force, nothing was written


@dataclass(frozen=True, slots=True)
class VersionInfo:
    tenant_id: str
    version: int
    content_hash: str
    author: str
    note: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StoredVersion:
    info: VersionInfo
    files: dict[str, str]


_ANY = object()  # base_version not given: no conflict check (an import that always wins)


async def save_version(
    db: Database,
    summary: TenantConfigRow,
    files: dict[str, str],
    content_hash: str,
    *,
    author: str,
    note: str | None = None,
    base_version: int | object | None = _ANY,
) -> SavedVersion:
    """Save `files` as the tenant's newest version and put it in force (see the module doc).

    `base_version` is the version the change was made from (None: the tenant is new); leave it
    out to save over whatever is in force.
    """
    t, v = tenant_configs.c, tenant_versions.c
    now = utcnow()
    async with db.begin() as conn:
        current = await _lock_row(conn, db.dialect, summary, now)
        if base_version is not _ANY and base_version != current:
            raise VersionConflict(summary.tenant_id, base_version, current)  # type: ignore[arg-type]
        if current is not None and await _hash_of(conn, summary.tenant_id, current) == content_hash:
            return SavedVersion(current, created=False)
        newest = (
            await conn.execute(
                sa.select(sa.func.max(v.version)).where(v.tenant_id == summary.tenant_id)
            )
        ).scalar_one_or_none()
        version = (newest or 0) + 1
        await conn.execute(
            sa.insert(tenant_versions).values(
                tenant_id=summary.tenant_id,
                version=version,
                files=files,
                content_hash=content_hash,
                author=author,
                note=note,
                created_at=now,
            )
        )
        await conn.execute(
            sa.update(tenant_configs)
            .where(t.tenant_id == summary.tenant_id)
            .values(version=version, updated_at=now, **config_values(summary))
        )
    return SavedVersion(version, created=True)


async def _lock_row(conn: Any, dialect: str, summary: TenantConfigRow, now: datetime) -> int | None:
    """The tenant's row, made if new and locked, and the version in force. The row exists before
    anything is compared: two first saves of a new tenant queue here instead of both inserting
    version 1."""
    t = tenant_configs.c
    await conn.execute(
        upsert_insert(dialect, tenant_configs)
        .values(
            tenant_id=summary.tenant_id,
            created_at=now,
            updated_at=now,
            version=None,
            **config_values(summary),
        )
        .on_conflict_do_nothing(index_elements=["tenant_id"])
    )
    row = (
        await conn.execute(
            sa.select(t.version).where(t.tenant_id == summary.tenant_id).with_for_update()
        )
    ).one()
    return int(row.version) if row.version is not None else None


async def _hash_of(conn: Any, tenant_id: str, version: int) -> str | None:
    v = tenant_versions.c
    return (
        await conn.execute(
            sa.select(v.content_hash).where(v.tenant_id == tenant_id, v.version == version)
        )
    ).scalar_one_or_none()


async def current_versions(db: Database) -> dict[str, int]:
    """tenant id -> the version in force, for every tenant kept in the database."""
    t = tenant_configs.c
    async with db.session() as conn:
        rows = await conn.execute(sa.select(t.tenant_id, t.version).where(t.version.is_not(None)))
        return {r.tenant_id: int(r.version) for r in rows}


def _info(row: Any) -> VersionInfo:
    return VersionInfo(
        tenant_id=row.tenant_id,
        version=int(row.version),
        content_hash=row.content_hash,
        author=row.author,
        note=row.note,
        created_at=row.created_at,
    )


async def load_version(
    db: Database, tenant_id: str, version: int | None = None
) -> StoredVersion | None:
    """One version's files (default: the one in force), or None if there is no such version."""
    v = tenant_versions.c
    stmt = sa.select(tenant_versions).where(v.tenant_id == tenant_id)
    if version is None:
        in_force = (
            sa.select(tenant_configs.c.version)
            .where(tenant_configs.c.tenant_id == tenant_id)
            .scalar_subquery()
        )
        stmt = stmt.where(v.version == in_force)
    else:
        stmt = stmt.where(v.version == version)
    async with db.session() as conn:
        row = (await conn.execute(stmt)).first()
    if row is None:
        return None
    return StoredVersion(_info(row), dict(row.files))


async def list_versions(db: Database, tenant_id: str, limit: int = 100) -> list[VersionInfo]:
    """The tenant's versions, newest first (files left out)."""
    v = tenant_versions.c
    cols = [v.tenant_id, v.version, v.content_hash, v.author, v.note, v.created_at]
    async with db.session() as conn:
        rows = await conn.execute(
            sa.select(*cols)
            .where(v.tenant_id == tenant_id)
            .order_by(v.version.desc())
            .limit(max(1, min(limit, 1000)))
        )
        return [_info(r) for r in rows]
