"""The database handle: one async engine for SQLite (embedded default) or PostgreSQL (Supabase).

Usage::

    db = Database(settings.database_url)
    await db.upgrade()                    # Alembic migrations to head (idempotent)
    async with db.begin() as conn:        # AsyncConnection inside a transaction, committed on exit
        await conn.execute(...)
    async with db.session() as conn:      # AsyncConnection, no transaction started: read, or
        ...                               # call conn.commit() yourself
    await db.dispose()

Every call is async; nothing blocks the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Query parameters that the asyncpg driver (through SQLAlchemy) accepts as-is.
_ASYNCPG_PASSTHROUGH = frozenset(
    {
        "prepared_statement_cache_size",
        "statement_cache_size",
        "max_cached_statement_lifetime",
        "max_cacheable_statement_size",
        "command_timeout",
        "target_session_attrs",
        "krbsrvname",
        "gsslib",
        "direct_tls",
    }
)
_ASYNCPG_FLOAT_PARAMS = frozenset({"command_timeout"})
_ASYNCPG_INT_PARAMS = frozenset(
    {
        "prepared_statement_cache_size",
        "statement_cache_size",
        "max_cached_statement_lifetime",
        "max_cacheable_statement_size",
    }
)
_SSL_MODES = frozenset({"disable", "allow", "prefer", "require", "verify-ca", "verify-full"})
_SQLITE_BUSY_TIMEOUT_MS = 10_000

_PASSWORD_IN_URL = re.compile(r"(?P<head>[a-zA-Z][\w+.-]*://[^:/@\s]*:)(?P<pw>[^@\s]*)(?P<at>@)")


class DatabaseError(RuntimeError):
    """A problem with the database configuration or connection, worded for an operator."""


class DatabaseUnavailable(DatabaseError):
    """The database could not be reached (wrong address, server down, bad credentials)."""


def unreachable(exc: BaseException) -> bool:
    """The database is away (refused, hung, dropped), as opposed to refusing one statement:
    the caller spools or retries quietly instead of reporting a bug."""
    from sqlalchemy import exc as sa_exc

    outage = (TimeoutError, OSError, sa_exc.OperationalError, sa_exc.InterfaceError)
    return isinstance(exc, (DatabaseUnavailable, sa_exc.TimeoutError, *outage))


def _json_dumps(value: Any) -> str:
    # keep Hindi, Kannada, ... readable in the stored JSON
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _normalise(url: str) -> tuple[URL, dict[str, Any]]:
    """Turn a user-facing database URL into an async SQLAlchemy URL plus driver connect args."""
    raw = url.strip()
    if raw.startswith("postgres://"):  # Heroku / Supabase spelling
        raw = "postgresql://" + raw[len("postgres://") :]
    try:
        parsed = make_url(raw)
    except Exception:  # sqlalchemy.exc.ArgumentError
        raise DatabaseError(f"not a database URL: {Database.redact(url)!r}") from None

    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite(parsed), {}
    if backend == "postgresql":
        return _postgresql(parsed, url)
    raise DatabaseError(
        f"unsupported database {backend!r} in {Database.redact(url)}: use sqlite:///path or "
        "postgresql://user:password@host:5432/db"
    )


def _sqlite(parsed: URL) -> URL:
    """aiosqlite, the file's directory made if missing."""
    parsed = parsed.set(drivername="sqlite+aiosqlite")
    db_path = parsed.database
    if db_path and db_path != ":memory:" and not db_path.startswith("file:"):
        Path(db_path).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return parsed


def _postgresql(parsed: URL, url: str) -> tuple[URL, dict[str, Any]]:
    """asyncpg: libpq's URL parameters that asyncpg takes as connect args become them; those
    it would reject are dropped (`url`: as given, for errors)."""
    query = dict(parsed.query)
    connect_args = _pg_connect_args(query, url)
    kept: dict[str, str | tuple[str, ...]] = {}
    for key, value in query.items():
        if key not in _ASYNCPG_PASSTHROUGH:
            continue  # libpq-only parameters (options, sslrootcert, ...) asyncpg would reject
        val = value[-1] if isinstance(value, tuple) else value
        if key in _ASYNCPG_INT_PARAMS:
            connect_args[key] = int(val)
        elif key in _ASYNCPG_FLOAT_PARAMS:
            connect_args[key] = float(val)
        elif key == "direct_tls":
            connect_args[key] = val.lower() in {"1", "true", "on", "yes"}
        else:
            kept[key] = val
    return parsed.set(drivername="postgresql+asyncpg", query=kept), connect_args


