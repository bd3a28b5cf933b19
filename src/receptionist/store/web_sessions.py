"""Dashboard sign-ins: a random token in the browser's cookie, only its SHA-256 kept here.

A session lives at most `MAX_AGE` from sign-in and ends after `IDLE` without a request (the
expiry slides forward as the owner uses the dashboard). It is only as alive as its key: every
look-up reads the key's row too, so a revoked key's sessions stop at their next request.
The token is 256 random bits, so a fast hash is enough (nothing to guess, nothing to brute-force).
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from receptionist.store.db import Database
from receptionist.store.schema import api_keys, utcnow, web_sessions

IDLE = timedelta(hours=12)
MAX_AGE = timedelta(days=7)
TOUCH_EVERY = timedelta(minutes=1)  # a busy page must not write a row on every request
LANGUAGES = ("en", "hi")


class Ended(enum.Enum):
    """Why a presented token opens nothing (the sign-in page words each differently)."""

    UNKNOWN = "unknown"  # never issued, or signed out
    EXPIRED = "expired"  # idle too long or older than MAX_AGE
    KEY_REVOKED = "key_revoked"


@dataclass(frozen=True, slots=True)
class WebSession:
    id: int
    key_id: int
    tenant: str | None  # the key's tenant; None for an admin key
    csrf_token: str
    language: str | None
    expires_at: datetime


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_session(
    db: Database, key_id: int, *, language: str | None = None
) -> tuple[str, WebSession]:
    """A new session for a checked key; returns (the cookie's token, the session)."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = utcnow()
    expires = now + IDLE
    async with db.begin() as conn:
        # sign-in is rare: a good moment to drop sessions that ended long ago
        await conn.execute(sa.delete(web_sessions).where(web_sessions.c.expires_at < now))
        new_id = (
            await conn.execute(
                sa.insert(web_sessions)
                .values(
                    token_hash=_hash(token),
                    key_id=key_id,
                    csrf_token=csrf,
                    language=language if language in LANGUAGES else None,
                    created_at=now,
                    expires_at=expires,
                    last_seen_at=now,
                )
                .returning(web_sessions.c.id)
            )
        ).scalar_one()
        tenant = (
            await conn.execute(sa.select(api_keys.c.tenant).where(api_keys.c.id == key_id))
        ).scalar_one_or_none()
    return token, WebSession(int(new_id), key_id, tenant, csrf, language, expires)


async def open_session(db: Database, token: str) -> WebSession | Ended:
    """The live session behind a cookie's token (its expiry slid forward), or why there is none.
    An ended session's row is deleted here."""
    if not token or len(token) > 200:
        return Ended.UNKNOWN
    s, k = web_sessions.c, api_keys.c
    async with db.session() as conn:
        row = (
            await conn.execute(
                sa.select(
                    s.id,
                    s.key_id,
                    s.csrf_token,
                    s.language,
                    s.created_at,
                    s.expires_at,
                    s.last_seen_at,
                    k.tenant,
                    k.revoked_at,
                    k.id.label("found_key"),
                )
                .select_from(web_sessions.outerjoin(api_keys, k.id == s.key_id))
                .where(s.token_hash == _hash(token))
            )
        ).first()
    if row is None:
        return Ended.UNKNOWN
    now = utcnow()
    ended: Ended | None = None
    if row.found_key is None or row.revoked_at is not None:
        ended = Ended.KEY_REVOKED
    elif row.expires_at <= now or row.created_at + MAX_AGE <= now:
        ended = Ended.EXPIRED
    if ended is not None:
        async with db.begin() as conn:
            await conn.execute(sa.delete(web_sessions).where(s.id == row.id))
        return ended
    expires = row.expires_at
    if row.last_seen_at is None or now - row.last_seen_at >= TOUCH_EVERY:
        expires = min(now + IDLE, row.created_at + MAX_AGE)
        async with db.begin() as conn:
            await conn.execute(
                sa.update(web_sessions)
                .where(s.id == row.id)
                .values(last_seen_at=now, expires_at=expires)
            )
    return WebSession(
        int(row.id), int(row.key_id), row.tenant, row.csrf_token, row.language, expires
    )


async def end_session(db: Database, token: str) -> None:
    """Sign out: the row goes, so the cookie opens nothing even if a copy of it survives."""
    async with db.begin() as conn:
        await conn.execute(sa.delete(web_sessions).where(web_sessions.c.token_hash == _hash(token)))


async def set_language(db: Database, session_id: int, language: str | None) -> None:
    if language is not None and language not in LANGUAGES:
        raise ValueError(f"unsupported language {language!r}")
    async with db.begin() as conn:
        await conn.execute(
            sa.update(web_sessions).where(web_sessions.c.id == session_id).values(language=language)
        )


async def expire_session_now(db: Database, session_id: int) -> None:
    """Used by tests and by an operator tool: the session ends at its next request."""
    async with db.begin() as conn:
        await conn.execute(
            sa.update(web_sessions)
            .where(web_sessions.c.id == session_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )


__all__ = [
    "IDLE",
    "LANGUAGES",
    "MAX_AGE",
    "Ended",
    "WebSession",
    "create_session",
    "end_session",
    "expire_session_now",
    "open_session",
    "set_language",
]
