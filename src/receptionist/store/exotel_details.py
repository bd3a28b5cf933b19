"""Exotel's own record of a call (duration, status, price, recording), one row per call."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from receptionist.store.db import upsert_insert
from receptionist.store.schema import exotel_call_details, utcnow

COLUMNS = (
    "from_number",
    "to_number",
    "call_duration",
    "call_status",
    "recording_url",
    "price",
    "start_time",
    "end_time",
    "direction",
    "exotel_data",
)


async def upsert_exotel_details(
    conn: Any, *, call_sid: str, tenant: str | None, values: dict[str, Any]
) -> None:
    """Insert or refresh the row (inside the caller's transaction): later fetches replace
    earlier, less complete ones."""
    row = {k: values.get(k) for k in COLUMNS}
    stmt = upsert_insert(conn.dialect.name, exotel_call_details).values(
        call_sid=call_sid, tenant=tenant, fetched_at=utcnow(), **row
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["call_sid"],
        set_={**{k: stmt.excluded[k] for k in COLUMNS}, "fetched_at": stmt.excluded.fetched_at},
    )
    await conn.execute(stmt)


async def get_exotel_details(db: Any, call_sid: str) -> dict[str, Any] | None:
    async with db.session() as conn:
        row = (
            await conn.execute(
                sa.select(exotel_call_details).where(exotel_call_details.c.call_sid == call_sid)
            )
        ).first()
    return dict(row._mapping) if row else None
