"""Tenant configuration rows: the database copy of each tenant folder (``tenants sync``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from receptionist.store.db import Database, upsert_insert
from receptionist.store.schema import tenant_configs, utcnow


@dataclass(kw_only=True, slots=True)
class TenantConfigRow:
    tenant_id: str
    tenant_name: str
    owner_phone: str | None = None
    is_active: bool = True
    languages: list[str] = field(default_factory=list)
    call_type_schema: dict[str, Any] | None = None
    config: dict[str, Any] = field(default_factory=dict)  # the whole parsed tenant.toml
    prompt_version: str | None = None  # hash of the prompt files


_FIELDS = (
    "tenant_name",
    "owner_phone",
    "is_active",
    "languages",
    "call_type_schema",
    "config",
    "prompt_version",
)


def config_values(row: TenantConfigRow) -> dict[str, Any]:
    return {
        "tenant_name": row.tenant_name,
        "owner_phone": row.owner_phone,
        "is_active": bool(row.is_active),
        "languages": list(row.languages) if row.languages is not None else None,
        "call_type_schema": row.call_type_schema,
        "config": row.config,
        "prompt_version": row.prompt_version,
    }


async def upsert_tenant(db: Database, row: TenantConfigRow) -> bool:
    """Insert or update the tenant's row; True if it was inserted or something changed."""
    values = config_values(row)
    now = utcnow()
    t = tenant_configs.c
    async with db.begin(immediate=True) as conn:
        inserted = await conn.execute(
            upsert_insert(db.dialect, tenant_configs)
            .values(tenant_id=row.tenant_id, created_at=now, updated_at=now, **values)
            .on_conflict_do_nothing(index_elements=["tenant_id"])
            .returning(t.id)
        )
        if inserted.first() is not None:
            return True
        current = (
            (
                await conn.execute(
                    sa.select(tenant_configs).where(t.tenant_id == row.tenant_id).with_for_update()
                )
            )
            .mappings()
            .one()
        )
        # compare through a JSON round trip's eyes: tuples and lists are the same thing there
        if all(_same(current[name], values[name]) for name in _FIELDS):
            return False
        await conn.execute(
            sa.update(tenant_configs)
            .where(t.tenant_id == row.tenant_id)
            .values(updated_at=now, **values)
        )
        return True


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


async def get_tenant_config(db: Database, tenant_id: str) -> dict[str, Any] | None:
    """One tenant's row as a dict, or None."""
    async with db.session() as conn:
        row = (
            (
                await conn.execute(
                    sa.select(tenant_configs).where(tenant_configs.c.tenant_id == tenant_id)
                )
            )
            .mappings()
            .first()
        )
    return dict(row) if row is not None else None


async def list_tenant_configs(db: Database) -> list[dict[str, Any]]:
    """All tenant rows as dicts, ordered by tenant_id."""
    async with db.session() as conn:
        rows = (
            (await conn.execute(sa.select(tenant_configs).order_by(tenant_configs.c.tenant_id)))
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]


__all__ = ["TenantConfigRow", "get_tenant_config", "list_tenant_configs", "upsert_tenant"]
