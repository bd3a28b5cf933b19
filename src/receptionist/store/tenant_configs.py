"""Tenant configuration rows: each tenant kept in the database, with the summary columns a list
shows and the version in force (store/tenant_versions.py writes them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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


__all__ = ["TenantConfigRow", "config_values"]
