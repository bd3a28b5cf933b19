"""Keys to the owner's API and dashboard: made, listed, revoked, checked.

A key reads `rk_<prefix>_<secret>`: the prefix (8 hex characters) finds the row and is safe to
show; only a SHA-256 of the whole key is stored. A slow password hash would add nothing here:
the secret is 256 random bits, not something a person chose, so no dictionary or brute force
reaches it, and every API request checks a key. The comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from receptionist.store.db import Database
from receptionist.store.schema import api_keys, utcnow

_KEY = re.compile(r"rk_([0-9a-f]{8})_[A-Za-z0-9_-]{43}")


@dataclass(frozen=True, slots=True)
class KeyOwner:
    """Who a valid key speaks for: one tenant, or every tenant (admin)."""

    key_id: int
    tenant: str | None  # None: admin


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def create_key(
    db: Database, *, tenant: str | None, name: str | None = None
) -> tuple[int, str]:
    """A new key for `tenant` (None: admin); returns (id, the key). The key is not stored."""
    for _ in range(5):  # a prefix collision is a 1 in 4 billion event; try again
        prefix = secrets.token_hex(4)
        key = f"rk_{prefix}_{secrets.token_urlsafe(32)}"
        async with db.begin() as conn:
            taken = (
                await conn.execute(sa.select(api_keys.c.id).where(api_keys.c.prefix == prefix))
            ).first()
            if taken is not None:
                continue
            result = await conn.execute(
                sa.insert(api_keys)
                .values(prefix=prefix, key_hash=_hash(key), tenant=tenant, name=name)
                .returning(api_keys.c.id)
            )
            return int(result.scalar_one()), key
    raise RuntimeError("could not find a free key prefix")


async def list_keys(db: Database) -> list[dict[str, Any]]:
    k = api_keys.c
    async with db.session() as conn:
        rows = await conn.execute(
            sa.select(
                k.id, k.prefix, k.tenant, k.name, k.created_at, k.last_used_at, k.revoked_at
            ).order_by(k.id)
        )
        return [dict(r) for r in rows.mappings()]


async def revoke_key(db: Database, key_id: int) -> bool:
    """False when there is no such key or it was revoked already."""
    k = api_keys.c
    async with db.begin() as conn:
        result = await conn.execute(
            sa.update(api_keys)
            .where(k.id == key_id, k.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
    return bool(result.rowcount)


async def check_key(
    db: Database, presented: str, *, touch_after_s: float = 60.0
) -> KeyOwner | None:
    """The owner of a valid, unrevoked key; None for anything else. `last_used_at` is written
    at most once a minute per key (a busy dashboard must not write on every request)."""
    match = _KEY.fullmatch(presented)
    if match is None:
        return None
    k = api_keys.c
    async with db.session() as conn:
        row = (
            await conn.execute(
                sa.select(k.id, k.key_hash, k.tenant, k.revoked_at, k.last_used_at).where(
                    k.prefix == match.group(1)
                )
            )
        ).first()
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.key_hash, _hash(presented)):
        return None
    now = utcnow()
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > touch_after_s:
        async with db.begin() as conn:
            await conn.execute(sa.update(api_keys).where(k.id == row.id).values(last_used_at=now))
    return KeyOwner(key_id=int(row.id), tenant=row.tenant)


def describe(row: dict[str, Any]) -> str:
    """One line for `keys list`."""
    scope = f"tenant {row['tenant']}" if row["tenant"] else "admin (every tenant)"
    state = "revoked" if row["revoked_at"] else "active"
    used: datetime | None = row["last_used_at"]
    last = f"last used {used:%Y-%m-%d %H:%M} UTC" if used else "never used"
    name = row["name"] or "-"
    return f"{row['id']:>4}  rk_{row['prefix']}_…  {state:<8} {scope:<28} {name:<20} {last}"