def _pg_connect_args(query: dict[str, Any], url: str) -> dict[str, Any]:
    """The connect args for sslmode, application_name, connect_timeout and pgbouncer, each
    taken out of `query`."""
    connect_args: dict[str, Any] = {}
    sslmode = query.pop("sslmode", None) or query.pop("ssl", None)
    if isinstance(sslmode, tuple):
        sslmode = sslmode[-1]
    if sslmode:
        mode = str(sslmode).lower()
        if mode in {"true", "1", "on"}:
            mode = "require"
        elif mode in {"false", "0", "off"}:
            mode = "disable"
        if mode not in _SSL_MODES:
            raise DatabaseError(f"unknown sslmode {sslmode!r} in {Database.redact(url)}")
        connect_args["ssl"] = mode
    app_name = query.pop("application_name", None)
    if app_name:
        connect_args["server_settings"] = {"application_name": str(app_name)}
    connect_timeout = query.pop("connect_timeout", None)
    if connect_timeout:
        connect_args["timeout"] = float(str(connect_timeout))
    if str(query.pop("pgbouncer", "")).lower() == "true":
        # transaction-mode pooler (Supabase port 6543): no prepared statements may be kept
        connect_args["statement_cache_size"] = 0
        connect_args["prepared_statement_cache_size"] = 0
    return connect_args


# SQLite takes one writer at a time, so more connections only queue on its lock (with the
# busy timeout) while each holds a thread, a malloc arena and its own page cache: a few serve
# WAL readers beside the writer. (SQLAlchemy's default, 5 + 10 overflow, held ~30 KB per call
# more at 100 calls in bench/bridge_load.py.)
SQLITE_POOL_SIZE = 2
SQLITE_POOL_OVERFLOW = 2


