"""How much post-call work waits: the pipeline backlog gauge's one query."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from receptionist.store.db import Database
from receptionist.store.schema import call_details


@dataclass(frozen=True, slots=True)
class Backlog:
    due: int  # work due now that no worker holds
    claimed: int  # leased to a worker (being worked on, or its worker died and the lease runs)


async def pipeline_backlog(db: Database, stages: Sequence[str], now: datetime) -> Backlog:
    """Calls in `stages` due by `now` and unclaimed, and those under a live lease (one
    aggregate over the (stage, next_attempt_at) index's rows)."""
    c = call_details.c
    leased = sa.and_(c.lease_expires_at.is_not(None), c.lease_expires_at >= now)
    due = sa.and_(sa.not_(leased), sa.or_(c.next_attempt_at.is_(None), c.next_attempt_at <= now))
    stmt = sa.select(sa.func.count().filter(due), sa.func.count().filter(leased)).where(
        c.stage.in_(list(stages))
    )
    async with db.session() as conn:
        row = (await conn.execute(stmt)).one()
    return Backlog(due=int(row[0] or 0), claimed=int(row[1] or 0))
