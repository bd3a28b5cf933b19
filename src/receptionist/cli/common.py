"""What every command shares: the Typer apps, settings, console output, running a coroutine, and the
database (prepared, or opened for one job)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console

from receptionist import tracing
from receptionist.config import Settings, SettingsError, load_settings
from receptionist.logs import configure_logging
from receptionist.store.db import Database
from receptionist.untrusted import printable

if TYPE_CHECKING:
    pass


T = TypeVar("T")

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="The `receptionist` command line."
)
tenants_app = typer.Typer(no_args_is_help=True, help="Tenant folders: list, validate, sync.")
db_app = typer.Typer(no_args_is_help=True, help="Database: migrations and spool replay.")
calls_app = typer.Typer(no_args_is_help=True, help="Stored calls.")
sim_app = typer.Typer(no_args_is_help=True, help="Local doubles of the external services.")
messages_app = typer.Typer(no_args_is_help=True, help="WhatsApp messages sent after calls.")
keys_app = typer.Typer(no_args_is_help=True, help="Keys to the API and dashboard.")
app.add_typer(tenants_app, name="tenants")
app.add_typer(db_app, name="db")
app.add_typer(calls_app, name="calls")
app.add_typer(sim_app, name="sim")
app.add_typer(messages_app, name="messages")
app.add_typer(keys_app, name="keys")

console = Console()
err = Console(stderr=True)


def settings_for(**overrides: Any) -> Settings:
    try:
        settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings)
    tracing.setup_tracing()
    return settings


def plain(line: str) -> None:
    """Print a line built from stored values: no Rich markup (a caller number of "[/]" must not
    stop the listing) and every control character shown as an escape (no terminal tricks)."""
    console.print(
        "\n".join(printable(part) for part in line.split("\n")), markup=False, highlight=False
    )


def markup_safe(text: str) -> str:
    """A value from a file or the database inside a line that has our own markup."""
    from rich.markup import escape

    return escape(printable(text))


def run_coro(coro: Any) -> Any:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:  # pragma: no cover - platforms without uvloop
        return asyncio.run(coro)


def is_sqlite(database_url: str) -> bool:
    # the embedded single-machine default migrates on start, so `demo`/`serve` just work
    return database_url.strip().lower().startswith("sqlite")


def prepare_database(settings: Settings, *, migrate: bool) -> None:
    """Upgrade the schema (`migrate`), or check it is at head: on a shared database, schema
    changes are an operator's step (`db upgrade` or one `serve --migrate`), not a side effect
    of every server start. A database that is away or a schema that is behind ends `serve`
    with one line on stderr and exit code 2 (a platform's restart policy tries again)."""
    from receptionist.store.db import DatabaseUnavailable

    async def go() -> tuple[str | None, str] | None:
        db = Database(settings.database_url)
        try:
            await db.ping()
            if migrate:
                await db.upgrade()  # PostgreSQL: under an advisory lock, so several may start
                return None
            return await db.schema_behind()
        finally:
            await db.dispose()

    try:
        behind = run_coro(go())
    except DatabaseUnavailable as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if behind is not None:
        from receptionist.store.db import known_revision

        current, head = behind
        if current is not None and not known_revision(current):
            typer.echo(
                f"error: the database schema is at revision {current}, newer than this version"
                f" knows (its newest is {head}): run the release that migrated it",
                err=True,
            )
        else:
            typer.echo(
                f"error: the database schema is at revision {current or 'none (no tables)'},"
                f" this version needs {head}: run `receptionist db upgrade` first, or start"
                " with `receptionist serve --migrate`",
                err=True,
            )
        raise typer.Exit(2)


def through_transaction_pooler(database_url: str) -> bool:
    """A PostgreSQL URL of a transaction-mode pooler (Supabase's port 6543, or marked
    ``pgbouncer=true``): it hands each transaction any server connection, so a LISTEN is lost."""
    from sqlalchemy.engine import make_url

    try:
        url = make_url(database_url.strip())
    except Exception:  # not a URL at all: the database layer says so with its own message
        return False
    if url.get_backend_name() not in ("postgresql", "postgres"):
        return False
    flag = url.query.get("pgbouncer", "")
    flag = flag[-1] if isinstance(flag, tuple) else flag
    return url.port == 6543 or flag.lower() == "true"


def with_db(settings: Settings, fn: Callable[[Database], Awaitable[T]]) -> T:
    """Open the database, migrate it, run `fn` on it, close it: one command's whole use.

    Every command migrates (idempotent, as `serve` and `worker` do) so that `calls list` or
    `messages list` on a new database shows nothing instead of a missing-table traceback."""

    async def go() -> T:
        db = Database(settings.database_url)
        try:
            await db.upgrade()
            return await fn(db)
        finally:
            await db.dispose()

    result: T = run_coro(go())
    return result


async def nothing(db: Database) -> None:
    return None