class Database:
    """An async engine plus the few operations every part of the app needs."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 5) -> None:
        self._url, connect_args = _normalise(url)
        self._connect_args = connect_args
        self._dialect = self._url.get_backend_name()
        kwargs: dict[str, Any] = {
            "echo": echo,
            "json_serializer": _json_dumps,
            "connect_args": connect_args,
        }
        if self._dialect == "sqlite":
            if self._url.database in (None, "", ":memory:"):
                kwargs["poolclass"] = StaticPool
            else:
                kwargs.update(pool_size=SQLITE_POOL_SIZE, max_overflow=SQLITE_POOL_OVERFLOW)
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size * 2, pool_pre_ping=True)
        self._engine: AsyncEngine = create_async_engine(self._url, **kwargs)
        if self._dialect == "sqlite":
            _install_sqlite_hooks(self._engine)

    # --- identity ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The normalised SQLAlchemy URL, password included: never log it, use ``safe_url``."""
        return self._url.render_as_string(hide_password=False)

    @property
    def safe_url(self) -> str:
        """The normalised URL with the password masked, for logs and error messages."""
        return self._url.render_as_string(hide_password=True)

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._dialect

    @property
    def connect_args(self) -> dict[str, Any]:
        """Driver arguments derived from the URL (e.g. ``{"ssl": "require"}`` for asyncpg)."""
        return dict(self._connect_args)

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    def __repr__(self) -> str:
        return f"Database({self.safe_url!r})"

    @staticmethod
    def redact(url: str) -> str:
        """``url`` with any password replaced by ``***`` (works on malformed URLs too)."""
        try:
            return make_url(url.strip()).render_as_string(hide_password=True)
        except Exception:
            return _PASSWORD_IN_URL.sub(r"\g<head>***\g<at>", url)

    # --- connections ------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncConnection]:
        """A connection with no transaction started (SQLAlchemy autobegins on first use).

        Nothing is committed unless the caller calls ``await conn.commit()``.
        """
        async with self._engine.connect() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A connection inside a write transaction: committed on normal exit, rolled back on error.

        On SQLite it takes the write lock at BEGIN (``BEGIN IMMEDIATE``). A deferred transaction
        that reads and then writes fails at once with "database is locked" when another
        connection committed in between (SQLite cannot upgrade a stale read snapshot, and the
        busy timeout does not apply), so every ``begin`` waits for the lock up front instead.
        Reads that write nothing use :meth:`session`. PostgreSQL is unaffected: where a read
        decides a write there, lock the row (``SELECT ... FOR UPDATE``) or, when there is no
        row to lock yet, the key (:func:`lock_until_commit`).
        """
        async with self._engine.connect() as conn:
            if self._dialect == "sqlite":
                conn = await conn.execution_options(sqlite_begin="BEGIN IMMEDIATE")
            async with conn.begin():
                yield conn

    async def ping(self, *, timeout_s: float = 10.0) -> None:
        """Run ``SELECT 1``; raise :class:`DatabaseUnavailable` with a clear message if it fails."""
        try:
            async with asyncio.timeout(timeout_s), self._engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
        except TimeoutError:
            raise DatabaseUnavailable(
                f"database unreachable: no answer from {self.safe_url} within {timeout_s:g}s"
            ) from None
        except Exception as exc:
            raise DatabaseUnavailable(
                f"database unreachable at {self.safe_url}: {type(exc).__name__}: {exc}"
            ) from exc

    async def dispose(self) -> None:
        await self._engine.dispose()

    # --- migrations -------------------------------------------------------------------------

    async def upgrade(self, revision: str = "head") -> None:
        """Apply the Alembic migrations up to ``revision``. Safe to run again and concurrently.

        On PostgreSQL an advisory lock serialises several processes upgrading at once; on SQLite
        the transaction takes the write lock up front.
        """
        async with self.begin() as conn:
            if self._dialect == "postgresql":
                await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
            await conn.run_sync(_run_alembic, "upgrade", revision)

    async def downgrade(self, revision: str) -> None:
        """Revert the migrations down to ``revision`` (``"base"`` drops everything)."""
        async with self.begin() as conn:
            await conn.run_sync(_run_alembic, "downgrade", revision)

    async def current_revision(self) -> str | None:
        """The Alembic revision the database is at, or None before the first upgrade."""
        async with self.session() as conn:
            return await conn.run_sync(_current_revision)

    async def schema_behind(self) -> tuple[str | None, str] | None:
        """None when the schema is at the migrations' head; else (where it is, the head).

        A server that does not migrate (``serve`` on PostgreSQL without ``--migrate``) asks
        this first, so it refuses to start on old tables instead of failing at the first call."""
        head = head_revision()
        current = await self.current_revision()
        return None if current == head else (current, head)


def claimable(dialect: str, pick: sa.Select[Any]) -> Any:
    """The rows `pick` selects (one column, the ids), as a CTE to use in ``id IN (SELECT ...)``,
    locked and skipping rows other workers hold on PostgreSQL.

    It is MATERIALIZED on purpose: as a plain subquery of an UPDATE, PostgreSQL may run it again
    for each row it updates, and with SKIP LOCKED every run finds fresh rows, so a claim of
    LIMIT 4 took every due row at once (seen in the messages' SIGKILL test)."""
    if dialect == "postgresql":
        return pick.with_for_update(skip_locked=True).cte("picked").prefix_with("MATERIALIZED")
    return pick.cte("picked")


async def claim_due(
    db: Database,
    table: sa.Table,
    due: sa.ColumnElement[bool],
    *,
    worker_id: str,
    lease_s: float,
    limit: int,
    now: datetime,
    returning: Sequence[sa.ColumnElement[Any]],
) -> list[Any]:
    """Lease up to `limit` rows of an outbox `table` (`status`, `next_attempt_at`, `lease_owner`,
    `lease_expires_at`, `attempts`, `updated_at`) that are `pending`, `due` and held by no live
    lease, oldest due first, counting the attempt; returns the `returning` columns."""
    t = table.c
    free = sa.or_(t.lease_expires_at.is_(None), t.lease_expires_at < now)
    pick = (
        sa.select(t.id)
        .where(t.status == "pending", t.next_attempt_at <= now, free, due)
        .order_by(t.next_attempt_at, t.id)
        .limit(limit)
    )
    picked = claimable(db.dialect, pick)
    stmt = (
        sa.update(table)
        .where(t.id.in_(sa.select(picked.c.id)), t.status == "pending", free)
        .values(
            lease_owner=worker_id,
            lease_expires_at=now + timedelta(seconds=lease_s),
            attempts=t.attempts + 1,
            updated_at=now,
        )
        .returning(*returning)
    )
    async with db.begin() as conn:
        return list((await conn.execute(stmt)).all())


def upsert_insert(dialect: str, table: sa.Table) -> Any:
    """``INSERT`` for ``dialect`` ("sqlite" / "postgresql") with ``on_conflict_do_nothing`` /
    ``on_conflict_do_update`` available (both dialects spell them the same)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)
    raise DatabaseError(f"no upsert for dialect {dialect!r}")


async def lock_until_commit(conn: AsyncConnection, space: int, *key: str) -> None:
    """Hold `key` (within `space`, a small constant per kind of lock) until the transaction
    ends, so that a read that decides a write (a count against a limit, a free slot) cannot
    interleave with another transaction's on the same key. PostgreSQL: a transaction-scoped
    advisory lock on (space, a 32-bit hash of the key), a key space apart from the migrations'
    one-number lock; two keys that share a hash only queue behind each other for a moment.
    SQLite: nothing to do, `Database.begin` holds the write lock of the whole database."""
    if conn.dialect.name != "postgresql":
        return
    digest = hashlib.blake2b("\x1f".join(key).encode(), digest_size=4).digest()
    await conn.execute(
        sa.text("SELECT pg_advisory_xact_lock(:space, :key)"),
        {"space": space, "key": int.from_bytes(digest, "big", signed=True)},
    )


# an arbitrary constant: pg_advisory_xact_lock key for migrations
_LOCK_KEY = 0x52_45_43_45_50  # "RECEP"


def alembic_config(connection: sa.Connection | None = None) -> Any:
    """An Alembic ``Config`` built in code (no alembic.ini); ``connection`` is handed to env.py."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    cfg.set_main_option("path_separator", "os")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def known_revision(revision: str) -> bool:
    """Whether the package's migrations have ``revision`` (False: a newer release wrote it)."""
    from alembic.script import ScriptDirectory

    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except Exception:  # alembic.util.CommandError for an unknown id
        return False


def head_revision() -> str:
    """The newest revision the package's migrations know (one head: the history is linear)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships its migrations
        raise DatabaseError(f"no Alembic migrations in {MIGRATIONS_DIR}")
    return head


def _run_alembic(connection: sa.Connection, action: str, revision: str) -> None:
    from alembic import command

    cfg = alembic_config(connection)
    if action == "upgrade":
        command.upgrade(cfg, revision)
    elif action == "downgrade":
        command.downgrade(cfg, revision)
    else:  # pragma: no cover - internal misuse
        raise ValueError(action)


def _current_revision(connection: sa.Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    """WAL, busy timeout and foreign keys on every connection; real BEGIN for transactions.

    The sqlite3 driver's legacy transaction handling (no BEGIN before SELECT or DDL) is switched
    off and SQLAlchemy emits BEGIN itself, so transactions, savepoints and migrations behave as
    on PostgreSQL.
    """
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql(conn.get_execution_options().get("sqlite_begin", "BEGIN"))


__all__ = [
    "Database",
    "DatabaseError",
    "DatabaseUnavailable",
    "alembic_config",
    "head_revision",
    "known_revision",
    "upsert_insert",
]
